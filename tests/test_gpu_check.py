"""benchmarks/gpu_check.sh where there is no GPU: one line saying so and exit 0; every import
its steps make (inside the step functions, so only a GPU run would reach them) resolves
here; the steps that can run on the CPU do."""

from __future__ import annotations

import ast
import importlib
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("onnxruntime", "nnunetv2")  # steps that say "skipped" without them


def test_without_cuda_it_says_so_in_one_line_and_exits_0():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the script would run every step")
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "no device: CUDA is not available on this machine; nothing ran on a GPU"
    ]


def _imports_inside_functions() -> list[tuple[str, str | None]]:
    """(module, name or None) of every import statement in gpu_check's functions."""
    tree = ast.parse((ROOT / "benchmarks" / "gpu_check.py").read_text(encoding="utf-8"))
    found: list[tuple[str, str | None]] = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.module:
                found += [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                found += [(alias.name, None) for alias in node.names]
    return found


def test_every_import_of_every_step_resolves():
    found = _imports_inside_functions()
    assert ("torch.nn.parallel", "DistributedDataParallel") in found  # the walk sees them
    for module, name in found:
        if module.split(".")[0] in OPTIONAL:
            pytest.importorskip(module)
        imported = importlib.import_module(module)
        if name is not None:
            assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
                f"{module} has no {name}"
            )


def test_the_issues_steps_are_all_run():
    from benchmarks import gpu_check

    source = (ROOT / "benchmarks" / "gpu_check.py").read_text(encoding="utf-8")
    for fn in (
        "bundled_2d",
        "sliding_3d",
        "autocast_agreement",
        "app_fp16",
        "forced_oom",
        "finetune_amp",
        "ddp_nccl",
        "onnx_cuda",
        "pt2_to_gpu",
        "nnunet_cuda",
    ):
        assert callable(getattr(gpu_check, fn)) and f"lambda: {fn}(" in source


def test_cpu_capable_steps_run_and_cuda_only_ones_say_skipped(tmp_path, kept_data_dir):
    import torch

    from benchmarks import gpu_check

    cpu = torch.device("cpu")
    for fn in (gpu_check.forced_oom, gpu_check.ddp_nccl):
        assert fn(cpu).startswith("skipped")
    assert gpu_check.app_fp16(cpu, 2).startswith("skipped")
    assert gpu_check.pt2_to_gpu(cpu, tmp_path).startswith("on cpu")

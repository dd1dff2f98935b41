"""Everything MedView does on CUDA, run once on one GPU, each step timed and checked
(benchmarks/gpu_check.sh runs it under a 10-minute limit).

Steps: 2D inference (the bundled lesion-seg on a 300-slice study) and 3D sliding-window
inference (a MONAI 3D U-Net through runtime.sliding3d, then with a focus slab first), each
network also compared under bf16 and fp16 autocast against fp32, and the app's own path
under fp16 (a GPU without bf16) against bf16; a forced out-of-memory (a per-process memory
cap) and the runner's recovery; a fine-tune with fp16 autocast and GradScaler;
DistributedDataParallel with NCCL in one process; onnxruntime's CUDA provider when it is
installed; an imported .pt2 program moved to the GPU; nnU-Net's predictor on the GPU when
nnunetv2 is installed. Any failure ends the run with exit status 1.

Goals on one H100 (issue 17): 300 slices <= 1 s for the bundled 2D model, <= 5 s for a 3D
sliding-window model. Without CUDA it prints "no device" and exits 0; `--rehearse` then
runs the steps that can run on the CPU, to check the script itself."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch  # noqa: TID253 (a GPU check is all torch)

RESULTS: list[tuple[str, float, str]] = []


def step(name: str, fn: Callable[[], str]) -> None:
    t0 = time.perf_counter()
    try:
        result = fn()
    except Exception:
        seconds = time.perf_counter() - t0
        print(f"FAIL  {name:<34} {seconds:7.2f} s", flush=True)
        traceback.print_exc()
        raise SystemExit(1) from None
    seconds = time.perf_counter() - t0
    RESULTS.append((name, seconds, result))
    print(f"ok    {name:<34} {seconds:7.2f} s  {result}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def study(slices: int = 300, size: int = 512):
    from medview.core.volume import Volume, VolumeMetadata

    rng = np.random.default_rng(0)
    a = rng.integers(-1000, 400, (slices, size, size), dtype=np.int16)
    affine = np.diag([1.5, 0.7, 0.7, 1.0])
    return Volume(a, affine, VolumeMetadata(modality="CT", source="gpu_check"))


def bundled_2d(device: torch.device, slices: int) -> str:
    from medview.ai.models.registry import bundled_models_dir
    from medview.ai.runtime.inference import segment
    from medview.ai.runtime.loading import load_model

    folder = sorted((bundled_models_dir() / "lesion-seg").iterdir())[-1]
    model = load_model(folder, device, reuse=False)
    vol = study(slices)
    segment(study(8), model, reuse=False)  # warm-up (cuDNN autotune, allocator)
    sync(device)
    t0 = time.perf_counter()
    result = segment(vol, model, reuse=False)
    sync(device)
    took = time.perf_counter() - t0
    return f"{slices} slices in {took:.2f} s on {result.device} (goal <= 1 s on an H100)"


def unet3d(device: torch.device, roi: int = 96, batch: int = 4):
    from safetensors.torch import save

    from medview.ai.models.cards import card_from_dict
    from medview.ai.runtime.networks import build_network
    from medview.ai.runtime.volume_models import VolumeModel

    card = card_from_dict(
        {
            "name": "gpu-check-3d",
            "version": "1.0",
            "task": "segmentation",
            "modality": "CT",
            "labels": [{"value": 1, "name": "spleen"}],
            "intensity": {"low": -57, "high": 164},
            "architecture": "monai.UNet",
            "context_slices": 1,
            "architecture_args": {
                "spatial_dims": 3,
                "channels": [16, 32, 64, 128, 256],
                "strides": [2, 2, 2, 2],
                "num_res_units": 2,
                "norm": "batch",
            },
            "volume3d": {
                "roi_size": [roi] * 3,
                "spacing_mm": [1.5, 1.5, 2.0],
                "overlap": 0.25,
                "sw_batch_size": batch,
            },
        },
        "gpu_check",
    )
    torch.manual_seed(0)  # weights: the network's own initialisation, as safetensors
    weights = save({k: v.contiguous() for k, v in build_network(card).state_dict().items()})
    return VolumeModel(card, Path("."), "gpu_check", weights, device)


def sliding_3d(device: torch.device, slices: int) -> str:
    """The whole study, then again with a focus: the slab around it first (progressive)."""
    from medview.ai.runtime.inference import FOCUS_HALF, segment

    model = unet3d(device)
    segment(study(16, 128), model, reuse=False)  # warm-up
    vol = study(slices)
    sync(device)
    t0 = time.perf_counter()
    result = segment(vol, model, reuse=False)
    sync(device)
    whole = time.perf_counter() - t0
    first: list[float] = []
    t0 = time.perf_counter()
    focused = segment(
        vol,
        model,
        reuse=False,
        focus=slices // 2,
        on_partial=lambda _r, _span: first or first.append(time.perf_counter() - t0),
    )
    same = float((focused.label_map() == result.label_map()).mean())
    if slices > 2 * FOCUS_HALF + 1 and not first:
        raise AssertionError("no focus slab came first")
    return (
        f"{slices} slices in {whole:.2f} s on {result.device} (goal <= 5 s on an H100), "
        f"focus slab first in {first[0] if first else whole:.2f} s, labels as without a focus "
        f"on {same:.5f} of voxels; {result.warnings or 'no warnings'}"
    )


def app_fp16(device: torch.device, dims: int) -> str:
    """The app's own inference path under fp16 autocast (what a GPU without bf16 gets:
    device.autocast_context) against its bf16 one, on a 32-slice study: label agreement."""
    from unittest import mock

    from medview.ai.runtime.inference import segment

    if device.type != "cuda":
        return "skipped (CPU: no autocast)"
    if not torch.cuda.is_bf16_supported():
        return "skipped: no bf16 on this GPU, so the inference steps above ran fp16"
    if dims == 2:
        from medview.ai.models.registry import bundled_models_dir
        from medview.ai.runtime.loading import load_model

        folder = sorted((bundled_models_dir() / "lesion-seg").iterdir())[-1]
        model = load_model(folder, device, reuse=False)
    else:
        model = unet3d(device)
    vol = study(32, 256)
    bf16 = segment(vol, model, reuse=False).label_map()
    with mock.patch("torch.cuda.is_bf16_supported", return_value=False):
        fp16 = segment(vol, model, reuse=False).label_map()
    same = float((bf16 == fp16).mean())
    if same < 0.99:
        raise AssertionError(f"fp16 and bf16 labels agree on {same:.4f} of voxels only")
    return f"fp16 vs bf16: labels agree on {same:.5f} of voxels"


def autocast_agreement(device: torch.device, dims: int) -> str:
    """Probabilities under bf16 and fp16 autocast against fp32, on one batch."""
    if dims == 2:
        from medview.ai.models.registry import bundled_models_dir
        from medview.ai.runtime.loading import load_model

        folder = sorted((bundled_models_dir() / "lesion-seg").iterdir())[-1]
        module = load_model(folder, device, reuse=False).module
        x = torch.rand(8, module_in(module), 256, 256, device=device)
    else:
        module = unet3d(device).module
        x = torch.rand(2, 1, 96, 96, 96, device=device)
    out = []
    with torch.inference_mode():
        ref = torch.softmax(module(x).float(), 1)
        for dtype in (torch.bfloat16, torch.float16):
            if device.type != "cuda":
                out.append(f"{dtype} skipped (CPU)")
                continue
            with torch.autocast("cuda", dtype=dtype):
                got = torch.softmax(module(x).float(), 1)
            diff = float((got - ref).abs().max())
            if not torch.isfinite(got).all() or diff > 0.05:
                raise AssertionError(f"{dtype} autocast differs from fp32 by {diff}")
            out.append(f"{str(dtype).split('.')[-1]} max |dp| {diff:.4f}")
    return ", ".join(out)


def module_in(module: torch.nn.Module) -> int:
    return next(p for p in module.parameters() if p.ndim == 4).shape[1]


def forced_oom(device: torch.device) -> str:
    """Cap this process's GPU memory, make the 3D runner run out, and see it recover."""
    from medview.ai.runtime.device import is_out_of_memory
    from medview.ai.runtime.inference import segment

    if device.type != "cuda":
        return "skipped (needs CUDA)"
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(device).total_memory
    try:
        torch.cuda.set_per_process_memory_fraction(3e9 / total, device)
        try:
            torch.empty(int(4e9), dtype=torch.uint8, device=device)
            raise AssertionError("a 4 GB allocation under a 3 GB cap did not fail")
        except torch.cuda.OutOfMemoryError as exc:
            assert is_out_of_memory(exc)
        model = unet3d(device, roi=192, batch=16)
        result = segment(study(64, 384), model, reuse=False)
        if not result.warnings:
            raise AssertionError("no out-of-memory under the cap: raise roi or batch")
        return " / ".join(result.warnings)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()


def finetune_amp(device: torch.device) -> str:
    """fp16 autocast + GradScaler on the bundled 2D network, 30 steps."""
    from medview.ai.models.registry import bundled_models_dir
    from medview.ai.runtime.loading import load_model

    folder = sorted((bundled_models_dir() / "lesion-seg").iterdir())[-1]
    module = load_model(folder, "cpu", reuse=False).module
    module.to(device).train()
    opt = torch.optim.AdamW(module.parameters(), 1e-4)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.rand(8, module_in(module), 128, 128, generator=g).to(device)
    y = (x[:, module_in(module) // 2] > 0.7).long().to(device)
    losses = []
    for _ in range(30):
        opt.zero_grad(set_to_none=True)
        ctx = torch.autocast("cuda", dtype=torch.float16) if cuda else contextlib.nullcontext()
        with ctx:
            loss = torch.nn.functional.cross_entropy(module(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss.detach()))
    if not np.isfinite(losses).all() or losses[-1] >= losses[0]:
        raise AssertionError(f"loss went {losses[0]:.3f} -> {losses[-1]:.3f}")
    return f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, scale {scaler.get_scale():g}"


def ddp_nccl(device: torch.device) -> str:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    if device.type != "cuda":
        return "skipped (NCCL needs CUDA)"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=device)
    try:
        net = DDP(torch.nn.Linear(64, 8).to(device), device_ids=[device.index or 0])
        opt = torch.optim.SGD(net.parameters(), 0.1)
        for _ in range(3):
            opt.zero_grad()
            net(torch.rand(16, 64, device=device)).square().mean().backward()
            opt.step()
        t = torch.ones(4, device=device)
        dist.all_reduce(t)
        assert float(t.sum()) == 4.0
        return f"3 steps, all_reduce ok, backend {dist.get_backend()}"
    finally:
        dist.destroy_process_group()


def tiny_unet():
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    return UNet(
        spatial_dims=2, in_channels=3, out_channels=3, channels=[4, 8], strides=[2], num_res_units=0
    ).eval()


def tiny_card(name: str) -> dict:
    return {
        "name": name,
        "version": "1.0",
        "task": "segmentation",
        "modality": "CT",
        "labels": [{"value": 1, "name": "lung nodule"}, {"value": 2, "name": "lesion"}],
        "intensity": {"low": -1000, "high": 400},
        "context_slices": 3,
    }


def onnx_cuda(device: torch.device, work: Path) -> str:
    import onnxruntime as ort

    from medview.ai.runtime.loading import load_model
    from medview.ai.runtime.user_models import import_model

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"skipped: onnxruntime has no CUDA provider ({ort.get_available_providers()})"
    path = work / "tiny.onnx"
    torch.onnx.export(
        tiny_unet(),
        torch.rand(1, 3, 32, 32),
        str(path),
        dynamo=False,
        input_names=["x"],
        dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}},
    )
    entry = import_model(path, tiny_card("gpu-check-onnx"))
    model = load_model(entry.folder, device, reuse=False)
    x = np.random.default_rng(0).random((4, 3, 64, 64), dtype=np.float32)
    cpu = load_model(entry.folder, "cpu", reuse=False).predict(x)
    diff = float(np.abs(model.predict(x) - cpu).max())
    if str(model.device) != str(device) or diff > 1e-3:
        raise AssertionError(f"ran on {model.device}, max |dp| {diff}")
    return f"CUDA provider, max |dp| vs CPU {diff:.2e}"


def pt2_to_gpu(device: torch.device, work: Path) -> str:
    from medview.ai.runtime.loading import load_model
    from medview.ai.runtime.user_models import import_model

    path = work / "tiny.pt2"
    n = torch.export.Dim("n", min=1, max=64)
    program = torch.export.export(
        tiny_unet(), (torch.rand(2, 3, 32, 32),), dynamic_shapes={"x": {0: n}}
    )
    torch.export.save(program, str(path))
    card = {**tiny_card("gpu-check-pt2"), "input_size": [32, 32]}
    entry = import_model(path, card)
    model = load_model(entry.folder, device, reuse=False)
    x = np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32)
    cpu = load_model(entry.folder, "cpu", reuse=False).predict(x)
    diff = float(np.abs(model.predict(x) - cpu).max())
    if diff > 0.05:
        raise AssertionError(f"max |dp| vs CPU {diff}")
    return f"on {model.device}, max |dp| vs CPU {diff:.2e}"


def nnunet_cuda(device: torch.device, work: Path) -> str:
    """nnU-Net's predictor on the GPU (on the device, with mirroring) for an nnU-Net model
    planned by nnU-Net itself (the tests' tiny model), with a focus slab first."""
    try:
        import nnunetv2  # noqa: F401
    except ModuleNotFoundError:
        return "skipped: nnunetv2 is not installed (the nnunet extra)"
    from medview.ai.runtime.inference import segment
    from medview.ai.runtime.loading import load_model
    from medview.ai.runtime.nnunet_models import import_nnunet
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume
    from tests.ai.nnunet_factory import build

    series = [generate_demo_study(work / f"demo{i}", seed=i, slices=12).series_dir for i in (1, 2)]
    model = load_model(import_nnunet(build(work / "nnunet", series)).folder, device, reuse=False)
    vol, _ = load_volume([series[0]])
    spans: list[tuple[int, int]] = []
    sync(device)
    t0 = time.perf_counter()
    result = segment(vol, model, reuse=False, focus=6, on_partial=lambda _r, s: spans.append(s))
    sync(device)
    return (
        f"{vol.shape[0]} slices in {time.perf_counter() - t0:.2f} s on {result.device}, "
        f"mirroring {model.predictor.use_mirroring}, partial {spans or 'none (one patch deep)'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="without CUDA, run the CPU-capable steps on small inputs",
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no device: CUDA is not available on this machine; nothing ran on a GPU")
        if not args.rehearse:
            return 0
        device, slices = torch.device("cpu"), 8
    else:
        device, slices = torch.device("cuda", 0), 300
        name = torch.cuda.get_device_name(device)
        print(f"device: {name}, torch {torch.__version__}, bf16 {torch.cuda.is_bf16_supported()}")
    with tempfile.TemporaryDirectory(prefix="medview-gpu-check-") as tmp:
        work = Path(tmp)
        os.environ["MEDVIEW_DATA_DIR"] = str(work / "data")  # imports go here, not to the user
        t0 = time.perf_counter()
        step("2D inference (bundled lesion-seg)", lambda: bundled_2d(device, slices))
        step("2D autocast bf16 / fp16", lambda: autocast_agreement(device, 2))
        step("3D sliding-window inference", lambda: sliding_3d(device, slices))
        step("3D autocast bf16 / fp16", lambda: autocast_agreement(device, 3))
        step("2D app path fp16 vs bf16", lambda: app_fp16(device, 2))
        step("3D app path fp16 vs bf16", lambda: app_fp16(device, 3))
        step("forced out-of-memory + recovery", lambda: forced_oom(device))
        step("fine-tune, fp16 AMP + GradScaler", lambda: finetune_amp(device))
        step("DDP, NCCL, one process", lambda: ddp_nccl(device))
        step("onnxruntime CUDA provider", lambda: onnx_cuda(device, work))
        step("imported .pt2 moved to the GPU", lambda: pt2_to_gpu(device, work))
        step("nnU-Net predictor on the GPU", lambda: nnunet_cuda(device, work))
        print(f"all {len(RESULTS)} steps passed in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The speed work of issue 19 must not change a single result: `medview infer` on a small demo
study and `medview convert` of a small CT series are compared with hashes computed by the
code before that work (tests/commands/data/results_golden.json).

The hashes cover what a reader gets: the label map and probability maps' voxels, the
findings as findings.json lists them (timings left out), and the converted NIfTI's voxels,
affine and dtype as MedView reads them back. Regenerate the file only when a result is
meant to change, and say why in the commit: `python tests/commands/test_results_unchanged.py`.

Changed once on purpose: the inference copy of the network (ai/runtime/fast_network.py) folds
the batch norms into the convolutions, which rounds differently in float32; on this study
probabilities_2 moved by one 1/127 step in some voxels, while the label map, the findings and
the other probability map kept their hashes (tests/ai/test_fast_network.py bounds the
difference against the plain path).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "data" / "results_golden.json"
DEMO_SEED, DEMO_SLICES = 3, 24


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def _volume_digest(path: Path) -> str:
    from medview.io.image_files import read_image

    v = read_image(path)
    return _digest(
        repr((v.array.shape, str(v.array.dtype))).encode(),
        np.ascontiguousarray(v.array).tobytes(),
        np.round(v.affine, 5).tobytes(),
    )


def infer_hashes(work: Path) -> dict[str, str]:
    """`medview infer` with the active bundled model on the demo study, one torch thread."""
    import torch

    from medview.ai.runtime.inference import clear_kept
    from medview.commands.infer import run_infer
    from medview.demo import generate_demo_study

    torch.set_num_threads(1)
    clear_kept()
    study = generate_demo_study(work / "demo", seed=DEMO_SEED, slices=DEMO_SLICES)
    out = work / "infer"
    assert run_infer(str(study.out_dir / "series"), None, str(out), device="cpu") == 0
    summary = json.loads((out / "findings.json").read_text())
    hashes = {
        "findings": _digest(json.dumps(summary["findings"], sort_keys=True).encode()),
        "labels": _volume_digest(out / "labels.nii.gz"),
    }
    for name in summary["files"]:
        if name.startswith("probabilities_"):
            hashes[name] = _volume_digest(out / name)
    hashes["n_findings"] = str(len(summary["findings"]))
    return hashes


def convert_hashes(work: Path) -> dict[str, str]:
    """`medview convert` of a 20 x 64² CT series (the benchmark's generator) to .nii and .npy."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from make_series import make_ct_series

    from medview.commands.convert import run_convert

    folder = make_ct_series(work / "series", n=20, size=64)
    hashes = {}
    for suffix in (".nii", ".nii.gz", ".npy"):
        out = work / f"out{suffix}"
        assert run_convert(str(folder), str(out), None) == 0
        if suffix == ".npy":
            a = np.load(out)
            hashes[suffix] = _digest(repr((a.shape, str(a.dtype))).encode(), a.tobytes())
        else:
            hashes[suffix] = _volume_digest(out)
    return hashes


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def test_infer_results_match_the_code_before_the_speed_work(tmp_path, golden, monkeypatch, capsys):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    got = infer_hashes(tmp_path)
    assert int(got["n_findings"]) > 0  # a study with nothing found would prove little
    assert got == golden["infer"]


def test_convert_results_match_the_code_before_the_speed_work(tmp_path, golden, capsys):
    assert convert_hashes(tmp_path) == golden["convert"]


if __name__ == "__main__":
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MEDVIEW_DATA_DIR"] = str(Path(tmp) / "data")
        GOLDEN.parent.mkdir(exist_ok=True)
        result = {
            "infer": infer_hashes(Path(tmp) / "i"),
            "convert": convert_hashes(Path(tmp) / "c"),
        }
        GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(json.dumps(result, indent=1))

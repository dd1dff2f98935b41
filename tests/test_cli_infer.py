"""`medview infer` as a user meets it: the same label map and findings as the job, the files
it promises (SEG, NIfTI maps, findings.json with the disclaimer), one-line refusals with exit
1, usage errors with exit 2, and an output folder policy that never overwrites other files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dicom_factory import write_ct_series

from medview.ai.models.cards import DISCLAIMER
from medview.cli import main
from medview.core.jobs import CancelToken, JobContext
from medview.io.dicom.seg import read_seg
from medview.io.image_files import read_image
from medview.jobs.inference import infer_job
from tests.ai.seg_models import BRIGHT_NAME, write_bright_model

torch.set_num_threads(1)


@pytest.fixture
def data_dir(kept_data_dir):
    write_bright_model(kept_data_dir / "models" / BRIGHT_NAME / "1.0")
    return kept_data_dir


def cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "medview", "--log-file", str(tmp_path / "log.txt"), "infer", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cli_and_job_agree_and_the_files_are_complete(tmp_path, demo, data_dir):
    from medview.io.open_volume import load_volume

    out = tmp_path / "out"
    run = cli(
        [
            str(demo.series_dir),
            "--model",
            f"{BRIGHT_NAME}:1.0",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--threshold",
            "0.6",
        ],
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert DISCLAIMER in run.stdout and f"{BRIGHT_NAME} 1.0" in run.stdout

    vol, series = load_volume([demo.series_dir])
    job, _ = _drive(
        infer_job(
            vol,
            data_dir / "models" / BRIGHT_NAME / "1.0",
            JobContext(CancelToken()),
            device="cpu",
            threshold=0.6,
        )
    )
    labels = job.label_map()
    assert labels.any()
    assert sorted(p.name for p in out.iterdir()) == [
        "findings.json",
        "labels.nii.gz",
        "probabilities_1.nii.gz",
        "probabilities_2.nii.gz",
        "seg.dcm",
    ]
    np.testing.assert_array_equal(read_image(out / "labels.nii.gz").array, labels)
    for value in (1, 2):
        np.testing.assert_array_equal(
            read_image(out / f"probabilities_{value}.nii.gz").array,
            job.segmentation.probability(value),
        )
    np.testing.assert_array_equal(read_seg(out / "seg.dcm", series).label_map, labels)

    report = json.loads((out / "findings.json").read_text())
    assert report["disclaimer"] == DISCLAIMER
    assert report["model"]["name"] == BRIGHT_NAME and report["model"]["version"] == "1.0"
    assert report["threshold"] == 0.6 and report["series_instance_uid"]
    assert report["findings"] == [f.to_dict() for f in job.findings]
    assert len(run.stdout.splitlines()) == len(job.findings) + 2

    # again into the same folder: an earlier output is replaced, stale files go
    (out / "probabilities_7.nii.gz").write_bytes(b"from another model")
    assert (
        main(["infer", str(demo.series_dir), "--model", BRIGHT_NAME, "--out", str(out), "--tta"])
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert "uncertainty.nii.gz" in names and "probabilities_7.nii.gz" not in names
    assert json.loads((out / "findings.json").read_text())["tta"] is True


def _drive(gen):
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value, None


def test_image_file_input_writes_no_seg_and_warns_of_unknown_modality(
    tmp_path, demo, data_dir, capsys
):
    from medview.io.image_files import write_volume
    from medview.io.open_volume import load_volume

    vol, _ = load_volume([demo.series_dir])
    nifti = tmp_path / "ct.nii.gz"
    write_volume(vol, nifti)
    out = tmp_path / "out"
    assert main(["infer", str(nifti), "--model", BRIGHT_NAME, "--out", str(out)]) == 0
    assert not (out / "seg.dcm").exists() and (out / "labels.nii.gz").is_file()
    assert "does not say its modality" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "words"),
    [
        ("unknown_model", "no model named 'nonesuch' is installed"),
        ("mr_series", "is a MR series; model bright-seg:1.0 is made for CT"),
        ("foreign_file", "holds notes.txt, which medview infer did not write"),
        ("out_is_file", "is a file; give a folder"),
    ],
)
def test_refusals_are_one_line_with_exit_1(tmp_path, demo, data_dir, capsys, make, words):
    path, model, out = str(demo.series_dir), BRIGHT_NAME, tmp_path / "out"
    if make == "unknown_model":
        model = "nonesuch"
    elif make == "mr_series":
        write_ct_series(tmp_path / "mr", n=4, modality="MR")
        path = str(tmp_path / "mr")
    elif make == "foreign_file":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        out.write_text("a file")
    code = main(
        [
            "--log-file",
            str(tmp_path / "log.txt"),
            "infer",
            path,
            "--model",
            model,
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err
    if make == "foreign_file":
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    "args", [["--threshold", "1.5"], ["--threshold", "0"], ["--device", "tpu"]]
)
def test_usage_errors_exit_2(tmp_path, demo, args):
    base = ["infer", str(demo.series_dir), "--out", str(tmp_path / "o"), "--model", BRIGHT_NAME]
    with pytest.raises(SystemExit) as stop:
        main(base + args)
    assert stop.value.code == 2
    assert not (tmp_path / "o").exists()


@pytest.fixture
def only_user_models(tmp_path, monkeypatch):
    """No bundled models: the user's folder alone decides which models fit."""
    import medview.ai.models.registry as registry

    empty = tmp_path / "no-bundled-models"
    empty.mkdir()
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: empty)


def test_without_model_the_only_fitting_model_runs_and_is_named(
    tmp_path, demo, data_dir, only_user_models, capsys
):
    write_bright_model(data_dir / "models" / BRIGHT_NAME / "1.1", version="1.1")
    from medview.ai.models.registry import activate

    activate(BRIGHT_NAME, "1.0")  # the active version runs, not the newest
    out = tmp_path / "out"
    assert main(["infer", str(demo.series_dir), "--out", str(out), "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    assert said.splitlines()[0].startswith(f"model: {BRIGHT_NAME}:1.0 (the active version")
    report = json.loads((out / "findings.json").read_text())
    assert (report["model"]["name"], report["model"]["version"]) == (BRIGHT_NAME, "1.0")


def test_without_model_several_fitting_models_are_listed_with_exit_2(
    tmp_path, demo, data_dir, capsys
):
    out = tmp_path / "out"
    code = main(
        ["--log-file", str(tmp_path / "log.txt"), "infer", str(demo.series_dir), "--out", str(out)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    # the bundled lesion model and the user's bright-seg are both CT segmentation models
    assert "models fit this CT series" in err and f"{BRIGHT_NAME}:1.0" in err
    assert "lesion-seg:" in err and "--model" in err
    assert not out.exists()


def test_without_model_no_fitting_model_is_one_line_with_exit_1(
    tmp_path, data_dir, only_user_models, capsys
):
    write_ct_series(tmp_path / "mr", n=4, modality="MR")
    code = main(
        [
            "--log-file",
            str(tmp_path / "log.txt"),
            "infer",
            str(tmp_path / "mr"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "no installed segmentation model fits this MR series" in err

"""`medview train` refuses a setting in one line naming the flag the person typed, and its
error event carries the setting as data (for the Training panel to word with its fields);
exit 2, a usage error, before anything is read or trained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("flags", "line", "data"),
    [
        (
            ["--epochs", "0"],
            "medview: --epochs 0: train at least 1 epoch (at most 100000)",
            {"setting": "epochs", "value": 0, "kind": "range"},
        ),
        (
            ["--set", "distill=2000"],
            "medview: --set distill 2000: use a weight from 0 (off) to 1000",
            {"setting": "distill", "value": 2000.0, "kind": "range"},
        ),
        (
            ["--batch-size", "4096", "--patch-size", "128"],
            "medview: --batch-size 4096 with --patch-size 128 is 67 million pixels a step",
            {"setting": "batch_size", "value": 4096, "kind": "step_size"},
        ),
    ],
)
def test_a_refused_setting_names_its_flag_and_travels_as_data(
    tmp_path: Path, flags, line, data
) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "medview",
            "--log-file",
            str(tmp_path / "log"),
            "train",
            "--data",
            str(tmp_path / "studies"),
            "--base",
            "tiny",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"MEDVIEW_DATA_DIR": str(tmp_path / "data"), "PATH": ""},
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line
    assert r.stderr.strip().startswith(line), r.stderr
    (event,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert event["event"] == "error" and event["message"] == r.stderr.strip()[9:]
    assert {k: event["setting"][k] for k in data} == data
    assert not (tmp_path / "data" / "training").exists()  # nothing begun

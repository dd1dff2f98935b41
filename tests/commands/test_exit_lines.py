"""Every non-zero exit of every command says why in one line on stderr, while what a script
reads on stdout (info's listing or JSON, train's events) stays: `medview info` on a folder
with no image series exits 1 with that line, and a command that fails without wording it
still gets one line naming the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import medview.commands.convert as convert
from medview.cli import main


@pytest.fixture
def log(tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return ["--log-file", str(tmp_path / "medview.log")]


@pytest.fixture
def not_images(tmp_path) -> Path:
    """A folder whose one file claims to be DICOM and is broken: no image series."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(bytes(128) + b"DICM" + b"\xff" * 64)
    return folder


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("medview: ") and "Traceback" not in err
    return err.strip()


def test_info_without_image_series_exits_1_with_one_line(log, not_images, tmp_path, capsys):
    assert main([*log, "info", str(not_images), "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["studies"] == []
    assert _one_line(err) == (
        f"medview: {not_images}: no image series found (1 file(s) not "
        f"read: {json.loads(out)['skipped'][0]['reason']})"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*log, "info", str(empty), str(not_images)]) == 1
    out, err = capsys.readouterr()
    assert "No image series found." in out
    assert _one_line(err).startswith("medview: the 2 paths given: no image series found")


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["info", "{tmp}/missing"], 1, "{tmp}/missing: "),
        (["convert", "{notes}", "{tmp}/out.nii.gz"], 1, "{notes}"),
        (["snapshot", "{notes}", "--out", "{tmp}/a.png", "--size", "huge"], 2, "--size 'huge'"),
        (["models", "activate", "no-such-model:1.0"], 1, "no-such-model"),
        (["models", "activate", "no-such-model"], 2, "name the version too"),
        (["infer", "{notes}", "--model", "no-such-model", "--out", "{tmp}/o"], 1, ""),
        (["train", "--data", "{tmp}/missing", "--base", "lesion-seg"], 1, "{tmp}/missing"),
    ],
)
def test_every_command_fails_in_one_line(log, not_images, tmp_path, capsys, args, status, words):
    filled = [a.format(tmp=tmp_path, notes=not_images) for a in args]
    assert main([*log, *filled]) == status
    err = _one_line(capsys.readouterr().err)
    assert words.format(tmp=tmp_path, notes=not_images) in err


def test_a_failure_nobody_worded_still_gets_one_line(
    log, not_images, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(convert, "run_convert", lambda *a: 1)
    assert main([*log, "convert", str(not_images), str(tmp_path / "o.npy")]) == 1
    assert _one_line(capsys.readouterr().err) == (
        f"medview: convert failed (exit 1); details in {tmp_path / 'medview.log'}"
    )

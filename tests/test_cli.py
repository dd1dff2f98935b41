"""The command line as a user meets it: exit codes, one-line errors, JSON shape, no PHI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import SAGITTAL, write_ct_series

from medview.cli import main


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medview", "--log-file", str(tmp_path / "log.txt"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def series(tmp_path: Path):
    return write_ct_series(
        tmp_path / "study" / "nested",
        n=6,
        shuffle=True,
        names=lambda i: f"x{i}",
        extra={"PatientName": "Secret^Person", "PatientID": "ID-12345"},
    )


def test_help_is_fast_path_without_heavy_imports():
    code = (
        "import sys\nfrom medview.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'pydicom', 'SimpleITK', 'torch', 'PySide6') "
        "if m in sys.modules]\nprint('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out
    assert "info" in out and "convert" in out


def test_info_json_describes_the_series_and_hides_phi(series, tmp_path, capsys):
    assert main(["--log-file", str(tmp_path / "l"), "info", str(tmp_path / "study"), "--json"]) == 0
    text = capsys.readouterr().out
    assert "Secret" not in text and "ID-12345" not in text
    data = json.loads(text)
    (study,) = data["studies"]
    (s,) = study["series"]
    assert s["shape"] == [6, 24, 32] and s["n_instances"] == 6
    assert s["pixel_spacing_row_col_mm"] == [0.7, 0.8]
    assert s["slice_spacing_mm"] == pytest.approx(2.5)
    assert s["origin_mm"] == pytest.approx(list(series.expected_affine[:3, 3]))
    assert s["slice_normal"] == pytest.approx([0, 0, 1])
    assert s["modality"] == "CT" and s["samples_per_pixel"] == 1
    assert s["transfer_syntaxes"] == ["1.2.840.10008.1.2.1"]
    for key in ("study_instance_uid", "study_date", "description"):
        assert key in study
    assert data["skipped"] == [] and data["non_image_objects"] == []
    assert (
        main(["--log-file", str(tmp_path / "l"), "info", str(tmp_path / "study"), "--show-phi"])
        == 0
    )
    assert "Secret^Person" in capsys.readouterr().out


def test_errors_are_one_line_with_path_and_exit_1(tmp_path):
    missing = tmp_path / "nope"
    r = run(["info", str(missing)], tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith(f"medview: {missing}: ") and "Traceback" not in r.stderr


def test_usage_errors_exit_2(tmp_path, series):
    assert run(["info"], tmp_path).returncode == 2
    assert run(["frobnicate"], tmp_path).returncode == 2
    r = run(["convert", str(tmp_path / "study"), str(tmp_path / "out.jpg")], tmp_path)
    assert r.returncode == 2 and ".nii.gz" in r.stderr
    for args, says in (
        (["train", "--epochs", "abc"], "invalid int value: 'abc'"),
        (["models", "activate"], "required: NAME:VERSION"),
        (["info", "x", "--colour"], "unrecognized arguments: --colour"),
    ):
        r = run(args, tmp_path)
        assert r.returncode == 2 and says in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("medview")


def test_convert_npy_holds_modality_values(series, tmp_path):
    out = tmp_path / "vol.npy"
    r = run(["convert", str(tmp_path / "study"), str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    arr = np.load(out)
    assert arr.dtype == np.int16
    np.testing.assert_array_equal(arr, series.expected_array)


@pytest.mark.parametrize("command", ["convert", "info"])
def test_convert_and_info_end_their_process_at_once_with_output_flushed(series, tmp_path, command):
    """From the entry point (no argv) they skip the interpreter's teardown, which would run
    the atexit handler; called with argv (in-process callers) main returns as usual."""
    out = tmp_path / "vol.nii"
    args = ["--log-file", str(tmp_path / "log"), command, str(tmp_path / "study")]
    args += [str(out)] if command == "convert" else []

    def launch(call: str) -> subprocess.CompletedProcess:
        code = (
            "import atexit, sys\nfrom medview.cli import main\n"
            f"atexit.register(print, 'TORN DOWN')\nsys.argv = ['medview', *{args!r}]\n"
            f"sys.exit({call})"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert ("wrote" if command == "convert" else "Series 1") in r.stdout
        return r

    assert "TORN DOWN" not in launch("main()").stdout
    assert (tmp_path / "log").exists()
    if command == "convert":
        assert out.stat().st_size > 352
    assert launch("main(sys.argv[1:])").stdout.rstrip().endswith("TORN DOWN")


def test_convert_asks_which_series_when_several(tmp_path):
    write_ct_series(tmp_path / "two", n=4, label="a", series_number=1)
    b = write_ct_series(
        tmp_path / "two", n=5, label="b", series_number=2, orientation=SAGITTAL, names="B{i}.dcm"
    )
    r = run(["convert", str(tmp_path / "two"), str(tmp_path / "o.npy")], tmp_path)
    assert r.returncode == 1 and "--series" in r.stderr
    r = run(
        ["convert", str(tmp_path / "two"), str(tmp_path / "o.npy"), "--series", b.series_uid],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), b.expected_array)


def test_internal_errors_go_to_the_log_not_the_terminal(tmp_path, monkeypatch, capsys):
    import medview.commands.info as info

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(info, "run_info", boom)
    log = tmp_path / "log.txt"
    assert main(["--log-file", str(log), "info", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err and str(log) in err
    assert "Traceback" in log.read_text()


def test_no_command_or_paths_open_the_viewer(tmp_path, monkeypatch):
    import medview.app

    calls = []
    monkeypatch.setattr(
        medview.app, "run_gui", lambda paths, demo=False: calls.append((list(paths), demo)) or 0
    )
    log = ["--log-file", str(tmp_path / "l")]
    assert main(log) == 0
    assert main([*log, str(tmp_path)]) == 0
    assert main(["-v", str(tmp_path), str(tmp_path)]) == 0
    assert calls == [([], False), ([str(tmp_path)], False), ([str(tmp_path)] * 2, False)]


def test_viewer_launch_builds_no_command_parser(tmp_path, monkeypatch, capsys):
    import medview.app
    import medview.cli

    def no_parser():
        raise AssertionError("the command parser was built for a viewer launch")

    monkeypatch.setattr(medview.cli, "_parser", no_parser)
    monkeypatch.setattr(medview.app, "run_gui", lambda paths, demo=False: 0)
    log = ["--log-file", str(tmp_path / "l")]
    assert main([*log, str(tmp_path)]) == 0
    assert main([*log, str(tmp_path / "gone")]) == 2
    assert "not a command (info, convert, demo," in capsys.readouterr().err


def test_command_names_are_the_parsers():
    import medview.cli

    assert medview.cli._parser().get_default("commands") == medview.cli.COMMANDS


def test_demo_opens_the_viewer_unless_no_gui(tmp_path, monkeypatch, capsys):
    import medview.app
    import medview.commands.demo as demo

    w = write_ct_series(tmp_path / "demo" / "series", n=3)
    calls = []
    monkeypatch.setattr(demo, "demo_series_dir", lambda args: w.paths[0].parent)
    monkeypatch.setattr(
        medview.app, "run_gui", lambda paths, demo=False: calls.append((list(paths), demo)) or 0
    )
    log = ["--log-file", str(tmp_path / "l")]
    assert main([*log, "demo"]) == 0
    assert calls == [([str(w.paths[0].parent)], True)]
    assert main([*log, "demo", "--no-gui"]) == 0
    assert "Series 1 CT" in capsys.readouterr().out and len(calls) == 1


def test_viewer_without_a_display_says_so_in_one_line(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    r = subprocess.run(
        [sys.executable, "-m", "medview", "--log-file", str(tmp_path / "l")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 1
    assert r.stderr.startswith("medview: no display found") and r.stderr.count("\n") == 1

"""`medview desktop-entry` puts a valid menu entry that starts this installation by absolute
path, with its icon, under XDG_DATA_HOME only; --remove takes exactly those back; an
unwritable folder ends in one sentence."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medview.cli import main
from tests.unprivileged import run_unprivileged, unprivileged_folder


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    return tmp_path / "share"


def test_entry_and_icon_are_written_and_start_this_installation(xdg: Path, capsys) -> None:
    assert main(["desktop-entry"]) == 0
    entry = xdg / "applications" / "medview.desktop"
    icon = xdg / "icons" / "hicolor" / "256x256" / "apps" / "medview.png"
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read_string(entry.read_text())
    desk = parsed["Desktop Entry"]
    assert desk["Type"] == "Application" and desk["Icon"] == "medview"
    assert "not a medical device" in desk["Comment"]
    argv = shlex.split(desk["Exec"])
    assert argv[-1] == "%F" and Path(argv[0]).is_absolute() and Path(argv[0]).exists()
    # the command it names really is this installation's MedView (launcher or -m medview)
    assert argv[0] == sys.executable or Path(argv[0]).parent == Path(sys.executable).parent
    out = subprocess.run([*argv[:-1], "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("medview ")
    assert sorted(p.relative_to(xdg).as_posix() for p in xdg.rglob("*") if p.is_file()) == [
        "applications/medview.desktop",
        "icons/hicolor/256x256/apps/medview.png",
    ]
    validator = shutil.which("desktop-file-validate")
    if validator:
        assert subprocess.run([validator, str(entry)], capture_output=True).returncode == 0
    assert main(["desktop-entry", "--remove"]) == 0
    assert not any(p.is_file() for p in xdg.rglob("*"))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_an_unwritable_folder_ends_in_one_sentence() -> None:
    code = """if True:
        import os, sys
        from pathlib import Path
        share = Path(sys.argv[1]) / "share"
        share.mkdir()
        share.chmod(0o500)
        os.environ["XDG_DATA_HOME"] = str(share)
        from medview.cli import main
        sys.exit(main(["--log-file", str(Path(sys.argv[1]) / "log.txt"), "desktop-entry"]))
        """
    with unprivileged_folder() as folder:
        done = run_unprivileged(code, folder)
        err = done.stderr.strip()
        assert done.returncode == 1, done.stderr
        assert err.count("\n") == 0 and "could not be written" in err
        assert list((folder / "share").iterdir()) == []


def test_a_file_where_the_folder_should_be_ends_in_one_sentence(xdg: Path, capsys) -> None:
    xdg.mkdir()
    (xdg / "applications").write_text("not a folder")
    assert main(["desktop-entry"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "could not be written" in err and "applications" in err

"""A MedView child process is started the right way from a Python install and from the frozen
app (where `sys.executable` is the app and takes no `-m`)."""

import subprocess
import sys

import medview
from medview.ui.child_command import medview_argv


def test_from_a_python_install_the_child_is_python_dash_m_medview_and_runs():
    argv = medview_argv("--version")
    assert argv == [sys.executable, "-m", "medview", "--version"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stdout.strip() == f"medview {medview.__version__}"


def test_in_the_frozen_app_the_child_is_the_app_itself(monkeypatch, tmp_path):
    app = tmp_path / "MedView" / "medview"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    monkeypatch.setattr(sys, "platform", "linux")
    assert medview_argv("train", "--job", "j.json") == [str(app), "train", "--job", "j.json"]


def test_frozen_on_windows_the_child_is_the_console_twin_of_the_windowed_exe(monkeypatch, tmp_path):
    gui, console = tmp_path / "medview-gui.exe", tmp_path / "medview.exe"
    gui.write_bytes(b"")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(gui))
    monkeypatch.setattr(sys, "platform", "win32")
    assert medview_argv("train") == [str(gui), "train"]  # no console twin: itself
    console.write_bytes(b"")
    assert medview_argv("train") == [str(console), "train"]
    monkeypatch.setattr(sys, "executable", str(console))
    assert medview_argv("--version") == [str(console), "--version"]

"""How to start a MedView command in a child process, the same way from a Python install and
from the frozen desktop app.

From a Python install `sys.executable` is the interpreter, so a child is `python -m medview
COMMAND`. In a PyInstaller bundle `sys.executable` is the app itself (dist/MedView/medview),
which takes no `-m`: the child is the app with the command's arguments. On Windows the
bundle has two executables over one set of libraries; the viewer runs from the windowed
`medview-gui.exe`, whose standard streams go nowhere, so a child whose stdout is read (the
training run's JSON events) must be the console `medview.exe` beside it (QProcess starts it
without a console window when the parent has none)."""

from __future__ import annotations

import sys
from pathlib import Path

CONSOLE_EXE = "medview.exe"  # packaging/medview.spec: the console twin of medview-gui.exe


def medview_argv(*args: str) -> list[str]:
    """The command line that runs `medview ARGS` in a child process of this one."""
    if not getattr(sys, "frozen", False):
        return [sys.executable, "-m", "medview", *args]
    exe = Path(sys.executable)
    if sys.platform == "win32" and exe.name.lower() != CONSOLE_EXE:
        console = exe.with_name(CONSOLE_EXE)
        if console.is_file():
            exe = console
    return [str(exe), *args]

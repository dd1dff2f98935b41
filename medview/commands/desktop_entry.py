"""`medview desktop-entry`: put MedView in the desktop's application menu (Linux, XDG).

The .deb installs its own entry; a pip install has only the `medview` script, and a reader
should not have to copy files by hand to find the app in the menu. The entry starts this
installation by absolute path (the GUI launcher beside the running Python, or the frozen app
itself), so it works without the environment's `bin` on PATH. Writes only the two files
below under XDG_DATA_HOME (default ~/.local/share), and `--remove` takes back exactly those."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from medview.commands import EXIT_BAD_INPUT, EXIT_OK
from medview.core.errors import MedviewError

ENTRY_NAME = "medview.desktop"
ICON_SIZE = "256x256"
_ICON = Path(__file__).resolve().parent.parent / "resources" / "icons" / "medview.png"


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def entry_paths() -> tuple[Path, Path]:
    home = data_home()
    return (
        home / "applications" / ENTRY_NAME,
        home / "icons" / "hicolor" / ICON_SIZE / "apps" / "medview.png",
    )


def launch_command() -> list[str]:
    """How the menu starts this installation: the frozen app, the `medview-gui` launcher
    beside this Python (pip's gui-script), else this Python with `-m medview`."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    gui = Path(sys.executable).with_name("medview-gui")
    return [str(gui)] if gui.exists() else [sys.executable, "-m", "medview"]


def entry_text(command: list[str]) -> str:
    exec_line = " ".join(shlex.quote(part) for part in command)
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Name=MedView",
            "GenericName=CT and MR viewer",
            "Comment=View CT and MR studies with AI assistance (not a medical device)",
            f"Exec={exec_line} %F",
            "Icon=medview",
            "Terminal=false",
            "Categories=Graphics;MedicalSoftware;Science;Viewer;",
            "Keywords=DICOM;CT;MR;MRI;radiology;NIfTI;",
            "MimeType=application/dicom;",
            "StartupWMClass=medview",
            "",
        ]
    )


def run_desktop_entry(remove: bool = False) -> int:
    entry, icon = entry_paths()
    try:
        if remove:
            for path in (entry, icon):
                path.unlink(missing_ok=True)
            print(f"removed {entry} and {icon}")
            return EXIT_OK
        if not _ICON.is_file():
            raise MedviewError(
                str(_ICON), "the app icon is missing from this installation; reinstall MedView"
            )
        for path in (entry, icon):
            path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_ICON, icon)
        tmp = entry.with_name(entry.name + ".tmp")
        tmp.write_text(entry_text(launch_command()), encoding="utf-8")
        os.replace(tmp, entry)
    except OSError as err:
        print(
            f"medview: {err.filename or entry}: could not be written "
            f"({err.strerror or err}); check that the folder is yours and writable",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except MedviewError as err:
        print(f"medview: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"MedView is in the application menu: {entry} (icon {icon})")
    return EXIT_OK

"""What the viewer remembers between sessions: layout, last folder, window geometry and dock
state, recent studies.

Stored with QSettings in INI format as `settings.ini` in the MedView data folder
(io.saved; MEDVIEW_DATA_DIR overrides the folder), not in the platform registry, so a
portable install or a test keeps everything in one folder it owns. Recent studies are paths
the reader opened, never patient names (this file is not protected health information)."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6 import QtCore

from medview.io import saved

MAX_RECENT = 10
LAYOUTS = ("1", "1x3", "2x2", "3d")
DEFAULT_LAYOUT = "1"  # one view of the acquired plane, as reading viewers open a series


class Settings:
    """Typed access to the settings file; every setter writes through at once."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or saved.settings_file()
        self._q = QtCore.QSettings(str(self.path), QtCore.QSettings.Format.IniFormat)

    def _str(self, key: str, default: str = "") -> str:
        value = self._q.value(key, default)
        return value if isinstance(value, str) else default

    def _set(self, key: str, value: object) -> None:
        self._q.setValue(key, value)
        self._q.sync()

    @property
    def layout(self) -> str:
        value = self._str("view/layout", DEFAULT_LAYOUT)
        return value if value in LAYOUTS else DEFAULT_LAYOUT

    @layout.setter
    def layout(self, value: str) -> None:
        self._set("view/layout", value)

    @property
    def finding_window(self) -> bool:
        """Going to an AI finding sets the window its label calls for (lung for a lung
        nodule); the reader may turn that off in the AI panel."""
        return self._str("ai/finding_window", "true") != "false"

    @finding_window.setter
    def finding_window(self, value: bool) -> None:
        self._set("ai/finding_window", "true" if value else "false")

    @property
    def last_folder(self) -> str:
        return self._str("files/last_folder")

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self._set("files/last_folder", value)

    @property
    def geometry(self) -> QtCore.QByteArray:
        value = self._q.value("window/geometry")
        return value if isinstance(value, QtCore.QByteArray) else QtCore.QByteArray()

    @geometry.setter
    def geometry(self, value: QtCore.QByteArray) -> None:
        self._set("window/geometry", value)

    @property
    def window_state(self) -> QtCore.QByteArray:
        value = self._q.value("window/state")
        return value if isinstance(value, QtCore.QByteArray) else QtCore.QByteArray()

    @window_state.setter
    def window_state(self, value: QtCore.QByteArray) -> None:
        self._set("window/state", value)

    @property
    def recent(self) -> list[str]:
        """Most recent first. Kept as one JSON string: QSettings returns a one-element list
        as a plain string, and INI lists of paths with commas are fragile."""
        try:
            items = json.loads(self._str("files/recent", "[]"))
        except ValueError:
            return []
        return (
            [p for p in items if isinstance(p, str)][:MAX_RECENT] if isinstance(items, list) else []
        )

    def add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent if p != path]
        self._set("files/recent", json.dumps(items[:MAX_RECENT]))

    def remove_recent(self, path: str) -> None:
        self._set("files/recent", json.dumps([p for p in self.recent if p != path]))

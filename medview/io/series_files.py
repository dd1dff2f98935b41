"""The files the viewer's per-series stores keep the reader's work in (viewer.store_file's
StoreFile on disk): measurements and decisions on AI findings, one JSON file per series where
io.saved says, written atomically, a damaged one kept aside, never deleted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medview.io import saved
from medview.io.workspace import atomic_write_text, keep_aside, read_store_file


class JsonStoreFile:
    """One of the reader's versioned JSON documents on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def where(self) -> str:
        return str(self.path)

    def read(self, fmt: str, version: int, what: str) -> dict[str, Any] | None:
        return read_store_file(self.path, fmt, version, what)

    def write(self, doc: dict[str, Any]) -> None:
        atomic_write_text(self.path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")

    def keep_aside(self, move: bool) -> str:
        return keep_aside(self.path, move).name


def measurements_file(series_key: str) -> JsonStoreFile:
    return JsonStoreFile(saved.measurements_file(series_key))


def findings_file(series_key: str) -> JsonStoreFile:
    return JsonStoreFile(saved.findings_file(series_key))


def protocols_file() -> JsonStoreFile:
    """The reader's hanging protocols (viewer.protocols)."""
    return JsonStoreFile(saved.protocols_file())

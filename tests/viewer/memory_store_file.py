"""A StoreFile kept in memory: the viewer's stores run on it with no disk at all, which is
what keeping the viewer free of disk IO buys (io.series_files is the one on disk)."""

from __future__ import annotations

import copy
import json
from typing import Any

from medview.core.errors import StoreFileProblem


class MemoryStoreFile:
    def __init__(
        self, doc: dict[str, Any] | None = None, problem: StoreFileProblem | None = None
    ) -> None:
        self.doc = doc
        self.problem = problem  # what read() raises, as a damaged or foreign file would
        self.aside: list[tuple[dict[str, Any] | None, bool]] = []  # kept copies, moved?
        self.writes = 0

    name = "memory.json"
    where = "memory:/memory.json"

    def read(self, fmt: str, version: int, what: str) -> dict[str, Any] | None:
        if self.problem is not None:
            raise self.problem
        return copy.deepcopy(self.doc)

    def write(self, doc: dict[str, Any]) -> None:
        self.doc = json.loads(json.dumps(doc))  # only what would survive a file
        self.problem = None
        self.writes += 1

    def keep_aside(self, move: bool) -> str:
        self.aside.append((copy.deepcopy(self.doc), move))
        if move:
            self.doc = None
        return f"memory.json.damaged-{len(self.aside)}"

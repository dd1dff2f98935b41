"""The file a per-series store (measurements, decisions on AI findings) keeps its entries in,
as the viewer sees it: read a document, write one, keep a damaged copy aside. The viewer
holds the state and decides what a bad file means; reading and writing disk is io's
(io.series_files), handed to the store by whoever makes it (the UI), so the viewer stays free
of disk IO and its stores run in tests on a file in memory as well as on disk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class StoreFile(Protocol):
    """One versioned JSON document ({"format": ..., "version": n, ...}) of the reader's."""

    @property
    def name(self) -> str:
        """Its file name, for sentences that need no folder."""

    @property
    def where(self) -> str:
        """Its full path, for sentences the reader must act on."""

    def read(self, fmt: str, version: int, what: str) -> dict[str, Any] | None:
        """The document, None when there is none yet; core.errors.StoreFileProblem when it
        cannot be used (`what` names the kind of file in the reason)."""

    def write(self, doc: dict[str, Any]) -> None:
        """Replace the document whole (a crash leaves the old or the new); OSError when it
        cannot be written."""

    def keep_aside(self, move: bool) -> str:
        """Keep the file as it is under a new name (moved when nothing in it is usable,
        copied otherwise) and return that name; OSError when it cannot."""


# a series key -> the file its entries are kept in
OpenStoreFile = Callable[[str], StoreFile]

"""The progress-and-cancel protocol passed down into long work (after ITK-SNAP's
AbstractProgressDelegate): tiny, so io and ai functions can take it without knowing Qt."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass


class JobCancelled(Exception):
    """Raised inside a job when its CancelToken was set; callers treat it as a normal end."""


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1, or -1 when the total is not known yet
    message: str = ""


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """Thread-safe flag checked by long loops; `raise_if_cancelled` is the usual check."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled()


class JobStatus(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


def report(callback: ProgressCallback | None, fraction: float, message: str = "") -> None:
    """Call a progress callback if one was given, so callers need no None checks."""
    if callback is not None:
        callback(Progress(fraction, message))


EventCallback = Callable[[object], None]


@dataclass
class JobContext:
    """What every job receives besides its inputs: the cancel flag, where progress goes, and
    where intermediate results go (e.g. the first slice of a series still loading)."""

    cancel: CancelToken
    progress: ProgressCallback | None = None
    event: EventCallback | None = None

    def emit(self, item: object) -> None:
        if self.event is not None:
            self.event(item)

"""Undo / redo of label edits as sparse changes, grouped per stroke.

A Change holds only the voxels an edit really changed (flat indices, old and new values),
as napari's labels layer keeps paint atoms, so memory grows with the voxels edited and never
with the volume: a 20-voxel dab on a 300 x 512 x 512 map costs 200 bytes, not 75 MiB. A
stroke (mouse press to release, or one tool action) merges its dabs into one Change, keeping
each voxel's value from before the stroke, so one undo takes back the whole stroke.

The history is bounded by steps (at least 100 a series) and by bytes; the oldest steps go
first. A new edit after an undo drops the redo steps, as every editor does."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_MAX_STEPS = 200
DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB of changes a series before the oldest steps go


@dataclass(frozen=True)
class Change:
    indices: np.ndarray  # int64 flat indices into the label array, sorted, unique
    old: np.ndarray  # uint8, value before
    new: np.ndarray  # uint8, value after
    # (table before, table after) when the edit also changed the segment table (a segment
    # added, removed, renamed, marked reviewed): undo puts the table back with the voxels,
    # so an undone "remove segment" brings back both. None for voxel-only edits.
    segments: tuple[Any, Any] | None = None

    @property
    def nbytes(self) -> int:
        return int(self.indices.nbytes + self.old.nbytes + self.new.nbytes)

    @property
    def size(self) -> int:
        return int(self.indices.size)

    def undo(self, array: np.ndarray) -> None:
        array.reshape(-1)[self.indices] = self.old

    def redo(self, array: np.ndarray) -> None:
        array.reshape(-1)[self.indices] = self.new


def merge(changes: list[Change]) -> Change:
    """One Change equal to applying `changes` in order: each voxel's first old value and
    last new value; voxels that end where they started drop out."""
    changes = [c for c in changes if c.size]
    if not changes:
        return Change(np.empty(0, np.int64), np.empty(0, np.uint8), np.empty(0, np.uint8))
    if len(changes) == 1:
        return changes[0]
    idx = np.concatenate([c.indices for c in changes])
    old = np.concatenate([c.old for c in changes])
    new = np.concatenate([c.new for c in changes])
    # first occurrence gives the value before the stroke; last occurrence the value after
    uniq, first = np.unique(idx, return_index=True)
    _, last_rev = np.unique(idx[::-1], return_index=True)
    last = idx.size - 1 - last_rev
    old_u, new_u = old[first], new[last]
    moved = old_u != new_u
    return Change(uniq[moved], old_u[moved], new_u[moved])


class History:
    """Undo and redo stacks of Changes for one label array."""

    def __init__(
        self, max_steps: int = DEFAULT_MAX_STEPS, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.max_steps = max(1, max_steps)
        self.max_bytes = max_bytes
        self._undo: deque[tuple[str, Change]] = deque()
        self._redo: list[tuple[str, Change]] = []
        # the step the last push / undo / redo applied, and whether it was undone (the array
        # then holds its old values): what autosave journals after each step
        self.last: tuple[Change, bool] | None = None

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for _, c in self._undo) + sum(c.nbytes for _, c in self._redo)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_name(self) -> str:
        return self._undo[-1][0] if self._undo else ""

    def redo_name(self) -> str:
        return self._redo[-1][0] if self._redo else ""

    def push(self, name: str, change: Change) -> None:
        """Record an edit already applied to the array; changes of no voxel and no segment
        are not steps."""
        if not change.size and change.segments is None:
            return
        self._redo.clear()
        self._undo.append((name, change))
        self.last = (change, False)
        while len(self._undo) > self.max_steps or (
            len(self._undo) > 1 and self.nbytes > self.max_bytes
        ):
            self._undo.popleft()

    def undo(self, array: np.ndarray) -> Change | None:
        if not self._undo:
            return None
        name, change = self._undo.pop()
        change.undo(array)
        self._redo.append((name, change))
        self.last = (change, True)
        return change

    def redo(self, array: np.ndarray) -> Change | None:
        if not self._redo:
            return None
        name, change = self._redo.pop()
        change.redo(array)
        self._undo.append((name, change))
        self.last = (change, False)
        return change

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

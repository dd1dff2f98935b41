"""LabelAutosaver: keeps an editor's label map saved as the reader works, without Qt.

After every undo step (a stroke from press to release, a fill, an undo, a redo) the step's
voxels go to the store's journal, fsynced — a few hundred microseconds for a stroke — so a
crash loses at most the stroke being drawn. Every `interval_s` with edits, `tick()` hands
out a SnapshotTask for the UI's worker: the whole map is written as a new snapshot from the
live array and the journal starts over, so replay at the next start stays short. A normal
close (`close()`) takes a final snapshot on the calling thread and marks it clean; whatever
is newer than the clean save at the next start is offered for recovery
(io.label_catalog.pending_recovery).

The editor is anything with `label_map`, `revision` (counts every change), `history.last`
(core.history: the step just applied and whether it was undone) and subscribe / unsubscribe
of listener(event) with "segments" and "history" events (viewer.label_editor.LabelEditor).
Changes it is not told about (revision moved, no step) are caught by the next snapshot."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from medview.core.errors import MedviewError
from medview.core.labels import LabelMap, Segment
from medview.io.labels.store import LabelSource, LabelStore

DEFAULT_INTERVAL_S = 5.0


class EditorLike(Protocol):
    label_map: LabelMap
    revision: int
    history: Any

    def subscribe(self, listener: Callable[[str], None]) -> None: ...

    def unsubscribe(self, listener: Callable[[str], None]) -> None: ...


@dataclass
class SnapshotTask:
    """One snapshot to write off the GUI thread: `run()` (or jobs.labels.snapshot_job)."""

    store: LabelStore
    number: int
    array: np.ndarray  # the live label array: read slab by slab (io.label_codec)
    segments: dict[int, Segment] = field(default_factory=dict)  # a copy, taken at begin
    revision: int = 0

    def run(self, on_chunk: Callable[[float], None] | None = None) -> dict[int, int]:
        """Write it; voxel counts per value. MedviewError when the disk refuses."""
        return self.store.write_snapshot(self.number, self.array, self.segments, on_chunk=on_chunk)


class LabelAutosaver:
    def __init__(
        self,
        store: LabelStore,
        editor: EditorLike,
        source: LabelSource,
        interval_s: float = DEFAULT_INTERVAL_S,
        on_problem: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.editor, self.interval_s = store, editor, interval_s
        self.on_problem, self._clock = on_problem, clock
        self.message = ""  # the last problem, one sentence
        store.start(source)
        self._journaled = editor.revision  # the revision the journal (or a snapshot) covers
        self._snapshot_revision = editor.revision
        self._last_snapshot = clock()
        self._in_flight: SnapshotTask | None = None
        self._closed = False
        self._table_journaled = False  # the table goes with the session's first record
        editor.subscribe(self._on_event)

    # --- after each step (GUI thread) ----------------------------------------------------
    def _on_event(self, what: str) -> None:
        if what == "segments":
            self._journal(lambda: self.store.append_segments(self.editor.label_map.segments))
        elif what == "history":
            self.after_step()

    def after_step(self) -> None:
        """Journal the step the editor's history just applied (called on its "history"
        event; call it yourself for an editor that does not emit one)."""
        last = getattr(self.editor.history, "last", None)
        if last is None:
            return
        change, undone = last
        if change.size:
            self._journal(
                lambda: self.store.append_voxels(
                    change.indices, change.old if undone else change.new
                )
            )
        else:
            self._journaled = self.editor.revision

    def _journal(self, append: Callable[[], None]) -> None:
        try:
            if not self._table_journaled:
                self.store.append_segments(self.editor.label_map.segments)
                self._table_journaled = True
            append()
        except MedviewError as err:
            self._tell(str(err))  # the next snapshot tries again with everything
            return
        self._journaled = self.editor.revision

    def _tell(self, message: str) -> None:
        self.message = message
        if self.on_problem is not None:
            self.on_problem(message)

    # --- every few seconds (GUI thread begins, a worker writes) --------------------------
    @property
    def busy(self) -> bool:
        return self._in_flight is not None

    def snapshot_due(self) -> bool:
        changed = self.editor.revision != self._snapshot_revision
        unjournaled = self.editor.revision != self._journaled
        late = self._clock() - self._last_snapshot >= self.interval_s
        return (
            not self._closed
            and self._in_flight is None
            and changed
            and (
                late
                or (
                    unjournaled and self._clock() - self._last_snapshot >= min(self.interval_s, 1.0)
                )
            )
        )

    def tick(self) -> SnapshotTask | None:
        """A snapshot to run on the worker when one is due, else None. Pass its outcome to
        `finish` on the GUI thread."""
        if not self.snapshot_due():
            return None
        task = SnapshotTask(
            self.store,
            self.store.begin_snapshot(),
            self.editor.label_map.array,
            dict(self.editor.label_map.segments),
            self.editor.revision,
        )
        self._in_flight, self._last_snapshot = task, self._clock()
        return task

    def finish(self, task: SnapshotTask, error: BaseException | None = None) -> None:
        if task is self._in_flight:
            self._in_flight = None
        if error is None:
            self._snapshot_revision = max(self._snapshot_revision, task.revision)
            self._journaled = max(self._journaled, task.revision)
        elif isinstance(error, MedviewError):
            self._tell(str(error))

    def run_now(self) -> None:
        """Take a due snapshot on this thread (tests, or a UI without a worker)."""
        task = self.tick()
        if task is not None:
            try:
                task.run()
            except MedviewError as err:
                self.finish(task, err)
                return
            self.finish(task)

    # --- the end of a session ------------------------------------------------------------
    def close(self) -> None:
        """A normal close: final snapshot marked clean, on this thread; stops listening.
        A snapshot still running on the worker is overtaken, never saved over this one."""
        if self._closed:
            return
        self._closed = True
        self.editor.unsubscribe(self._on_event)
        if self.editor.revision != self._snapshot_revision or self.store.has_unsaved():
            try:
                self.store.save(self.editor.label_map, clean=True)
            except MedviewError as err:
                self._tell(str(err))
                return
        self.store.close_journal()

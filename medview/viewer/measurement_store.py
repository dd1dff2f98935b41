"""MeasurementStore: the measurements of the open series, kept across sessions.

One document per series, rewritten whole on every committed change (a reader's work is never
lost to a crash): on disk, measurements/<series>.json in the data folder (io.series_files,
which whoever makes the store hands it as `open_file`). Loaded whenever the ViewerState
opens a volume. A file that cannot be read is never overwritten: a damaged one is moved
aside as <name>.damaged-<n> (copied aside when only some entries are bad, so the good ones
still load), one written by a newer MedView is left alone and this session does not save
over it; either way one sentence says so and the series opens. A volume opened without a
series key, or a store made without `open_file`, keeps its measurements in memory only.

Qt-free: widgets listen with subscribe(listener(event, measurement_id))."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medview.core.errors import StoreFileProblem
from medview.viewer import state as st
from medview.viewer.measurements import Measurement, MeasurementValues, measure
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from medview.viewer.store_file import OpenStoreFile, StoreFile
from medview.viewer.store_problems import StoreProblems

FORMAT = "medview-measurements"
VERSION = 1
# events passed to listeners, with the id of the measurement concerned ("" for all)
RESET, ADDED, CHANGED, REMOVED, SELECTED, MESSAGE = (
    "reset",
    "added",
    "changed",
    "removed",
    "selected",
    "message",
)
Listener = Callable[[str, str], None]


class MeasurementStore(StoreProblems):
    FILE_NOUN = "measurements"
    NOT_SAVED = "changes made now will not be saved"
    WITHOUT = "the series opens without measurements"

    def __init__(self, state: ViewerState, open_file: OpenStoreFile | None = None) -> None:
        self.state = state
        self._open_file = open_file
        self.measurements: dict[str, Measurement] = {}  # in the order they were drawn
        self.selected = ""
        self.message = ""  # the last problem, one sentence for the reader
        self.file: StoreFile | None = None
        self._writable = False
        self._values: dict[str, MeasurementValues] = {}
        self._listeners: list[Listener] = []
        state.subscribe(self._on_state)
        if state.volume is not None:
            self._load()

    # -- listeners
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: str, mid: str = "") -> None:
        for fn in list(self._listeners):
            fn(event, mid)

    def _on_state(self, what: str) -> None:
        if what == st.VOLUME:
            self._load()

    # -- queries
    def values(self, mid: str) -> MeasurementValues:
        """The measurement's values, computed once per change of its points."""
        if mid not in self._values:
            m = self.measurements[mid]
            self._values[mid] = measure(m, self.state.volume, self.state.maps[m.plane])
        return self._values[mid]

    def on_plane(self, plane: Plane) -> list[Measurement]:
        return [m for m in self.measurements.values() if m.plane is plane]

    # -- changes
    def add(self, m: Measurement, save: bool = True) -> Measurement:
        """A new measurement, numbered after the others of its kind. `save=False` while it
        is still being drawn; the drawing tool saves when the mouse is released."""
        m.number = 1 + max(
            (o.number for o in self.measurements.values() if o.kind == m.kind), default=0
        )
        self.measurements[m.id] = m
        self._emit(ADDED, m.id)
        self.select(m.id)
        if save:
            self.save()
        return m

    def move(self, mid: str, points_lps: np.ndarray, save: bool = True) -> None:
        """New points (a handle dragged): values follow at once; `save=False` for the
        positions in the middle of a drag, the last one saves."""
        m = self.measurements.get(mid)
        if m is None:
            return
        m.points_lps = np.asarray(points_lps, float).reshape(m.points_lps.shape)
        self._values.pop(mid, None)
        self._emit(CHANGED, mid)
        if save:
            self.save()

    def rename(self, mid: str, label: str) -> None:
        m = self.measurements.get(mid)
        if m is None or m.label == label.strip():
            return
        m.label = label.strip()
        self._emit(CHANGED, mid)
        self.save()

    def remove(self, mid: str, save: bool = True) -> None:
        """`save=False` drops one still being drawn (a slip of the hand), unsaved anyway."""
        if self.measurements.pop(mid, None) is None:
            return
        self._values.pop(mid, None)
        if self.selected == mid:
            self.selected = ""
        self._emit(REMOVED, mid)
        if save:
            self.save()

    def select(self, mid: str) -> None:
        if mid != self.selected and (not mid or mid in self.measurements):
            self.selected = mid
            self._emit(SELECTED, mid)

    # -- files
    def save(self) -> None:
        if self.file is None or not self._writable:
            return
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "series_key": self.state.series_key,
            "measurements": [m.to_dict() for m in self.measurements.values()],
        }
        try:
            self.file.write(doc)
        except OSError as err:
            self._tell(
                f"Measurements could not be saved to {self.file.where} "
                f"({err.strerror or err}); free some space or check the folder's "
                "permissions — they stay on screen until MedView closes."
            )

    def _tell(self, message: str) -> None:
        self.message = message
        self._emit(MESSAGE)

    def _load(self) -> None:
        self.measurements, self._values, self.selected, self.message = {}, {}, "", ""
        key = self.state.series_key if self.state.volume is not None else ""
        self.file = self._open_file(key) if key and self._open_file is not None else None
        self._writable = self.file is not None
        if self.file is not None:
            for m in self._read(self.file):
                self.measurements[m.id] = m
        self._emit(RESET)
        if self.message:
            self._emit(MESSAGE)

    def _read(self, file: StoreFile) -> list[Measurement]:
        try:
            doc = file.read(FORMAT, VERSION, "measurements")
        except StoreFileProblem as problem:
            if problem.damaged:
                return self._damaged(file, problem.reason)
            return self._leave(f"The measurements file {file.where} is not used: {problem.reason}")
        if doc is None:
            return []
        if doc.get("series_key") != self.state.series_key:
            return self._damaged(file, "it belongs to another series")
        if not isinstance(doc.get("measurements"), list):
            return self._damaged(file, "it has no list of measurements")
        return self._entries(file, doc["measurements"])

    def _entries(self, file: StoreFile, entries: list) -> list[Measurement]:
        """The entries that make sense for this volume; the file is copied aside before a
        save can drop the others."""
        good, problems = [], []
        for entry in entries:
            try:
                m = Measurement.from_dict(entry)
                if not 0 <= m.slice_index < self.state.maps[m.plane].n_slices:
                    raise ValueError(f"slice {m.slice_index} is outside this series")
                good.append(m)
            except ValueError as err:
                problems.append(str(err))
        return self._partly_read(file, good, problems, len(entries), "measurements")

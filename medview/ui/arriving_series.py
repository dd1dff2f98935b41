"""ArrivingSeries: the first image series of a PACS retrieval shown while it arrives, as the
reading viewers do (Horos and RadiAnt show a series growing during its transfer). Each file
that arrives is counted, and the native-plane loading page shows the first to arrive with
how many are here. When the reader scrolls (wheel, Up / Down), the files are placed along the
series from their headers (jobs.arriving.order_job; those arriving later as they come) and
the reader steps through the slices here so far. A slice's image is read only when it is
looked at: a transfer nobody scrolls through reads no file twice (bench_pacs_arriving.py).

It ends when the window shows anything else: the series opens whole (PacsActions opens it
when it is complete), or the reader opens another study; a retrieval that fails or is
cancelled leaves the viewer as it was before. A resumed retrieval shows the slices that
were here already with those that arrive. `slice_file` is the file on screen, so the
whole series can open at the slice the reader was looking at."""

from __future__ import annotations

from bisect import bisect
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from medview.core.series import SeriesInfo
from medview.jobs.arriving import image_job, order_job
from medview.ui.view_grid import ViewGrid
from medview.ui.workers import JobWorker

KEPT_IMAGES = 16  # slices read lately, kept so scrolling back is immediate
WORDS_MS = 250  # the count of slices here is redrawn at most this often


class ArrivingSeries(QtCore.QObject):
    shown = QtCore.Signal(int, int)  # the slice on screen (from 1) and how many are here

    def __init__(self, grid: ViewGrid, pool: QtCore.QThreadPool, parent=None) -> None:
        super().__init__(parent)
        self.grid, self._pool = grid, pool
        self.active = False
        self._words = QtCore.QTimer(self, singleShot=True, interval=WORDS_MS)
        self._words.timeout.connect(self._show_words)
        self._reset()
        grid.loading_step.connect(self.step)

    def _reset(self) -> None:
        self.series_dir: Path | None = None  # the series shown (its folder)
        self._skipped: set[Path] = set()  # folders whose first file is not an image
        self.order: list[tuple[float, int, str]] = []  # (place, arrival, path), sorted
        self._pending: list[str] = []  # arrived, not placed yet
        self._arrivals = 0
        self._scrolled = False  # from the first scroll on, arrivals are placed as they come
        self._steps = 0  # scrolled, not applied yet (waiting for files to be placed)
        self.slice_file: str | None = None
        self._drawn: str | None = None  # the file whose image the page shows
        self._images: dict[str, tuple[SeriesInfo, np.ndarray]] = {}
        self._placing: JobWorker | None = None
        self._reading: JobWorker | None = None
        self._shown_once = False

    def start(self) -> None:
        """A retrieval starts: show its first image series as it arrives."""
        self._reset()
        self.active = True

    def stop(self) -> None:
        """The retrieval ended. Still on screen (it failed or was cancelled before the
        series opened whole): the viewer goes back to what it showed before."""
        if self.active and self._shown_once and self.grid.arriving:
            self.grid.end_loading()
        self.active = False

    def add(self, path: str) -> None:
        """A file of the retrieval has been stored at `path`."""
        if not self._still_showing():
            return
        folder = Path(path).parent
        if folder in self._skipped:
            return
        if self.series_dir is None:
            self.series_dir = folder
            # a resumed retrieval brings only what is missing: the rest is here already
            self._pending = sorted(str(p) for p in folder.glob("*.dcm") if str(p) != path)
        if folder != self.series_dir:
            return
        self._pending.append(path)
        if self.slice_file is None:
            self.slice_file = path
        if self._scrolled:
            self._place_more()
        self._show()

    def step(self, delta: int) -> None:
        """The reader scrolled `delta` slices through those here."""
        if not self._still_showing() or self.slice_file is None:
            return
        self._scrolled = True
        self._steps += delta
        if self._pending or self._placing is not None:
            self._place_more()  # the step is taken once they are placed
            return
        self._take_steps()

    def _take_steps(self) -> None:
        paths = self._paths()
        if not paths or not self._steps or self.slice_file not in paths:
            return
        here = paths.index(self.slice_file)
        self.slice_file = paths[max(0, min(len(paths) - 1, here + self._steps))]
        self._steps = 0
        self._show()

    def on_screen(self) -> tuple[SeriesInfo, np.ndarray] | None:
        """The slice shown now (its own one-slice series and image), while it is shown."""
        if self.slice_file is None or not self._still_showing():
            return None
        return self._images.get(self.slice_file)

    # -- internals
    def _still_showing(self) -> bool:
        """False once the window shows something else (then this display is over)."""
        if self.active and self._shown_once and not self.grid.arriving:
            self.active = False
        return self.active

    def _place_more(self) -> None:
        if self._placing is not None or not self._pending:
            return
        batch, self._pending = self._pending, []
        worker = JobWorker(order_job, batch, parent=self)
        worker.result.connect(self._placed)
        worker.finished.connect(self._placing_done)
        self._placing = worker
        worker.start(self._pool)

    def _placed(self, placed: list[tuple[str, float | None]]) -> None:
        if not self._still_showing():
            return
        for path, place in placed:
            if Path(path).parent != self.series_dir:
                continue  # placed before its series was found to be no image
            self._arrivals += 1
            key = (np.inf if place is None else place, self._arrivals, path)
            self.order.insert(bisect(self.order, key), key)

    def _placing_done(self) -> None:
        self._placing = None
        if self._pending:
            self._place_more()
        elif self._steps:
            self._take_steps()
        else:
            self._show()

    def _paths(self) -> list[str]:
        return [p for _k, _a, p in self.order]

    def _position(self) -> tuple[int, int]:
        """(the slice on screen, from 1; 0 while not placed) and how many are here."""
        paths = self._paths()
        at = paths.index(self.slice_file) + 1 if self.slice_file in paths else 0
        return at, len(paths) + len(self._pending)

    def _text(self) -> str:
        at, here = self._position()
        if at:
            return f"Arriving: slice {at} of the {here} here; scroll to see them"
        return f"Arriving: {here} {'slice' if here == 1 else 'slices'} here; scroll to see them"

    def _show(self) -> None:
        path = self.slice_file
        if path is None or not self._still_showing():
            return
        if path == self._drawn and self.grid.arriving:
            if not self._words.isActive():  # more have come: only the words change, soon
                self._words.start()
            return
        found = self._images.get(path)
        if found is None:
            self._read(path)
            return
        self.grid.show_arriving(*found, self._text())
        self._drawn = path
        self._shown_once = True
        self.shown.emit(*self._position())

    def _show_words(self) -> None:
        if self._drawn is not None and self._still_showing():
            self.grid.set_arriving_text(self._text())
            self.shown.emit(*self._position())

    def _read(self, path: str) -> None:
        """Read the slice on screen; one read at a time, the latest wanted next."""
        if self._reading is not None:
            return
        worker = JobWorker(image_job, path, parent=self)
        worker.result.connect(self._read_done)
        worker.failed.connect(lambda _sentence: self._read_done((path, None)))
        worker.finished.connect(self._reading_done)
        self._reading = worker
        worker.start(self._pool)

    def _read_done(self, result: tuple[str, tuple[SeriesInfo, np.ndarray] | None]) -> None:
        path, found = result
        if not self._still_showing():
            return
        if found is None:
            self._not_an_image(Path(path).parent)
            return
        if len(self._images) >= KEPT_IMAGES:
            self._images.pop(next(iter(self._images)))
        self._images[path] = found

    def _reading_done(self) -> None:
        self._reading = None
        if self.slice_file is not None and self.slice_file not in self._images:
            self._read(self.slice_file)
        else:
            self._show()

    def _not_an_image(self, folder: Path) -> None:
        """The series' first file is no single-frame image (a SEG, a report, a multi-frame
        file): the next series that arrives is shown instead."""
        if folder != self.series_dir:
            return
        self._skipped.add(folder)
        self.series_dir, self.slice_file, self.order = None, None, []
        self._pending = [p for p in self._pending if Path(p).parent != folder]

"""StudyLoader: the main window's scan, load and thumbnail jobs, one foreground job at a time.

docs/architecture.md and napari's layer slicer: requests start on the GUI thread, the work runs on
a worker (ui/workers.py JobWorker), results come back to the GUI thread tagged with the
request that made them, and a result for a request that is no longer wanted — the reader
cancelled it or opened something else — is dropped instead of shown. Signals are connected
to methods of this QObject, which lives in the GUI thread, so Qt queues them here; the
sender tells which request a result belongs to.

Thumbnails are background work: they wait while a scan or load runs, so the series the
reader asked for is not slowed down by pictures of the others."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore

from medview.core.jobs import Progress
from medview.core.series import SeriesInfo
from medview.jobs import studies
from medview.ui.workers import JobWorker

POOL_THREADS = 2


class StudyLoader(QtCore.QObject):
    scanned = QtCore.Signal(object)  # ScanResult
    first_slice = QtCore.Signal(object, object)  # SeriesInfo, studies.FirstSlice
    loaded = QtCore.Signal(object, object)  # SeriesInfo, or the image file's path; Volume
    failed = QtCore.Signal(str)  # one sentence for the reader
    cancelled = QtCore.Signal(str)  # what was cancelled, for the status bar
    progress = QtCore.Signal(float, str)  # fraction (-1: unknown), message
    busy_changed = QtCore.Signal(bool)
    thumbnail = QtCore.Signal(str, object)  # series key, uint8 image

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QtCore.QThreadPool(self)
        self._pool.setMaxThreadCount(POOL_THREADS)
        self._fg: JobWorker | None = None
        self._fg_kind = ""
        self._target: SeriesInfo | str | None = None
        self._thumbs: JobWorker | None = None
        self._pending_thumbs: list[SeriesInfo] = []
        self._alive: set[JobWorker] = set()  # Python references until each job has ended

    @property
    def busy(self) -> bool:
        return self._fg is not None

    @property
    def jobs_running(self) -> int:
        """Jobs that have not ended yet, superseded and cancelled ones included."""
        return len(self._alive)

    @property
    def target(self) -> SeriesInfo | str | None:
        """What the running foreground job is loading (None for a scan or when idle)."""
        return self._target if self._fg is not None else None

    # -- requests
    def scan(self, paths: Sequence[str]) -> None:
        self._stop_thumbnails()
        self._start("scan", None, studies.scan_job, list(paths))

    def load(self, series: SeriesInfo) -> None:
        self._start("load", series, studies.load_job, series)

    def open_image(self, path: str) -> None:
        self._start("image", path, studies.open_image_job, path)

    def make_thumbnails(self, series_list: Sequence[SeriesInfo]) -> None:
        """Queue thumbnails; they start when no scan or load is running."""
        self._stop_thumbnails()
        self._pending_thumbs = list(series_list)
        self._maybe_start_thumbnails()

    def cancel(self) -> None:
        """The reader's Cancel: stop the foreground job and forget it at once, so the window
        is back to what it showed before even while the job winds down."""
        if self._fg is None:
            return
        kind = {"scan": "Scanning", "load": "Loading", "image": "Opening"}[self._fg_kind]
        self._fg.cancel()
        self._forget()
        self.cancelled.emit(f"{kind} cancelled.")

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Cancel everything and wait briefly for the workers, before the window goes."""
        for worker in list(self._alive):
            worker.cancel()
        self._fg = self._thumbs = None
        self._pending_thumbs = []
        self._pool.waitForDone(wait_ms)

    # -- plumbing
    def _worker(self, job, *args) -> JobWorker:
        worker = JobWorker(job, *args)
        self._alive.add(worker)
        worker.finished.connect(self._on_finished)
        return worker

    def _start(self, kind: str, target: SeriesInfo | str | None, job, *args) -> None:
        if self._fg is not None:
            self._fg.cancel()  # superseded: whatever it still sends is dropped
        worker = self._worker(job, *args)
        worker.progress.connect(self._on_progress)
        worker.event.connect(self._on_event)
        worker.result.connect(self._on_result)
        worker.failed.connect(self._on_failed)
        self._fg, self._fg_kind, self._target = worker, kind, target
        if self._thumbs is not None:  # give the reader's request the cores
            self._pending_thumbs = self._stop_thumbnails()
        self.busy_changed.emit(True)
        worker.start(self._pool)

    def _forget(self) -> None:
        self._fg, self._target = None, None
        self.busy_changed.emit(False)
        self._maybe_start_thumbnails()

    def _current(self) -> bool:
        return self._fg is not None and self.sender() is self._fg

    def _on_progress(self, p: Progress) -> None:
        if self._current():
            self.progress.emit(p.fraction, p.message)

    def _on_event(self, item: object) -> None:
        target = self._target
        if (
            self._current()
            and isinstance(item, studies.FirstSlice)
            and isinstance(target, SeriesInfo)
            and item.series_key == target.key
        ):
            self.first_slice.emit(target, item)

    def _on_result(self, value: object) -> None:
        if not self._current():
            return
        kind, target = self._fg_kind, self._target
        self._forget()
        if kind == "scan":
            self.scanned.emit(value)
        else:
            self.loaded.emit(target, value)

    def _on_failed(self, message: str) -> None:
        if self._current():
            self._forget()
            self.failed.emit(message)

    def _on_finished(self) -> None:
        self._alive.discard(self.sender())

    # -- thumbnails
    def _stop_thumbnails(self) -> list[SeriesInfo]:
        """Cancel the thumbnail job; returns the series it had not done yet."""
        left = self._pending_thumbs
        if self._thumbs is not None:
            self._thumbs.cancel()
            self._thumbs = None
        self._pending_thumbs = []
        return left

    def _maybe_start_thumbnails(self) -> None:
        if self._fg is not None or self._thumbs is not None or not self._pending_thumbs:
            return
        worker = self._worker(studies.thumbnails_job, list(self._pending_thumbs))
        worker.event.connect(self._on_thumbnail)
        worker.finished.connect(self._on_thumbnails_done)
        self._thumbs = worker
        worker.start(self._pool)

    def _on_thumbnail(self, item: object) -> None:
        if self.sender() is self._thumbs and isinstance(item, studies.Thumbnail):
            self._pending_thumbs = [s for s in self._pending_thumbs if s.key != item.series_key]
            self.thumbnail.emit(item.series_key, item.image)

    def _on_thumbnails_done(self) -> None:
        if self.sender() is self._thumbs:
            self._thumbs = None
            self._pending_thumbs = []

"""The only threading glue: run a job generator on Qt's thread pool and deliver its
progress, events, result, error or cancellation to the GUI thread as signals.

Signals are emitted from the pool thread by a QObject that lives in the GUI thread, so Qt
queues them to GUI-thread receivers (docs/development.md: a plain function connected to a worker's
signal ran in the worker thread and hung the app). On cancel the job's generator is closed
on its own thread so its `finally` blocks free files at once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from PySide6 import QtCore

from medview.core.errors import MedviewError
from medview.core.jobs import CancelToken, JobCancelled, JobContext, Progress

log = logging.getLogger(__name__)
JobFn = Callable[..., Generator[Progress, None, Any]]


class _Runnable(QtCore.QRunnable):
    def __init__(self, worker: JobWorker) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._worker = worker

    def run(self) -> None:
        self._worker._run()


class JobWorker(QtCore.QObject):
    """One run of one job. Create it in the GUI thread, connect, then start()."""

    progress = QtCore.Signal(object)  # Progress
    event = QtCore.Signal(object)  # whatever the job emits through ctx.emit
    result = QtCore.Signal(object)
    failed = QtCore.Signal(str)  # one sentence for the user
    cancelled = QtCore.Signal()
    finished = QtCore.Signal()  # after any of result / failed / cancelled

    def __init__(
        self, job: JobFn, *args: Any, parent: QtCore.QObject | None = None, **kwargs: Any
    ) -> None:
        super().__init__(parent)
        self._job, self._args, self._kwargs = job, args, kwargs
        self.token = CancelToken()
        self.running = False

    def start(self, pool: QtCore.QThreadPool | None = None) -> None:
        self.running = True
        (pool or QtCore.QThreadPool.globalInstance()).start(_Runnable(self))

    def cancel(self) -> None:
        self.token.cancel()

    def _run(self) -> None:
        ctx = JobContext(self.token, self.progress.emit, self.event.emit)
        gen = self._job(*self._args, ctx=ctx, **self._kwargs)
        try:
            while True:
                self.token.raise_if_cancelled()
                self.progress.emit(next(gen))
        except StopIteration as stop:
            self.result.emit(stop.value)
        except JobCancelled:
            gen.close()
            self.cancelled.emit()
        except MedviewError as exc:
            log.debug("job failed", exc_info=True)
            self.failed.emit(str(exc))
        except MemoryError:
            log.exception("job ran out of memory")
            self.failed.emit(
                "Not enough memory for this operation; close other studies or "
                "choose a smaller series."
            )
        except Exception as exc:
            log.exception("job crashed")
            self.failed.emit(
                f"Unexpected error ({type(exc).__name__}: {exc}); details are in the log file."
            )
        finally:
            self.running = False
            self.finished.emit()

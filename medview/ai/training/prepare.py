"""A fine-tune's first minutes, on every core: generating the rehearsal studies and caching
the studies (reading DICOM, checking and mapping labels) run one study a process.

Both are plain Python and numpy work on one core a study; on this 2-core machine they took
about 110 s of a cold 8.8-minute run one study at a time and take 52 s in 2 processes
(bench_finetune), and on a many-core GPU machine they would have been most of the run.
Processes, not threads: the work holds the GIL.

Spawned, not forked (the run has imported torch; a fork after that can hang, and macOS and
Windows spawn anyway); each worker does one thing at a time (one OpenMP and ITK thread) and
ignores Ctrl-C, which the run itself answers with a stop. A stop, or an error in one study,
ends the workers at once: a study half cached is cached again next time (its record is
written last). A worker the kernel kills (out of memory) is one sentence: with
multiprocessing.Pool the run waited for its study forever, so concurrent.futures it is.
With one worker, or one study to do, the work runs here, in this process."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from medview.core import errors
from medview.core.errors import SettingError
from medview.core.limits import GIB, physical_memory_bytes

WORKER_MEMORY = 4 * GIB  # a large CT series, its labels and their copies while checked
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1",
}


def worker_count(cores: int) -> int:
    """Processes for `cores`, fewer where memory would not hold a study in each."""
    return max(1, min(cores, physical_memory_bytes() // WORKER_MEMORY))


def _start_worker() -> None:
    os.environ.update(ONE_THREAD)  # before numpy and SimpleITK load in this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(job: tuple[Callable[[Any], Any], Any]) -> tuple | None:
    """Run one item; a MedviewError comes back as its parts (an exception's own pickling
    would lose its path and whether the disk filled up, which the error event tells)."""
    fn, item = job
    try:
        fn(item)
    except errors.SettingError:
        raise  # pickled whole (SettingError.__reduce__): its data is what the event tells
    except errors.MedviewError as exc:
        cause = exc.__cause__
        code = cause.errno if isinstance(cause, OSError) else None
        return type(exc).__name__, exc.path, exc.problem, code
    return None


def _raise(name: str, path: str | None, problem: str, code: int | None) -> None:
    exc = getattr(errors, name, errors.MedviewError)(path, problem)
    if code is not None:
        raise exc from OSError(code, os.strerror(code))
    raise exc


def run_each(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int,
    done: Callable[[int, int], None],
    check: Callable[[], None] | None = None,
) -> None:
    """fn(item) for every item, in up to `workers` processes; done(k, n) when k of the n
    have ended, from done(0, n) before any, and check() twice a second while they work
    (either may raise, a stop: the workers are ended at once; waiting for a study to end
    took up to a study's time, 6 s for a rehearsal study). `fn` is a module-level function
    and the items plain data: both travel to the workers."""
    items = list(items)
    n = len(items)
    done(0, n)
    if workers <= 1 or n <= 1:
        for k, item in enumerate(items, 1):
            fn(item)
            done(k, n)
        return
    pool = ProcessPoolExecutor(min(workers, n), multiprocessing.get_context("spawn"), _start_worker)
    try:
        waiting, k = {pool.submit(_call, (fn, item)) for item in items}, 0
        while waiting:
            ended, waiting = wait(waiting, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in ended:
                try:
                    failed = future.result()
                except BrokenProcessPool as exc:  # (multiprocessing.Pool waited forever)
                    # one study a process is what the threads setting changes
                    raise SettingError("threads", workers, "workers_died") from exc
                if failed is not None:
                    _raise(*failed)
                k += 1
                done(k, n)
            if check is not None and waiting:
                check()
    finally:
        # a stop or an error: the others end now, not after their study (the executor
        # offers no public way: its own shutdown waits for the studies under way)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

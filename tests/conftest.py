"""Test-wide settings: Qt runs offscreen, logs stay inside the test's temporary folders, and
a test fails when it leaves a thread, a thread-pool task or a repeating Qt timer running
(what napari and pyqtgraph check: work left running outlives the test that caused it and
fails, or hangs, a later one)."""

import os
import sys
import threading
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# how long a test's threads and pool tasks may take to end after it returns
_GRACE_S = 5.0


def _qt_tracking(monkeypatch) -> tuple[list, list] | None:
    """Record the QTimers and QThreadPools a test starts (Qt cannot list them), where the
    test process uses Qt at all; None where it does not (loading Qt for a CLI test would
    cost time and hide an import of Qt that should not happen)."""
    if "PySide6.QtCore" not in sys.modules:
        return None
    from PySide6 import QtCore

    timers: list = []
    pools: list = [QtCore.QThreadPool.globalInstance()]
    timer_start = QtCore.QTimer.start
    pool_start = QtCore.QThreadPool.start

    def start_timer(timer, *args):
        timers.append(timer)
        return timer_start(timer, *args)

    def start_task(pool, *args):
        if pool not in pools:
            pools.append(pool)
        return pool_start(pool, *args)

    monkeypatch.setattr(QtCore.QTimer, "start", start_timer)
    monkeypatch.setattr(QtCore.QThreadPool, "start", start_task)
    return timers, pools


def _qt_left_running(timers: list, pools: list) -> list[str]:
    import shiboken6
    from PySide6 import QtCore

    left = []
    for pool in pools:
        if shiboken6.isValid(pool) and not pool.waitForDone(int(_GRACE_S * 1000)):
            left.append(f"{pool.activeThreadCount()} QThreadPool task(s)")
    app = QtCore.QCoreApplication.instance()
    if app is not None:
        app.processEvents()  # deleteLater of closed widgets
    for timer in timers:
        if shiboken6.isValid(timer) and timer.isActive() and not timer.isSingleShot():
            parent = timer.parent()
            owner = type(parent).__name__ if parent is not None else "no parent"
            left.append(f"a repeating QTimer every {timer.interval()} ms ({owner})")
    return left


@pytest.fixture(autouse=True)
def nothing_left_running(monkeypatch):
    """Fail the test when a thread it started, a thread-pool task or a repeating QTimer is
    still running once it is done (after pytest-qt closed its widgets and a short grace)."""
    before = set(threading.enumerate())
    qt = _qt_tracking(monkeypatch)
    yield
    deadline = time.monotonic() + _GRACE_S
    # QThreads and pool threads show as dummy threads that cannot be joined: the Qt check
    # below covers them
    started = [
        t
        for t in threading.enumerate()
        if t not in before and not isinstance(t, threading._DummyThread)
    ]
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [f"thread {t.name!r}" for t in started if t.is_alive()]
    if qt is not None:
        left += _qt_left_running(*qt)
    if left:
        pytest.fail(f"the test left running: {', '.join(left)}", pytrace=False)


@pytest.fixture
def kept_data_dir(tmp_path, monkeypatch):
    """A fresh MEDVIEW_DATA_DIR and no AI result kept from another test (torch imported
    only by the tests that ask for this)."""
    from medview.ai.runtime.inference import clear_kept

    data = tmp_path / "data"
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(data))
    clear_kept()
    yield data
    clear_kept()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 24-slice demo study (seed 3) shared by a module's tests (a module may define its own
    `demo` instead)."""
    from medview.demo import generate_demo_study

    return generate_demo_study(tmp_path_factory.mktemp("demo"), seed=3, slices=24)

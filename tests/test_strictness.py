"""The test suite's own strictness (issue 14, section 7) is real: a test fails when MedView's
code warns, when Qt warns, or when it leaves a thread, a thread-pool task or a repeating
QTimer running. Each is shown on a small suite run with this repository's conftest.py and
pytest settings in a child pytest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


def _suite(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    """Run `body` as a test module under this repository's conftest.py and pytest settings
    (pyproject.toml's, as they are)."""
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    test = pytester.makepyfile(test_it=body)
    return pytester.runpytest_subprocess(
        "-c",
        str(ROOT / "pyproject.toml"),
        f"--rootdir={pytester.path}",
        "-p",
        "no:cacheprovider",
        str(test),
    )


def test_a_warning_from_medview_fails_and_one_from_elsewhere_does_not(pytester):
    result = _suite(
        pytester,
        """
import warnings

def test_medview_warns():
    exec("import warnings\\nwarnings.warn('careful')", {"__name__": "medview.some_module"})

def test_a_library_warns():
    exec("import warnings\\nwarnings.warn('careful')", {"__name__": "somelibrary"})
""",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_medview_warns*UserWarning: careful*"])


def test_a_thread_left_running_fails(pytester):
    result = _suite(
        pytester,
        """
import threading

stop = threading.Event()

def test_leaves_a_thread():
    threading.Thread(target=stop.wait, name="forgotten", daemon=True).start()

def test_joins_its_thread():
    t = threading.Thread(target=lambda: None)
    t.start()

def teardown_module():
    stop.set()
""",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the test left running: thread 'forgotten'*"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="offscreen Qt on Linux")
def test_a_qt_warning_or_a_running_timer_fails(pytester):
    result = _suite(
        pytester,
        """
from PySide6 import QtCore

def test_qt_warns(qtbot):
    QtCore.qWarning("something is wrong")

def test_offscreen_limits_are_not_warnings(qtbot):
    QtCore.qWarning("This plugin does not support raise()")

kept = []

def test_leaves_a_timer(qtbot):
    timer = QtCore.QTimer()
    timer.start(1000)
    kept.append(timer)

def test_stops_its_timer(qtbot):
    timer = QtCore.QTimer()
    timer.start(1000)
    timer.stop()
""",
    )
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*the test left running: a repeating QTimer every 1000 ms*"])
    result.stdout.fnmatch_lines(
        ["*Qt messages with level WARNING or above emitted*", "*QtWarningMsg: something is wrong"]
    )
    result.stdout.fnmatch_lines(["FAILED test_it.py::test_qt_warns"])

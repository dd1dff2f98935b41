"""Closing the app while a fine-tune runs asks first: "Keep training" keeps the window and
the child process; "Stop training and quit" ends the child (which keeps its checkpoint) and
closes, so no run is stopped without the reader knowing or left running behind them."""

from __future__ import annotations

import sys

import pytest
from PySide6 import QtCore, QtWidgets

from medview.ui import training_process
from tests.ui.main_window_fixtures import make_window


@pytest.fixture
def training_window(qtbot, data_dir, monkeypatch: pytest.MonkeyPatch):
    """A main window whose Training panel runs a child that only waits (a stand-in for
    `medview train`, which needs a model and studies)."""
    monkeypatch.setattr(
        training_process,
        "medview_argv",
        lambda *args: [sys.executable, "-c", "import time; time.sleep(60)"],
    )
    window = make_window(qtbot, (1200, 800))
    panel = window.training
    window.dock("Training").raise_()
    assert not panel.progress.isVisible()  # no run yet: no empty bar
    panel._launch(data_dir / "run", [], "Starting…")
    assert panel.progress.isVisible()
    qtbot.waitUntil(lambda: panel.process.running, timeout=10_000)
    panel.on_event(
        {"event": "start", "steps_per_epoch": 4, "epochs": 8, "device": "cpu", "train": 3, "val": 1}
    )
    panel.on_event({"event": "epoch", "epoch": 2, "epochs": 8, "loss": 1.0, "val_dice": 0.5})
    yield window
    panel.process.shutdown()


def answer_with(text: str, seen: list[str]) -> None:
    """Click `text` in the question box once it is up (it is modal: exec blocks)."""

    def click() -> None:
        box = QtWidgets.QApplication.activeModalWidget()
        if not isinstance(box, QtWidgets.QMessageBox):
            QtCore.QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        next(b for b in box.buttons() if b.text() == text).click()

    QtCore.QTimer.singleShot(20, click)


def test_closing_while_training_asks(qtbot, training_window) -> None:
    window, panel = training_window, training_window.training
    seen: list[str] = []
    answer_with("Keep training", seen)
    window.close()
    assert seen and "2 of 8 epochs done" in seen[0] and "resume" in seen[0]
    assert window.isVisible() and panel.process.running  # nothing stopped
    proc = panel.process.proc
    answer_with("Stop training and quit", seen)
    window.close()
    assert len(seen) == 2 and not window.isVisible()
    assert proc.state() == QtCore.QProcess.ProcessState.NotRunning  # no child left behind

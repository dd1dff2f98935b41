"""Stop before the first checkpoint: a run stopped while it prepares its studies ends as
'stopped' with nothing to resume (`resume` null, no checkpoint.pt). The panel says so and
that Start begins it again; it offers no Resume for it, then or after a restart (the
panel once said "Stopped in epoch 1; Resume continues it from there")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from PySide6 import QtCore

from medview.ui import training_process
from tests.ui.training_fixtures import make_panel

LEFT = QtCore.Qt.MouseButton.LeftButton
SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))

# the real `medview train`, whose first study takes until the panel's Stop (SIGTERM) arrives,
# so the stop lands while preparing however busy the machine is
HELD_IN_PREPARING = """
import signal, sys, time
from medview.ai.training import data as train_data
from medview.cli import main

prepare = train_data.prepare_study

def held(*args, **kwargs):
    asked = []
    theirs = signal.getsignal(signal.SIGTERM)
    def stop(signum, frame):
        asked.append(signum)
        theirs(signum, frame)
    signal.signal(signal.SIGTERM, stop)
    until = time.monotonic() + 60
    while not asked and time.monotonic() < until:
        time.sleep(0.02)
    return prepare(*args, **kwargs)

train_data.prepare_study = held
sys.exit(main(sys.argv[1:]))
"""


def test_stop_while_preparing_offers_start_not_resume(
    qtbot, train_studies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        training_process,
        "medview_argv",
        lambda *args: [sys.executable, "-c", HELD_IN_PREPARING, *args],
    )
    p = make_panel(qtbot, train_studies)
    qtbot.mouseClick(p.start_button, LEFT)
    qtbot.waitUntil(lambda: p.status.text().startswith("Preparing study 1 of"), timeout=60_000)
    assert p.progress.text() == "caching: 0 of 4 studies"  # it sat empty until epoch 1
    qtbot.mouseClick(p.stop_button, LEFT)
    qtbot.waitUntil(lambda: p.start_button.isEnabled() and not p.process.running, timeout=30_000)
    log = p.curves.log_view.toPlainText()
    assert "stopped: epoch 0, resume None" in log
    assert not (p.work / "checkpoint.pt").exists()
    text = p.status.text()
    assert text == (
        "Stopped before training began, while preparing: nothing was saved to "
        "resume, so Start begins the run again."
    )
    assert not p.runs.isVisible() and not p.runs.runs  # no Resume offered
    p.grab().save(str(SHOTS / "training_stopped_early.png"))
    p.shutdown()
    p.close()
    again = make_panel(qtbot, train_studies)  # a restart: still nothing to resume
    assert not again.runs.isVisible() and not again.runs.runs
    again.shutdown()

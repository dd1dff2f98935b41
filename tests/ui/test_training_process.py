"""The training child's environment: its idle OpenMP threads sleep (the viewer shares the
cores with it) unless the reader chose a wait policy; the panel's own variables reach it."""

from __future__ import annotations

import sys

import pytest

from medview.ui import training_process
from medview.ui.training_process import TrainingProcess

PRINT_ENV = (
    "import json, os; print(json.dumps({'event': 'env', 'omp': "
    "os.environ.get('OMP_WAIT_POLICY'), 'extra': os.environ.get('MEDVIEW_X')}))"
)


@pytest.mark.parametrize(("mine", "seen"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_child_waits_politely_unless_told_otherwise(qtbot, monkeypatch, mine, seen):
    monkeypatch.setattr(
        training_process, "medview_argv", lambda *args: [sys.executable, "-c", PRINT_ENV]
    )
    if mine is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", mine)
    child = TrainingProcess()
    events: list[dict] = []
    child.event.connect(events.append)
    with qtbot.waitSignal(child.finished, timeout=20_000):
        child.start([], {"MEDVIEW_X": "1"})
    assert events == [{"event": "env", "omp": seen, "extra": "1"}]

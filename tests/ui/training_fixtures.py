"""Shared set-up of the training panel tests: a data folder with the tiny base model, four
tiny labelled studies (one patient each), and a panel listing them with settings small
enough that a real `medview train` child runs an epoch in about a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from medview.ui.panels.training_panel import TrainingPanel
from tests.ai.train_fixtures import install_base, make_studies


def make_panel(qtbot, studies: Path) -> TrainingPanel:
    """A panel as the app makes it (a restart makes another), listing `studies`."""
    p = TrainingPanel()
    qtbot.addWidget(p)
    p.resize(520, 900)
    p.studies.data_edit.setText(str(studies))
    p.show()  # lists the studies the first time it is shown
    qtbot.waitUntil(lambda: p.studies.table.rowCount() == 4, timeout=30_000)
    p.base_combo.setCurrentIndex(p.base_combo.findData("tiny:1.0"))
    for name, value in (("batch_size", 4), ("patch_size", 32), ("threads", 1)):
        p.form.widgets[name].setValue(value)
    return p


@pytest.fixture
def train_studies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))  # the child inherits it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    install_base(tmp_path / "data")
    return make_studies(tmp_path / "studies", 4)


@pytest.fixture
def train_panel(qtbot, train_studies: Path) -> TrainingPanel:
    p = make_panel(qtbot, train_studies)
    yield p
    p.shutdown()

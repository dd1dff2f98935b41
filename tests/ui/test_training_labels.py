"""The training panel as a reader meets it after labelling in the app: segments named
"Segment 1" (an imported label map) are matched to the base model's labels by the reader
before Start, and the choice reaches the job file; the study list follows the studies marked
done since it was last seen, keeping the reader's split; studies whose folders share a name
are told apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6 import QtCore

from medview.ai.training.data import TrainStudy
from medview.ai.training.job import Settings
from medview.jobs.training import StudyRow
from medview.ui.panels.training_panel import TrainingPanel
from tests.ai.train_fixtures import install_base, make_studies, make_study

Qt = QtCore.Qt
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def panel(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrainingPanel:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    install_base(tmp_path / "data")
    p = TrainingPanel()
    qtbot.addWidget(p)
    p.resize(520, 900)
    p.base_combo.setCurrentIndex(p.base_combo.findData("tiny:1.0"))
    yield p
    p.shutdown()


def named(i: int, patient: str, segments: dict[int, str]) -> StudyRow:
    study = TrainStudy(f"k{i}", "series", patient, f"/studies/s{i}/series", "lab", segments)
    return StudyRow(study, {v: 100 for v in segments})


def choose(qtbot, combo, text: str) -> None:
    """Pick `text` in a combo box with the keyboard, as a reader does."""
    combo.setFocus()
    while combo.currentText() != text:
        before = combo.currentIndex()
        qtbot.keyClick(combo, Qt.Key.Key_Down)
        assert combo.currentIndex() != before, f"{text!r} not offered"


def test_unknown_segment_names_are_matched_before_start(
    qtbot, panel: TrainingPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(panel.process, "start", started.append)
    imported = {1: "Segment 1", 2: "Segment 2"}
    panel.studies._show(
        [named(0, "a", imported), named(1, "b", imported), named(2, "c", {2: "liver lesion"})]
    )
    box = panel.labels
    assert set(box.combos) == {"Segment 1", "Segment 2", "liver lesion"}
    assert box.target("liver lesion") == "liver lesion"  # the model knows it by name
    assert box.target("Segment 1") == ""  # never guessed from its number
    assert "Segment 1 in 2" in panel.studies.summary.text()  # the reader's own names
    qtbot.mouseClick(panel.start_button, LEFT)
    assert "'Segment 1', 'Segment 2'" in panel.status.text() and not started
    choose(qtbot, box.combos["Segment 1"], "lung nodule")
    choose(qtbot, box.combos["Segment 2"], "not trained (background)")
    qtbot.mouseClick(panel.start_button, LEFT)
    assert started and panel.stop_button.isEnabled()
    job = json.loads((panel.work / "job.json").read_text())
    assert job["mapping"] == {
        "Segment 1": "lung nodule",
        "Segment 2": "ignore",
        "liver lesion": "liver lesion",
    }
    # the choices survive a new listing, and a restart (a new panel reads the last job)
    panel.studies._show([named(0, "a", imported)])
    assert box.target("Segment 1") == "lung nodule"
    again = TrainingPanel()
    qtbot.addWidget(again)
    again.base_combo.setCurrentIndex(again.base_combo.findData("tiny:1.0"))
    again.studies._show([named(0, "a", imported), named(1, "b", {1: "Segment 1"})])
    assert again.labels.target("Segment 1") == "lung nodule"
    assert again.labels.target("Segment 2") == "ignore"
    again.shutdown()


def test_every_label_ignored_is_refused(qtbot, panel: TrainingPanel) -> None:
    panel.studies._show([named(0, "a", {1: "Segment 1"}), named(1, "b", {1: "Segment 1"})])
    choose(qtbot, panel.labels.combos["Segment 1"], "not trained (background)")
    qtbot.mouseClick(panel.start_button, LEFT)
    assert "at least one must teach" in panel.status.text()
    assert not panel.process.running


def test_studies_in_folders_of_one_name_are_told_apart(panel: TrainingPanel) -> None:
    panel.studies._show([named(0, "a", {1: "lung nodule"}), named(1, "b", {1: "lung nodule"})])
    table = panel.studies.table
    assert [table.item(r, 0).text() for r in range(2)] == ["s0/series", "s1/series"]


def test_the_list_follows_studies_marked_done_keeping_the_split(
    qtbot, panel: TrainingPanel, tmp_path: Path
) -> None:
    folder = make_studies(tmp_path / "studies", 3)
    panel.studies.data_edit.setText(str(folder))
    panel.show()  # lists them
    qtbot.waitUntil(lambda: panel.studies.table.rowCount() == 3, timeout=30_000)
    sides = [panel.studies.table.cellWidget(r, 3) for r in range(3)]
    moved = next(i for i, c in enumerate(sides) if c.currentIndex() == 0)
    sides[moved].setCurrentIndex(1)  # the reader moves a patient to validation
    panel.hide()  # the reader labels another study meanwhile
    make_study(folder / "study-04", 9)
    panel.show()
    qtbot.waitUntil(lambda: panel.studies.table.rowCount() == 4, timeout=30_000)
    assert panel.studies.table.cellWidget(moved, 3).currentIndex() == 1
    assert panel.status.text().startswith("4 labelled studies")


def test_the_setup_fits_a_narrow_dock(qtbot, panel: TrainingPanel) -> None:
    """Nothing cut off at the right edge: the form fits the dock's width (it scrolled
    sideways, or cut the Refresh button and the spin boxes' arrows)."""
    panel.resize(380, 650)
    panel.show()
    imported = {1: "Segment 1", 2: "Segment 2"}
    panel.studies._show([named(i, p, imported) for i, p in enumerate("abcd")])
    qtbot.wait(50)
    scroll = panel.tabs.widget(0)
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()
    assert scroll.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff


def test_one_validation_study_is_said(panel: TrainingPanel) -> None:
    rows = [named(i, p, {1: "lung nodule"}) for i, p in enumerate("abcd")]
    panel.studies._show(rows)
    summary = panel.studies.summary.text()  # the default: cross-validation, no sides
    folds = min(Settings().folds, 4)
    assert (
        summary.startswith(
            f"Cross-validation: 4 studies of 4 patients in {folds} folds by patient — "
            "lung nodule in 4."
        )
        and "One validation" not in summary
    )
    panel.form.widgets["folds"].setValue(1)  # the reader asks for one held-out split
    for i in range(4):  # the reader puts one patient on validation
        panel.studies.table.cellWidget(i, 3).setCurrentIndex(int(i == 0))
    assert "One validation study" in panel.studies.summary.text()
    panel.studies.table.cellWidget(1, 3).setCurrentIndex(1)
    assert "One validation study" not in panel.studies.summary.text()


def test_a_listing_asked_while_one_runs_is_not_dropped(
    qtbot, panel: TrainingPanel, tmp_path: Path
) -> None:
    """Asked again before the first listing ends (its tab selected twice, or another
    folder chosen), the list ends up showing what was asked last."""
    three, four = make_studies(tmp_path / "a", 3), make_studies(tmp_path / "b", 4)
    studies = panel.studies
    studies.data_edit.setText(str(three))
    studies.refresh(0.25, 0)
    studies.data_edit.setText(str(four))
    studies.refresh(0.25, 0)  # the first still runs: it used to be ignored
    qtbot.waitUntil(lambda: studies.table.rowCount() == 4 and not studies._listing, timeout=30_000)

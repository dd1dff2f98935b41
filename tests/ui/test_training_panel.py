"""The training panel drives a real `medview train` child process: studies listed with their
labels and a split by patient, Start shows epochs in the curves and times, the result appears
under Versions, which compares and activates (and rolls back); Stop ends the run with a
checkpoint, touching no version. The viewer's event loop keeps running throughout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PySide6 import QtCore

from medview.ai.models import registry
from medview.ui.panels.training_panel import TrainingPanel

LEFT = QtCore.Qt.MouseButton.LeftButton
SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))


def test_panel_runs_a_fine_tune_and_shows_it(qtbot, train_panel: TrainingPanel) -> None:
    panel = train_panel
    row = panel.studies.rows[0]  # volumes in mL from the label map's grid, voxels on hover
    first = min(row.counts)
    assert (
        panel.studies.table.item(0, 2)
        .text()
        .startswith(f"{row.counts[first] * row.voxel_ml:.2f} mL  lung nodule\n")
    )  # the base's names
    assert f"{row.counts[first]:,} voxels" in panel.studies.table.item(0, 2).toolTip()
    panel.grab().save(str(SHOTS / "training_panel_setup.png"))
    split = panel.studies.split()
    assert len(split["train"]) == 3 and len(split["val"]) == 1
    panel.form.widgets["epochs"].setValue(2)
    panel.form.widgets["folds"].setValue(2)  # cross-validated: 2 folds, then the version
    qtbot.mouseClick(panel.start_button, LEFT)
    assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: "Cross-validation" in panel.status.text(), timeout=240_000)
    qtbot.waitUntil(lambda: "written" in panel.status.text(), timeout=400_000)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    assert "than tiny:1.0 on your 4 studies: Dice " in panel.status.text()  # the verdict
    xs, ys = panel.curves.loss_curve.getData()  # the version's own training, on all studies
    assert list(xs) == [1, 2] and all(y > 0 for y in ys)
    assert len(panel.curves.dice_curve.getData()[0] or []) == 0  # none held out: no Dice
    assert "time per epoch" in panel.curves.times.text() and "—" not in panel.curves.times.text()
    assert ", epoch 2, epochs 2," in panel.curves.log_view.toPlainText()
    assert panel.progress.text() == "100%"  # (the final numbers' count of studies was last)
    panel.tabs.setCurrentIndex(1)
    panel.grab().save(str(SHOTS / "training_panel_progress.png"))
    # versions: the new one listed, not active; compare; activate; roll back
    v = panel.versions
    assert [v.table.item(r, 0).text() for r in range(v.table.rowCount())] == ["1.0", "1.0.1"]
    assert v.table.item(0, 1).text() == "active" and v.table.item(1, 1).text() == ""
    panel.tabs.setCurrentIndex(2)
    v.select("1.0", "1.0.1")
    dialog = v.compare()
    assert (
        "same" not in dialog.note.text()
        and "all 4 studies of tiny:1.0.1" in dialog.note.text()
        and "2-fold cross-validated" in dialog.note.text()
    )
    assert dialog.value("dice_mean", 3) not in ("", "—")
    dialog.grab().save(str(SHOTS / "training_compare.png"))
    dialog.close()
    v.select("1.0.1")
    qtbot.mouseClick(v.activate_button, LEFT)
    assert registry.resolve("tiny").card.version == "1.0.1"
    v.select("1.0")
    qtbot.mouseClick(v.activate_button, LEFT)
    assert registry.resolve("tiny").card.version == "1.0"
    panel.grab().save(str(SHOTS / "training_panel_versions.png"))


def test_stop_ends_the_child_and_touches_no_version(
    qtbot, train_panel: TrainingPanel, tmp_path: Path
) -> None:
    panel = train_panel
    models = tmp_path / "data" / "models"
    before = sorted(p.relative_to(models) for p in models.rglob("*"))
    panel.form.widgets["epochs"].setValue(400)
    qtbot.mouseClick(panel.start_button, LEFT)
    qtbot.waitUntil(lambda: len(getattr(panel, "history", [])) >= 2, timeout=120_000)
    qtbot.mouseClick(panel.stop_button, LEFT)
    assert not panel.stop_button.isEnabled() and "Stopping" in panel.status.text()
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=15_000)
    assert panel.resume_button.isEnabled()
    assert "Stopped" in panel.status.text()
    assert (panel.work / "checkpoint.pt").exists()
    after = sorted(p.relative_to(models) for p in models.rglob("*"))
    assert [p for p in after if p not in before] == [Path("active.json")] or after == before
    assert registry.resolve("tiny").card.version == "1.0"
    shutil.rmtree(panel.work, ignore_errors=True)

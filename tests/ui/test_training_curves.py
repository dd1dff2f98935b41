"""What the training panel says while and after a run, as a reader reads it: epoch 0 is the
base model (not an epoch with "loss None"), the curves span the run with the base model's
Dice as a line, numbers are rounded, and a new version that did worse than its parent says
so instead of inviting activation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medview.ui.panels.training_panel import TrainingPanel

SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))
START = {
    "event": "start",
    "steps_per_epoch": 2,
    "epochs": 20,
    "device": "cpu",
    "train": 3,
    "val": 1,
}


def epoch(n: int, loss: float | None, dice: float, best: int) -> dict:
    return {
        "event": "epoch",
        "epoch": n,
        "epochs": 20,
        "loss": loss,
        "val_dice": dice,
        "best_epoch": best,
        "seconds": 12.0 if n else 0.0,
        "eta_s": 12.0 * (20 - n),
        "val_dice_per_label": {"lung nodule": dice + 0.05, "liver lesion": dice - 0.05},
    }


@pytest.fixture
def panel(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrainingPanel:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    p = TrainingPanel()
    qtbot.addWidget(p)
    p.resize(380, 650)
    p.tabs.setCurrentIndex(1)
    p.show()
    yield p
    p.shutdown()


def test_the_base_model_is_epoch_zero_and_a_line(qtbot, panel: TrainingPanel) -> None:
    panel.on_event(START)
    panel.on_event(epoch(0, None, 0.92134, 0))
    text = panel.status.text()
    assert text.startswith("The base model before training: validation Dice 0.921")
    assert "None" not in text
    c = panel.curves
    assert c.base_line.isVisible() and c.base_line.value() == pytest.approx(0.92134)
    (x0, x1), (y0, y1) = c.dice_plot.viewRange()
    assert x0 <= 0 and x1 >= 20 and y0 <= 0 and y1 >= 1  # the whole run, Dice 0-1
    assert not c.dice_plot.getAxis("bottom").autoSIPrefix  # no "epoch (x0.001)"
    assert c.dice_plot.getAxis("left").labelText  # the axes say what they show
    for n, loss, dice in ((1, 2.88726, 0.8641), (2, 2.6554, 0.6935)):
        panel.on_event(epoch(n, loss, dice, 0))
    assert panel.status.text() == (
        "Epoch 2 of 20: loss 2.655, validation Dice 0.694 (the base model is still the best)."
    )
    assert c.times.text() == "time per epoch 12 s, time left 3.6 min"
    # each label's Dice beside the mean, named in the legend
    assert list(c.label_curves) == ["lung nodule", "liver lesion"]
    xs, ys = c.label_curves["liver lesion"].getData()
    assert list(xs) == [0, 1, 2] and ys[-1] == pytest.approx(0.6435)
    legend = c.legend.text()
    assert (
        legend.index("mean&nbsp;of&nbsp;labels")
        < legend.index("lung&nbsp;nodule")
        < legend.index("liver&nbsp;lesion")
        < legend.index("base&nbsp;model&nbsp;0.921")
    )
    qtbot.wait(50)
    panel.grab().save(str(SHOTS / "training_curves.png"))
    c.draw([{"epoch": 0, "epochs": 5, "val_dice": 0.5, "val_dice_per_label": {"x": 0.5}}])
    assert len(c.label_curves["liver lesion"].getData()[0] or []) == 0  # another run's
    assert "liver&nbsp;lesion" not in c.legend.text() and "x" in c.legend.text()


def test_a_worse_version_says_keep_the_parent(panel: TrainingPanel) -> None:
    ev = {
        "event": "done",
        "version": "lesion-seg:1.2.1",
        "parent": "lesion-seg:1.2",
        "metrics": {"dice_mean": 0.7125, "false_positives_per_study": 37.0},
        "parent_metrics": {"dice_mean": 0.9199, "false_positives_per_study": 0.0},
    }
    panel.on_event(ev)
    assert panel.status.text() == (
        "lesion-seg:1.2.1 written (not active) but it did worse than lesion-seg:1.2 on your "
        "validation studies (validation Dice 0.920 → 0.713, false positives per study 0 → "
        "37): keep lesion-seg:1.2 active."
    )
    ev["metrics"] = {"dice_mean": 0.95, "false_positives_per_study": 0.5}
    panel.on_event(ev)
    assert panel.status.text().endswith(
        "0.920 → 0.950, false positives per study 0 → 0.5; compare and activate it under Versions."
    )

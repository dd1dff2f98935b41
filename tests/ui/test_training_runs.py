"""The training panel never forgets a run: Stop, a crash of the child or a restart of the
app leave the run offered above the tabs; Resume continues it from its checkpoint's epoch
(a real `medview train --resume` child), Discard moves its folder aside. The Advanced
settings reach the job file the child runs."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from medview.ai.models import registry
from medview.ai.training.job import Job, Settings
from medview.core.volume import Volume
from medview.io.image_files import read_image, write_volume
from medview.ui.panels.training_panel import TrainingPanel
from tests.ui.training_fixtures import make_panel

Qt = QtCore.Qt
LEFT = Qt.MouseButton.LeftButton
SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))


def type_value(qtbot, spin, text: str) -> None:
    """Select a spin box's text and type over it, as a reader does."""
    qtbot.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(spin, text)


def wait_ended(qtbot, p: TrainingPanel) -> None:
    qtbot.waitUntil(lambda: p.start_button.isEnabled() and not p.process.running, timeout=30_000)


def test_advanced_settings_reach_the_job_file(qtbot, train_panel: TrainingPanel) -> None:
    panel = train_panel
    form = panel.form
    assert not form.advanced.isVisible()
    qtbot.mouseClick(form.toggle, LEFT)
    assert form.advanced.isVisible()
    for name, text in (
        ("patches_per_study", "8"),
        ("patience", "3"),
        ("seed", "7"),
        ("replay_studies", "0"),
        ("folds", "1"),
        ("val_fraction", "0.5"),
    ):
        type_value(qtbot, form.widgets[name], text)  # folds 1: the split below decides
    box = form.widgets["freeze_norm"]
    qtbot.mouseClick(box, LEFT, pos=QtCore.QPoint(8, box.height() // 2))
    assert form.toggle.text() == "Advanced (8 changed)"  # and threads (the fixture)
    split = panel.studies.split()
    assert len(split["val"]) == 2 and len(split["train"]) == 2  # the new share, by patient
    qtbot.mouseClick(panel.start_button, LEFT)
    job = json.loads((panel.work / "job.json").read_text())
    s = job["settings"]
    assert (
        s["patches_per_study"],
        s["patience"],
        s["seed"],
        s["replay_studies"],
        s["val_fraction"],
        s["freeze_norm"],
        s["folds"],
    ) == (8, 3, 7, 0, 0.5, False, 1)
    assert job["split"] == split
    steps = math.ceil(2 * 8 / 4)  # 2 training studies x 8 patches / batch 4: the child used it
    qtbot.waitUntil(
        lambda: f"steps_per_epoch {steps}," in panel.curves.log_view.toPlainText(), timeout=60_000
    )
    qtbot.mouseClick(panel.stop_button, LEFT)
    wait_ended(qtbot, panel)


def test_stop_resume_crash_restart_and_discard(qtbot, train_studies: Path, tmp_path: Path) -> None:
    studies = train_studies
    models = tmp_path / "data" / "models"
    versions = sorted(p.relative_to(models) for p in models.rglob("*") if p.is_file())
    p = make_panel(qtbot, studies)
    assert not p.runs.isVisible()  # nothing unfinished yet
    p.form.widgets["epochs"].setValue(400)
    qtbot.mouseClick(p.start_button, LEFT)
    qtbot.waitUntil(lambda: len(p.history) >= 2, timeout=120_000)
    qtbot.mouseClick(p.stop_button, LEFT)
    wait_ended(qtbot, p)
    # stopped: offered at once, with where it stands
    run = p.runs.current
    assert p.runs.isVisible() and run is not None and run.folder == p.work
    assert run.status == "stopped" and run.epoch >= 1 and run.epochs == 400
    assert "stopped" in p.runs.text.text() and f"epoch {run.epoch} of 400" in p.runs.text.text()
    assert p.status.text().startswith(f"Stopped in epoch {run.epoch + 1}")
    # the reader widens a lesion of a validation study before resuming
    job = Job.load(run.job_file)
    relabelled = job.names[job.split["val"][0]]
    path = studies / relabelled / "labels.nii.gz"
    labels = read_image(path)
    grown = np.asarray(labels.array).copy()
    grown[np.roll(grown, 1, axis=2) == 1] = 1
    write_volume(Volume(grown, labels.affine), path)
    # Resume in the same panel continues from the checkpoint's epoch
    seen: list[dict] = []
    p.process.event.connect(seen.append)
    qtbot.mouseClick(p.resume_button, LEFT)
    assert not p.start_button.isEnabled() and not p.resume_button.isEnabled()
    qtbot.waitUntil(lambda: any(e["event"] == "epoch" for e in seen), timeout=120_000)
    start = next(e for e in seen if e["event"] == "start")
    assert start["resumed_epoch"] == run.epoch
    assert next(e for e in seen if e["event"] == "epoch")["epoch"] == run.epoch + 1
    assert (
        p.status.text().startswith(("Epoch", "Cross-validation fold"))
        or "Resumed" in p.curves.log_view.toPlainText()
    )
    xs = list(p.curves.loss_curve.getData()[0])
    assert xs == list(range(1, len(xs) + 1)) and len(xs) >= run.epoch + 1  # one curve on
    # each label's line from epoch 0, the epochs before the stop included
    for curve in p.curves.label_curves.values():
        assert list(curve.getData()[0])[: run.epoch + 2] == list(range(run.epoch + 2))
    # the relabel is said, and stays in view while the run goes on
    assert p.notes.isVisible() and p.notes.text().startswith(
        f"⚠ The labels of 1 study ({relabelled}) changed since this run began"
    )
    p.grab().save(str(SHOTS / "training_panel_resumed.png"))
    # the child dies (out-of-memory killer, power cut): one sentence, the run kept
    os.kill(p.process.proc.processId(), signal.SIGKILL)
    wait_ended(qtbot, p)
    assert "ended unexpectedly" in p.status.text() and "Resume continues" in p.status.text()
    assert p.runs.current.status == "interrupted"
    work, epoch = p.work, p.runs.current.epoch
    p.shutdown()
    p.close()
    # a restart: a new panel offers the run, with its curves
    again = make_panel(qtbot, studies)
    assert again.runs.isVisible() and again.runs.current.folder == work
    assert again.runs.current.epoch == epoch and "interrupted" in again.runs.text.text()
    assert again.resume_button.isEnabled()
    qtbot.mouseClick(again.form.toggle, LEFT)
    qtbot.wait(50)  # the scroll area lays the expanded form out
    again.grab().save(str(SHOTS / "training_panel_unfinished.png"))
    # discard: moved aside, never deleted; no version touched
    qtbot.mouseClick(again.runs.discard_button, LEFT)
    aside = tmp_path / "data" / "training" / "discarded" / work.name
    assert not work.exists() and (aside / "checkpoint.pt").exists()
    assert not again.runs.isVisible() and str(aside) in again.status.text()
    assert sorted(
        p.relative_to(models) for p in models.rglob("*") if p.is_file() and p.name != "active.json"
    ) == [v for v in versions if v.name != "active.json"]
    assert registry.resolve("tiny").card.version == "1.0"
    again.shutdown()


def test_every_setting_of_the_engine_is_in_the_form(qtbot, monkeypatch) -> None:
    from dataclasses import dataclass, fields

    from medview.ui.panels import training_settings as ts

    form = ts.TrainingSettings()
    qtbot.addWidget(form)
    assert form.settings() == Settings()  # the engine's defaults, not the form's
    for f in fields(Settings):
        w = form.widgets[f.name]
        assert w.toolTip(), f.name
        assert form.advanced.isAncestorOf(w) == (f.name not in ts.BASIC), f.name

    @dataclass
    class Newer(Settings):
        new_knob: float = 0.5

    monkeypatch.setattr(ts, "Settings", Newer)
    newer = ts.TrainingSettings()
    qtbot.addWidget(newer)
    assert newer.advanced.isAncestorOf(newer.widgets["new_knob"])
    assert newer.settings().new_knob == 0.5 and "new_knob" in newer.widgets["new_knob"].toolTip()

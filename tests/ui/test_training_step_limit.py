"""The training form cannot build a job the engine refuses: every spin box stays inside the
engine's ranges (Settings.check), batch size x patch size² stays at most the engine's
MAX_STEP_PIXELS (batch 256 with patch 512 was refused by the child only after Start), with
a note saying why a box goes no higher, and the patch size is a multiple the base model's
network takes (train_patches.check_patch; a typed 100 was refused the same way)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from medview.ai.models.cards import ModelCard, pad_multiple
from medview.ai.models.registry import resolve
from medview.ai.training.job import MAX_STEP_PIXELS, Settings
from medview.ai.training.patches import check_patch
from medview.ui.panels.training_panel import TrainingPanel
from medview.ui.panels.training_settings import TrainingSettings

Qt = QtCore.Qt
SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))


@pytest.fixture
def form(qtbot) -> TrainingSettings:
    f = TrainingSettings()
    qtbot.addWidget(f)
    f.show()
    return f


@pytest.fixture
def card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelCard:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return resolve("lesion-seg").card  # the bundled base: patches a multiple of 16


def engine_accepts(form: TrainingSettings, card: ModelCard) -> None:
    s = form.settings()
    s.check()  # raises ValueError naming what the engine refuses
    check_patch(card, s.patch_size)
    assert s.batch_size * s.patch_size**2 <= MAX_STEP_PIXELS


def spin_boxes(form: TrainingSettings) -> dict[str, QtWidgets.QAbstractSpinBox]:
    return {
        n: w
        for n, w in form.widgets.items()
        if isinstance(w, (QtWidgets.QSpinBox, QtWidgets.QDoubleSpinBox))
    }


def test_every_job_the_form_makes_passes_the_engines_check(
    form: TrainingSettings, card: ModelCard
) -> None:
    form.set_patch_multiple(pad_multiple(card))
    boxes = spin_boxes(form)

    def far(name: str, sign: int) -> float:  # a spin box keeps a value inside its range
        return sign * (2**31 - 1 if isinstance(boxes[name], QtWidgets.QSpinBox) else 1e12)

    for order in (list(boxes), list(reversed(boxes))):  # each box's far ends, in turn
        for name in order:
            for sign in (-1, 1):
                boxes[name].setValue(far(name, sign))
                engine_accepts(form, card)
        for sign in (-1, 1):  # and all at once
            for name in order:
                boxes[name].setValue(far(name, sign))
            engine_accepts(form, card)
    batch, patch = boxes["batch_size"], boxes["patch_size"]
    for b, p in itertools.product(
        (1, 16, 64, 65, 100, 256, 2**31 - 1), (16, 100, 256, 300, 512, 2**31 - 1)
    ):
        for first, second in (((batch, b), (patch, p)), ((patch, p), (batch, b))):
            form.reset()
            first[0].setValue(first[1])
            second[0].setValue(second[1])
            engine_accepts(form, card)
    form.reset()
    assert form.settings() == Settings() and not form.step_note.isVisible()


def test_typing_what_the_engine_refuses(qtbot, form: TrainingSettings, card: ModelCard) -> None:
    batch, patch = form.widgets["batch_size"], form.widgets["patch_size"]
    form.set_patch_multiple(pad_multiple(card))
    for box, text in ((patch, "100"), (patch, "512"), (batch, "256")):
        qtbot.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClicks(box, text)
        qtbot.keyClick(box, Qt.Key.Key_Return)  # editing ends
        engine_accepts(form, card)
    assert patch.value() == 512 and batch.value() == 25  # '256' is more than 64: '25' stays
    assert (
        form.step_note.isVisible()
        and "with patch size 512, batch size goes up to 64" in form.step_note.text()
    )
    form.reset()  # the caps follow: back to the defaults, nothing binds
    assert batch.maximum() == 256 and patch.maximum() == 512 and not form.step_note.isVisible()
    form.set_settings(Settings(batch_size=128, patch_size=256))  # allowed in either order
    assert (form.settings().batch_size, form.settings().patch_size) == (128, 256)
    qtbot.keyClick(patch, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(patch, "100")
    qtbot.keyClick(patch, Qt.Key.Key_Return)
    assert patch.value() == 96  # a multiple of the network's 16


@pytest.mark.parametrize(("multiple", "lowest", "step"), [(1, 16, 16), (32, 32, 32), (6, 18, 18)])
def test_patch_sizes_follow_the_base_models_network(
    form: TrainingSettings, multiple: int, lowest: int, step: int
) -> None:
    patch = form.widgets["patch_size"]
    form.set_patch_multiple(multiple)
    assert (patch.minimum(), patch.singleStep()) == (lowest, step)
    for value in (0, 17, 100, 129, 511, 2**31 - 1):
        patch.setValue(value)
        patch.lineEdit().setText(str(value))
        patch.interpretText()  # as when typing ends
        assert patch.value() % multiple == 0 and patch.value() >= lowest
        Settings(patch_size=patch.value(), batch_size=form.settings().batch_size).check()


def test_the_panel_explains_the_cap(qtbot, card: ModelCard) -> None:
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(460, 900)
    panel.show()
    panel.form.widgets["patch_size"].setValue(512)
    panel.form.widgets["batch_size"].setValue(256)
    qtbot.wait(30)
    assert panel.form.settings().batch_size == 64 and panel.form.step_note.isVisible()
    panel.grab().save(str(SHOTS / "training_step_limit.png"))
    panel.shutdown()

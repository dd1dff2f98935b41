"""The fine-tune's settings as a form: the few a reader sets every time (epochs, learning
rate, batch and patch size, augmentation, device, mixed precision) and, folded under
"Advanced", the rest of the engine's Settings, each with a tooltip that says why one would
change it. Defaults come from ai.train_job.Settings, never from here; a Settings field this
form does not describe yet still appears under Advanced with a plain widget, so the form
cannot silently drop one."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from medview.ai.training.job import MAX_STEP_PIXELS, Settings

BASIC = ("epochs", "lr", "batch_size", "patch_size", "augment", "device", "amp")
# the advanced settings a reader is likeliest to change come first, the rest in their order
FIRST = (
    "patches_per_study",
    "replay_studies",
    "freeze_norm",
    "folds",
    "val_fraction",
    "patience",
    "seed",
)
SPLIT_FIELDS = ("val_fraction", "seed")  # a change proposes a new split
SETTING_NAMES = frozenset(f.name for f in fields(Settings))

# name: (label, tooltip, widget options: range, step, decimals, check box text)
SPECS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "epochs": (
        "Epochs",
        "Passes over the training studies; early stopping (Patience) may "
        "end the run sooner, keeping the best epoch.",
        {"range": (1, 500)},
    ),
    "lr": (
        "Learning rate",
        "AdamW's peak rate after warm-up, decaying to zero. Lower it when "
        "the base model already does well on your studies; raise it only when the loss "
        "stays flat.",
        {"range": (1e-5, 1e-2), "step": 1e-4, "decimals": 5},
    ),
    "batch_size": (
        "Batch size",
        "Patches per step. Lower it when the device runs out of memory.",
        {"range": (1, 256)},
    ),
    "patch_size": (
        "Patch size",
        "Side of the square patches in pixels. Smaller patches need "
        "less memory but see less around a lesion.",
        {"range": (16, 512), "step": 16},
    ),
    "augment": (
        "Augmentation",
        "Random flips, small rotations and scaling, and intensity "
        "jitter: fewer studies are needed before the model overfits.",
        {"text": "flips, rotation, zoom, intensity"},
    ),
    "device": (
        "Device",
        "Where the training process runs: auto takes a GPU (CUDA or Apple MPS) when there is one.",
        {"choices": ("auto", "cpu", "cuda", "mps")},
    ),
    "amp": (
        "",
        "Mixed precision on CUDA: about twice as fast with half the memory; ignored "
        "on the CPU and MPS.",
        {"text": "mixed precision (CUDA)"},
    ),
    "patches_per_study": (
        "Patches per study",
        "Patches drawn from each training study per "
        "epoch. More make an epoch longer and its validation Dice steadier; "
        "fewer validate (and checkpoint) more often.",
        {"range": (1, 4096)},
    ),
    "pos_fraction": (
        "Patches on labels",
        "Share of patches centred on a labelled voxel. "
        "Raise it when lesions are small and rare, lower it when the model "
        "starts marking normal tissue.",
        {"range": (0.0, 1.0), "step": 0.05},
    ),
    "mined_fraction": (
        "Patches on mistakes",
        "Share of patches centred where the base model "
        "is wrong (its false positives), so the new version learns to avoid "
        "them; 0 turns this off.",
        {"range": (0.0, 1.0), "step": 0.05, "zero": "off"},
    ),
    "mined_threshold": (
        "Mistake probability",
        "How sure the base model must be of a wrong label for the voxel to count as "
        "its mistake. 0.5 mines what it gets wrong; lower also mines where it is "
        "unsure, which is where a fine-tune most easily tips into new false positives.",
        {"range": (0.05, 0.95), "step": 0.05},
    ),
    "replay_studies": (
        "Rehearsal studies",
        "Only for MedView's own models: this many of the "
        "studies the model was trained on train alongside yours, so it keeps "
        "working on its original data (without rehearsal, fine-tuning on "
        "another site took its Dice there from 0.90 to 0.38). 0 = none; other "
        "models have no such studies.",
        {"range": (0, 56), "zero": "none"},
    ),
    "freeze_norm": (
        "Batch-norm statistics",
        "Keep the base model's batch-norm statistics "
        "(their scale and shift still learn). Patches are not whole slices: "
        "statistics learnt from them hurt the original data. Turn off only with "
        "many studies from your site.",
        {"text": "keep the base model's"},
    ),
    "distill": (
        "Distillation",
        "Weight of a pull toward the base model's own answers "
        "(learning without forgetting). Raise it when the new version forgets what "
        "the base did well; 0 = off.",
        {"range": (0.0, 10.0), "step": 0.1, "zero": "off"},
    ),
    "distill_on": (
        "Distil on",
        "Where distillation applies: the rehearsal studies only, "
        "where the base is right, or all patches, also yours, where your labels "
        "must still win.",
        {"choices": ("rehearsal", "all")},
    ),
    "l2sp": (
        "Pull to base weights",
        "Keeps the weights near the base model's (L2-SP) rather "
        "than near zero; raise it when few studies make the new version drift. 0 = off.",
        {"range": (0.0, 10.0), "step": 0.1, "zero": "off"},
    ),
    "folds": (
        "Cross-validation folds",
        "Every labelled study is scored by a version trained "
        "without it: the same training runs once per fold on the other folds (by "
        "patient), then once on all studies for the version you get. The numbers and "
        "their intervals then rest on all your studies, not two; the run takes "
        "folds + 1 trainings. 1 = one held-out split (Validation share) that also "
        "picks the best epoch.",
        {"range": (1, 20)},
    ),
    "refit_fp": (
        "False-positive stage",
        "With cross-validation: refit the false-positive classifier on the new network's "
        "own candidates in the held-out studies; the version keeps it only when it is "
        "better there than the base model's. Off by default: your studies hold only your "
        "site's candidates, and a refit classifier can let the base model's own site's "
        "false positives through.",
        {"text": "refit on the new network's candidates"},
    ),
    "trainable": (
        "Weights that learn",
        "all: every weight. norm: only the normalisation layers' scale and shift and "
        "the activations' slopes (a few hundred numbers: a new scanner's contrast and "
        "noise re-mapped, nothing else forgotten). decoder: the layers after the "
        "network's deepest one (the encoder's features kept).",
        {"choices": ("all", "norm", "decoder")},
    ),
    "site_norm": (
        "Statistics from your studies",
        "Measure the batch-norm statistics afresh on your studies before training "
        "(AdaBN): the base model's describe its own scanner's images.",
        {"text": "measure on your studies"},
    ),
    "interpolate": (
        "Share of the change kept",
        "The version's weights are the base model's plus this share of what the "
        "fine-tune changed (WiSE-FT): below 1 keeps more of the base model's behaviour "
        "on its own data. 1 = the fine-tune as it is.",
        {"range": (0.05, 1.0), "step": 0.05},
    ),
    "scanner_augment": (
        "Other scanners",
        "Also show each patch as another scanner might have made it: a softer or "
        "sharper kernel, grainier noise, soft tissue as after contrast.",
        {"text": "vary kernel, noise and contrast phase"},
    ),
    "val_fraction": (
        "Validation share",
        "With one fold only: share of patients held out to "
        "validate when the split is proposed (changing it proposes a new split; "
        "you can still move patients by hand). With cross-validation every "
        "study is held out once, whichever side it is on.",
        {"range": (0.05, 0.5), "step": 0.05},
    ),
    "patience": (
        "Patience (epochs)",
        "With one fold only: stop after this many epochs "
        "without a better validation Dice; the best epoch becomes the version. "
        "Cross-validated runs train every epoch.",
        {"range": (1, 500)},
    ),
    "warmup_epochs": (
        "Warm-up (epochs)",
        "Epochs over which the learning rate rises to its "
        "peak, so the first steps do not undo what the base model learnt.",
        {"range": (0.0, 20.0), "step": 0.5},
    ),
    "weight_decay": (
        "Weight decay",
        "AdamW's pull of the weights towards zero; rarely needs changing.",
        {"range": (0.0, 0.1), "step": 1e-4, "decimals": 5},
    ),
    "seed": (
        "Seed",
        "Seeds the proposed split, the patches and the augmentation: the same "
        "seed and studies give the same run. Change it to see how much a result "
        "varies.",
        {"range": (0, 2**31 - 1)},
    ),
    "threads": (
        "CPU threads",
        "Threads of the training process; 0 = all cores. Fewer keep "
        "the viewer quicker on a small computer while it trains.",
        {"range": (0, 256), "zero": "all cores"},
    ),
}


def _spec(name: str, default: Any) -> tuple[str, str, dict[str, Any]]:
    """A field's label, tooltip and options; a field not described here gets plain ones."""
    return SPECS.get(
        name,
        (name.replace("_", " ").capitalize(), f"Engine setting '{name}' (default {default}).", {}),
    )


def field_label(name: str) -> str:
    """A setting as the reader finds it in the form: its label, and where when folded."""
    label, _, opt = _spec(name, None)
    if not label:  # a check box's text is its label
        label = opt.get("text", name)[:1].upper() + opt.get("text", name)[1:]
    return label if name in BASIC else f"{label} (under Advanced)"


class _MultipleSpinBox(QtWidgets.QSpinBox):
    """Whole multiples of `multiple` only (a patch side the network's down- and up-sampling
    can take; the engine refuses others): a typed 100 becomes 96 when editing ends, and so
    does one set from code (a remembered job's)."""

    multiple = 1

    def validate(self, text: str, pos: int) -> object:
        state, text, pos = super().validate(text, pos)
        if state == QtGui.QValidator.State.Acceptable and int(text) % self.multiple:
            state = QtGui.QValidator.State.Intermediate
        return state, text, pos

    def fixup(self, text: str) -> str:
        try:
            return str(self._whole(int(text)))
        except ValueError:
            return text

    def setValue(self, value: int) -> None:  # a remembered job's value too
        super().setValue(self._whole(value))

    def _whole(self, value: int) -> int:
        return max(self.minimum(), value - value % self.multiple)


def _widget(name: str, default: Any) -> QtWidgets.QWidget:
    _, tip, opt = _spec(name, default)
    if name == "patch_size":
        w: QtWidgets.QWidget = _MultipleSpinBox(minimum=opt["range"][0], maximum=opt["range"][1])
    elif isinstance(default, bool):
        w = QtWidgets.QCheckBox(opt.get("text", ""), checked=default)
    elif "choices" in opt:
        w = QtWidgets.QComboBox()
        w.addItems(opt["choices"])
    elif isinstance(default, int):
        lo, hi = opt.get("range", (0, 10**6))
        w = QtWidgets.QSpinBox(minimum=lo, maximum=hi, singleStep=opt.get("step", 1))
    elif isinstance(default, float):
        lo, hi = opt.get("range", (0.0, 10.0**6))
        w = QtWidgets.QDoubleSpinBox(
            minimum=lo, maximum=hi, decimals=opt.get("decimals", 3), singleStep=opt.get("step", 0.1)
        )
    else:
        w = QtWidgets.QLineEdit()
    if "zero" in opt:  # what 0 means, shown instead of 0
        w.setSpecialValueText(opt["zero"])
    w.setToolTip(tip)
    w.setObjectName(name)
    return w


class TrainingSettings(QtWidgets.QWidget):
    changed = QtCore.Signal(str)  # the field's name
    split_changed = QtCore.Signal()  # validation share or seed: propose a new split

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.defaults = Settings()
        self.widgets: dict[str, QtWidgets.QWidget] = {}
        basic, advanced = QtWidgets.QFormLayout(), QtWidgets.QFormLayout()
        # why batch size or patch size goes no higher, shown while the engine's cap binds
        self.step_note = QtWidgets.QLabel(wordWrap=True, visible=False)
        names = [f.name for f in fields(Settings)]
        for name in [n for n in BASIC + FIRST if n in names] + [
            n for n in names if n not in BASIC + FIRST
        ]:
            default = getattr(self.defaults, name)
            w = self.widgets[name] = _widget(name, default)
            (basic if name in BASIC else advanced).addRow(_spec(name, default)[0], w)
            if name == "patch_size":
                basic.addRow(self.step_note)
            self._set(name, default)
            self._connect(name, w)
        self.toggle = QtWidgets.QToolButton(
            checkable=True,
            autoRaise=True,
            toolButtonStyle=QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon,
        )
        self.toggle.setArrowType(QtCore.Qt.ArrowType.RightArrow)
        self.toggle.setToolTip("The engine's other settings; the defaults suit most runs")
        self.toggle.toggled.connect(self.set_expanded)
        self.defaults_button = QtWidgets.QPushButton(
            "Defaults", toolTip="Every setting back to the engine's default"
        )
        self.defaults_button.clicked.connect(self.reset)
        self.advanced = QtWidgets.QWidget(visible=False)
        inner = QtWidgets.QVBoxLayout(self.advanced)
        inner.setContentsMargins(12, 0, 0, 0)
        inner.addLayout(advanced)
        inner.addWidget(self.defaults_button, 0, QtCore.Qt.AlignmentFlag.AlignRight)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(basic)
        layout.addWidget(self.toggle, 0, QtCore.Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.advanced)
        self._update_toggle()
        self.widest = {n: self.widgets[n].maximum() for n in ("batch_size", "patch_size")}
        self.set_patch_multiple(1)

    def _connect(self, name: str, w: QtWidgets.QWidget) -> None:
        signal = (
            w.toggled
            if isinstance(w, QtWidgets.QCheckBox)
            else w.currentIndexChanged
            if isinstance(w, QtWidgets.QComboBox)
            else w.textChanged
            if isinstance(w, QtWidgets.QLineEdit)
            else w.valueChanged
        )
        signal.connect(lambda *_: self._changed(name))

    def set_patch_multiple(self, multiple: int) -> None:
        """The base model's patch multiple (cards.pad_multiple): the patch size box
        offers only sides its network takes (the engine refuses others)."""
        box = self.widgets["patch_size"]
        step = multiple * math.ceil(16 / multiple)  # the arrows' step, 16 or more
        box.multiple = multiple
        box.setSingleStep(step)
        box.setMinimum(max(SPECS["patch_size"][2]["range"][0], step))
        self.widest["patch_size"] = SPECS["patch_size"][2]["range"][1] // step * step
        box.setMaximum(self.widest["patch_size"])
        box.setValue(max(box.minimum(), box.value() - box.value() % multiple))
        self._fit_step()

    def _fit_step(self) -> None:
        """Batch size x patch size² at most the engine's MAX_STEP_PIXELS (it refuses a
        larger step): each box's maximum is what the other's value leaves, and a note
        under them says so while that is below the box's own maximum."""
        batch, patch = self.widgets["batch_size"], self.widgets["patch_size"]
        b, p = batch.value(), patch.value()
        most_b = min(self.widest["batch_size"], MAX_STEP_PIXELS // p**2)
        side = math.isqrt(MAX_STEP_PIXELS // b)
        most_p = min(self.widest["patch_size"], side - side % patch.multiple)
        for box, most in ((batch, most_b), (patch, most_p)):
            box.blockSignals(True)  # a clamp (only of settings set as a whole) is told below
            box.setMaximum(most)
            box.blockSignals(False)
        binds = [f"with patch size {p}, batch size goes up to {most_b}"] * (
            most_b < self.widest["batch_size"]
        ) + [f"with batch size {b}, patch size goes up to {most_p}"] * (
            most_p < self.widest["patch_size"]
        )
        self.step_note.setText(
            f"Batch size × patch size² is at most "
            f"{MAX_STEP_PIXELS / 1e6:.1f} million pixels a step (the "
            f"training engine's limit): {'; '.join(binds)}."
        )
        self.step_note.setVisible(bool(binds))
        for name, was in (("batch_size", b), ("patch_size", p)):
            if self.widgets[name].value() != was:
                self._changed(name)

    def _changed(self, name: str) -> None:
        if name in ("batch_size", "patch_size"):
            self._fit_step()
        self._update_toggle()
        self.changed.emit(name)
        if name in SPLIT_FIELDS:
            self.split_changed.emit()

    def set_expanded(self, expanded: bool) -> None:
        self.toggle.setChecked(expanded)
        self.toggle.setArrowType(
            QtCore.Qt.ArrowType.DownArrow if expanded else QtCore.Qt.ArrowType.RightArrow
        )
        self.advanced.setVisible(expanded)

    def _update_toggle(self) -> None:
        now = self.settings()
        n = sum(
            getattr(now, f.name) != getattr(self.defaults, f.name)
            for f in fields(Settings)
            if f.name not in BASIC
        )
        self.toggle.setText("Advanced" + (f" ({n} changed)" if n else ""))

    def _get(self, name: str) -> Any:
        w, default = self.widgets[name], getattr(self.defaults, name)
        if isinstance(w, QtWidgets.QCheckBox):
            return w.isChecked()
        if isinstance(w, QtWidgets.QComboBox):
            return w.currentText()
        if isinstance(w, QtWidgets.QLineEdit):
            return type(default)(w.text())
        return w.value()

    def _set(self, name: str, value: Any) -> None:
        w = self.widgets[name]
        if isinstance(w, QtWidgets.QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QtWidgets.QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QtWidgets.QLineEdit):
            w.setText(str(value))
        else:
            w.setValue(value)

    def settings(self) -> Settings:
        return Settings(**{f.name: self._get(f.name) for f in fields(Settings)})

    def set_settings(self, settings: Settings) -> None:
        """Every field; batch and patch size each up to its own maximum first, so the order
        they are set in does not clamp one by the other's old value."""
        for name, most in self.widest.items():
            self.widgets[name].setMaximum(most)
        for f in fields(Settings):
            self._set(f.name, getattr(settings, f.name))
        self._fit_step()

    def reset(self) -> None:
        self.set_settings(Settings())

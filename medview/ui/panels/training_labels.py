"""What each of the reader's labels is to the base model: one row per segment name found in
the listed studies (or per label number, for label maps without names), set to the model
label it teaches or to "not trained". A segment the model knows by name starts on it; any
other ("Segment 1" after an import, a name of the reader's own) waits for the reader's
choice, since guessing by number could teach a liver lesion as a lung nodule; the choices of
the latest run are offered again. The choices go
into the job file's mapping (ai.train_job.Job.mapping), which the engine applies by name,
or by number for label maps without names (ai.train_data.label_mapping)."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from medview.ai.training.job import JOB_FILE, Job
from medview.core.errors import MedviewError
from medview.io import saved

IGNORE = "ignore"  # ai.train_data.IGNORE: the voxels count as background
CHOOSE = "choose…"


def _key(value: int, name: str) -> str:
    """The mapping's key for a label: its name, or its number when it has none."""
    return name or str(value)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # moved aside (Discard) meanwhile
        return 0.0


def last_mapping() -> dict[str, str]:
    """The label choices of the latest run started in this data folder (its job file)."""
    for path in sorted(saved.training_dir().glob(f"*/{JOB_FILE}"), key=_mtime, reverse=True):
        try:
            return Job.load(path).mapping
        except MedviewError:
            continue
    return {}


class TrainingLabels(QtWidgets.QGroupBox):
    changed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Your labels teach", parent)
        self.setToolTip(
            "Which of the base model's labels each of your segments is; the "
            "model learns only the labels it has"
        )
        self.model: dict[int, str] = {}  # the base model's labels
        self.combos: dict[str, QtWidgets.QComboBox] = {}
        self.defaults: dict[str, str] = {}  # what a key maps to unless the reader chooses
        self._chosen: dict[str, str] = {}  # the reader's choices, kept across refreshes
        self.form = QtWidgets.QFormLayout(self)
        self.setVisible(False)

    def set_labels(self, found: dict[str, tuple[int, int]], model: dict[int, str]) -> None:
        """`found`: each label key (name, or number without one) -> (its value, how many
        studies hold it); `model`: the base model's labels, value -> name."""
        for combo in self.combos.values():
            combo.currentIndexChanged.disconnect()
        while self.form.rowCount():
            self.form.removeRow(0)
        self.model, self.combos, self.defaults = model, {}, {}
        by_name = {n.lower(): n for n in model.values()}
        for key, (value, studies) in found.items():
            named = key != str(value)
            known = by_name.get(key.lower()) if named else model.get(value)
            self.defaults[key] = known or ""
            combo = QtWidgets.QComboBox(minimumContentsLength=10)  # fits a narrow dock
            combo.setSizeAdjustPolicy(
                QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            if not known:
                combo.addItem(CHOOSE, "")
            for name in model.values():
                combo.addItem(name, name)
            combo.addItem("not trained (background)", IGNORE)
            index = combo.findData(self._chosen.get(key))  # -1: not a label of this model
            combo.setCurrentIndex(index if index >= 0 else combo.findData(known or ""))
            combo.setToolTip(f"What '{key}' is to the base model")
            combo.currentIndexChanged.connect(lambda _i, k=key: self._choose(k))
            self.combos[key] = combo
            shown = key if named else f"label {key}"
            self.form.addRow(f"{shown} ({studies} {'study' if studies == 1 else 'studies'})", combo)
        self.setVisible(bool(found))

    def remember(self, mapping: dict[str, str]) -> None:
        """Start from the reader's choices of an earlier run (its job's mapping)."""
        self._chosen.update(mapping)

    def _choose(self, key: str) -> None:
        self._chosen[key] = self.combos[key].currentData()
        self.changed.emit()

    def target(self, key: str) -> str:
        """The model label `key` teaches, "ignore", or "" while undecided."""
        return self.combos[key].currentData() if key in self.combos else ""

    def mapping(self) -> dict[str, str]:
        """The job file's mapping: every choice that differs from what the engine does by
        itself (a label number is only written when needed: it applies to every study)."""
        return {
            k: self.target(k)
            for k in self.combos
            if not k.isdigit() or self.target(k) != self.defaults[k]
        }

    def problem(self) -> str | None:
        """Why Start must wait, as one sentence; None when every label has its target."""
        open_ = [k for k in self.combos if not self.target(k)]
        if open_:
            return (
                f"Choose what {', '.join(repr(k) for k in open_)} "
                f"{'is' if len(open_) == 1 else 'are'} to the base model under "
                f'"Your labels teach" (or "not trained"), then Start.'
            )
        if self.combos and all(self.target(k) == IGNORE for k in self.combos):
            return 'Every label is set to "not trained": at least one must teach the model.'
        return None

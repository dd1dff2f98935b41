"""The runs a reader has not finished — stopped, failed, or cut short by a closed app or a
crash — offered above the training panel's tabs until they are resumed or discarded, so no
run is forgotten after Stop or a restart. The runs come from their work folders
(ai.train_runs); Resume hands the run to the panel, which runs `medview train --job FILE
--resume` (the engine continues from the last checkpoint); Discard moves the work folder
into training/discarded, never deletes it, and says where it went."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from medview.ai.training.runs import RunInfo, discard_run, unfinished_runs
from medview.core.errors import MedviewError
from medview.ui.panels.training_sentences import setting_sentence

STATES = {
    "stopped": "stopped",
    "failed": "ended with an error",
    "interrupted": "interrupted (the app or the computer stopped while it ran)",
    "running": "still running in another process",
}


def describe(run: RunInfo) -> str:
    """One line: which run, where it stands, what it learns from."""
    started = run.started.replace("T", " ")[:16]
    where = f"epoch {run.epoch} of {run.epochs} done"
    if run.step:
        where += f", {run.step} of {run.steps_per_epoch} steps into epoch {run.epoch + 1}"
    dice = [h["val_dice"] for h in run.history if h.get("val_dice") is not None]
    text = (
        f"{run.base}, started {started}: {STATES.get(run.status, run.status)} — {where}"
        f"{f', last validation Dice {dice[-1]:.3f}' if dice else ''}; {run.train} "
        f"training and {run.val} validation studies."
    )
    error = setting_sentence(run.error_setting) or run.error  # the panel's words if it can
    return text + (f" {error.rstrip('.')}." if error and run.status == "failed" else "")


class UnfinishedRuns(QtWidgets.QGroupBox):
    resume_requested = QtCore.Signal(object)  # RunInfo
    message = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Unfinished run", parent)
        self.runs: list[RunInfo] = []
        self.training: Path | None = None  # the panel's running run: not offered, and
        # nothing else resumes while it runs
        self.combo = QtWidgets.QComboBox(toolTip="Every unfinished run, the latest first")
        self.combo.currentIndexChanged.connect(self._show)
        self.text = QtWidgets.QLabel(wordWrap=True)
        self.text.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.resume_button = QtWidgets.QPushButton(
            "Resume",
            toolTip="Continue this run from its last checkpoint, with its own settings and split",
        )
        self.discard_button = QtWidgets.QPushButton(
            "Discard",
            toolTip="Move this run's folder into training/discarded (nothing is "
            "deleted; no model version is touched)",
        )
        self.resume_button.clicked.connect(self._resume)
        self.discard_button.clicked.connect(self.discard)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.combo, 1)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.discard_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addLayout(buttons)
        self.setVisible(False)

    @property
    def current(self) -> RunInfo | None:
        i = self.combo.currentIndex()
        return self.runs[i] if 0 <= i < len(self.runs) else None

    def refresh(self, select: Path | None = None) -> None:
        """Read the work folders again; `select` the given one when it is unfinished."""
        self.runs = [r for r in unfinished_runs() if r.folder != self.training]
        self.combo.blockSignals(True)
        self.combo.clear()
        for run in self.runs:
            self.combo.addItem(f"{run.base} — {run.started.replace('T', ' ')[:16]}")
        folders = [r.folder for r in self.runs]
        if select is not None and select in folders:
            self.combo.setCurrentIndex(folders.index(select))
        self.combo.blockSignals(False)
        self.combo.setVisible(len(self.runs) > 1)
        self.setTitle(
            "Unfinished run" if len(self.runs) < 2 else f"Unfinished runs ({len(self.runs)})"
        )
        self.setVisible(bool(self.runs))
        self._show()

    def _show(self) -> None:
        run = self.current
        self.text.setText(describe(run) if run else "")
        free = run is not None and run.status != "running"
        self.resume_button.setEnabled(free and self.training is None)
        self.discard_button.setEnabled(free)

    def _resume(self) -> None:
        if self.current is not None:
            self.resume_requested.emit(self.current)

    def discard(self) -> None:
        run = self.current
        if run is None:
            return
        try:
            where = discard_run(run.folder)
        except MedviewError as exc:
            self.message.emit(str(exc))
            return
        self.message.emit(
            f"The run of {run.base} was moved to {where}; delete that folder "
            f"when you no longer need it."
        )
        self.refresh()

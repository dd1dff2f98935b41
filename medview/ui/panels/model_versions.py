"""The versions of one model with their headline numbers, which one runs, and the two
actions a reader needs after a fine-tune: activate a version (roll back = activate an older
one) and compare two side by side. Versions are never deleted or overwritten here; the
registry keeps them all (registry.py)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medview.ai.registry import ModelEntry, activate, scan_models
from medview.core.errors import MedviewError
from medview.ui.panels.version_compare import VersionCompareDialog

COLUMNS = ("version", "runs", "parent", "Dice", "sensitivity ≥6 mm", "FP / study")
KEYS = (("dice_mean", "mean_dice_ge_6mm", "auc"), ("sensitivity_ge_6mm", "accuracy"),
        ("false_positives_per_study",))


def _headline(entry: ModelEntry, keys: tuple[str, ...]) -> str:
    v = entry.card.validation
    value = next((v[k] for k in keys if isinstance(v.get(k), (int, float))), None)
    return "—" if value is None else f"{value:.3g}"


class ModelVersions(QtWidgets.QWidget):
    message = QtCore.Signal(str)
    activated = QtCore.Signal(str)  # the ref now running

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = ""
        self.entries: list[ModelEntry] = []
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.activate_button = QtWidgets.QPushButton(
            "Activate", toolTip="Make the selected version the one that runs (to roll back, "
                                "activate an older one)")
        self.compare_button = QtWidgets.QPushButton(
            "Compare…", toolTip="The selected two versions' validation numbers side by side")
        self.activate_button.clicked.connect(self.activate_selected)
        self.compare_button.clicked.connect(self.compare)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.activate_button)
        buttons.addWidget(self.compare_button)
        buttons.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

    def show_model(self, name: str) -> None:
        """List `name`'s versions (re-reads the cards: a run may have added one)."""
        self.name = name
        self.entries = [e for e in scan_models().models if e.card.name == name]
        self.table.setRowCount(len(self.entries))
        for row, e in enumerate(self.entries):
            texts = (e.card.version, "active" if e.active else "",
                     e.card.parent_version or "", *(_headline(e, k) for k in KEYS))
            for col, text in enumerate(texts):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def selected(self) -> list[ModelEntry]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.entries[r] for r in rows]

    def select(self, *versions: str) -> None:
        self.table.clearSelection()
        mode = QtCore.QItemSelectionModel.SelectionFlag
        for row, e in enumerate(self.entries):
            if e.card.version in versions:
                self.table.selectionModel().select(
                    self.table.model().index(row, 0), mode.Select | mode.Rows)

    def activate_selected(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            self.message.emit("Select one version to activate.")
            return
        try:
            entry = activate(chosen[0].card.name, chosen[0].card.version)
        except MedviewError as exc:
            self.message.emit(str(exc))
            return
        self.show_model(self.name)
        self.message.emit(f"{entry.ref} now runs for {entry.card.name}.")
        self.activated.emit(entry.ref)

    def compare(self) -> VersionCompareDialog | None:
        if len(self.entries) < 2:
            self.message.emit("There is only one version to compare.")
            return None
        chosen = self.selected()
        active = next(e.ref for e in self.entries if e.active)
        refs = [e.ref for e in chosen] if len(chosen) == 2 else [active, self.entries[-1].ref]
        dialog = VersionCompareDialog(self.entries, refs[0], refs[-1], self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

"""The versions of one model with their headline numbers, which one runs, and the two
actions a reader needs after a fine-tune: activate a version (roll back = activate an older
one) and compare two side by side: their cards' numbers (VersionCompareDialog) or both
versions' outputs on the open study (VersionOverlayCompare, once the main window has handed
over its viewer with set_viewer). Versions are never deleted or overwritten here; the
registry keeps them all (registry.py)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medview.ai.models.card_numbers import development, development_title, numbers
from medview.ai.models.registry import ModelEntry, activate, scan_models
from medview.ai.models.verdict import verdict
from medview.core.errors import MedviewError
from medview.ui.panels.version_compare import VersionCompareDialog, metric_name, verdict_style
from medview.ui.version_overlay_compare import VersionOverlayCompare
from medview.viewer.state import ViewerState

# "measured on" before the numbers: in a narrow dock it must not be scrolled out of view
COLUMNS = ("version", "runs", "measured on", "Dice", "sensitivity", "FP/study", "parent")
TIPS = {
    1: "The version that runs",
    6: "The version it was fine-tuned from",
    2: "The studies these numbers come from: a fine-tune's are your validation studies, "
    "a bundled version's its own held-out studies, so only versions measured on the "
    "same studies compare (Compare… pairs a fine-tune with its parent on the same "
    "studies)",
}
# each headline column shows ONE metric for every version (the first of these most versions
# have), named in its header: a column must not mix lesion Dice with voxel Dice
KEYS = (
    ("mean_dice_ge_6mm", "dice_mean", "auc"),
    ("sensitivity_ge_6mm", "accuracy"),
    ("false_positives_per_study",),
)
FIRST_HEADLINE = 3  # the column of KEYS[0]
KEYS_SHOWN = {k for keys in KEYS for k in keys}


def _has(entry: ModelEntry, key: str) -> bool:
    return isinstance(entry.card.validation.get(key), (int, float))


def headline_key(entries: list[ModelEntry], keys: tuple[str, ...]) -> str:
    """The metric a column shows: the one most versions have (ties: the first)."""
    return max(keys, key=lambda k: (sum(_has(e, k) for e in entries), -keys.index(k)))


def _headline(entry: ModelEntry, key: str) -> str:
    return f"{entry.card.validation[key]:.3g}" if _has(entry, key) else "—"


SHORT = {
    "mean_dice_ge_6mm": "lesion Dice",
    "dice_mean": "voxel Dice",
    "auc": "AUC",
    "sensitivity_ge_6mm": "sens. ≥6 mm",
    "false_positives_per_study": "FP/study",
}


def short_name(key: str) -> str:
    """A metric's name short enough for a column header in a dock (the tooltip has it
    in full)."""
    return SHORT.get(key) or metric_name(key)


def measured_on(entry: ModelEntry) -> str:
    """Which studies a version's numbers come from, in a few words."""
    v = entry.card.validation
    n = v.get("studies")
    if not isinstance(n, int):
        return "—"
    studies = f"{n} stud{'y' if n == 1 else 'ies'}"
    ft = v.get("fine_tune")
    if isinstance(ft, dict) and isinstance(ft.get("cross_validation"), dict):
        return f"{studies} of yours, cross-validated"
    if ft:
        return f"{studies} of yours"
    return f"{n} held-out demo studies" if development(v) else f"{studies} (its card)"


def measured_tip(entry: ModelEntry) -> str:
    """The 'measured on' cell's tooltip: how the numbers were measured and, labelled, the
    development numbers the card keeps apart from them."""
    v = entry.card.validation
    dev = numbers(development(v))
    parts = [str(v["measured"])] if isinstance(v.get("measured"), str) else []
    if dev:
        parts.append(
            f"{development_title(v)}: "
            + ", ".join(f"{metric_name(k)} {x:.3g}" for k, x in dev.items() if k in KEYS_SHOWN)
        )
    return "\n\n".join(parts)


class ModelVersions(QtWidgets.QWidget):
    message = QtCore.Signal(str)
    activated = QtCore.Signal(str)  # the ref now running

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = ""
        self.entries: list[ModelEntry] = []
        self.viewer: ViewerState | None = None  # the main window's, for "on this study"
        self.on_study: VersionOverlayCompare | None = None
        self._study_serial = 0
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in TIPS.items():
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.activate_button = QtWidgets.QPushButton(
            "Activate",
            toolTip="Make the selected version the one that runs (to roll back, "
            "activate an older one)",
        )
        self.compare_button = QtWidgets.QPushButton(
            "Compare…", toolTip="The selected two versions' validation numbers side by side"
        )
        self.study_button = QtWidgets.QPushButton(
            "Compare on this study",
            toolTip="Run the selected two versions on the open study "
            "and show their outputs side by side",
        )
        self.activate_button.clicked.connect(self.activate_selected)
        self.compare_button.clicked.connect(self.compare)
        self.study_button.clicked.connect(lambda: self.compare_on_study())
        self.note = QtWidgets.QLabel(wordWrap=True)
        self.message.connect(self.note.setText)
        # what the selected version's numbers say against its parent, beside Activate: the
        # reader decides, informed (issue 15)
        self.verdict = QtWidgets.QLabel(wordWrap=True)
        self.verdict.setVisible(False)
        self.table.itemSelectionChanged.connect(self._show_verdict)
        choose = QtWidgets.QHBoxLayout()
        choose.addWidget(self.activate_button, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        choose.addWidget(self.verdict, 1)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.study_button)
        buttons.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(choose)
        layout.addLayout(buttons)
        layout.addWidget(self.note)

    def show_model(self, name: str) -> None:
        """List `name`'s versions (re-reads the cards: a run may have added one)."""
        self.name = name
        self.entries = [e for e in scan_models().models if e.card.name == name]
        self.table.setRowCount(len(self.entries))
        shown = [headline_key(self.entries, keys) for keys in KEYS]
        for col, key in enumerate(shown, FIRST_HEADLINE):
            item = QtWidgets.QTableWidgetItem(short_name(key))
            item.setToolTip(
                f"{metric_name(key)} ({key}) on the studies of 'measured on'; "
                f"— where a version's card does not have it"
            )
            self.table.setHorizontalHeaderItem(col, item)
        for row, e in enumerate(self.entries):
            texts = (
                e.card.version,
                "active" if e.active else "",
                measured_on(e),
                *(_headline(e, k) for k in shown),
                e.card.parent_version or "",
            )
            for col, text in enumerate(texts):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(text))
            self.table.item(row, 2).setToolTip(measured_tip(e))
        self.table.resizeColumnsToContents()

    def _show_verdict(self) -> None:
        """The selected fine-tune's verdict against its parent; nothing for a bundled
        version, a version without a parent's numbers, or several selected."""
        chosen = self.selected()
        said = (
            verdict(chosen[0].card.validation, chosen[0].card.parent_version or "its parent")
            if len(chosen) == 1
            else None
        )
        verdict_style(self.verdict, *((said.level, said.text) if said else ("", "")))

    def selected(self) -> list[ModelEntry]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.entries[r] for r in rows]

    def select(self, *versions: str) -> None:
        self.table.clearSelection()
        mode = QtCore.QItemSelectionModel.SelectionFlag
        for row, e in enumerate(self.entries):
            if e.card.version in versions:
                self.table.selectionModel().select(
                    self.table.model().index(row, 0), mode.Select | mode.Rows
                )

    def activate_selected(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            self.message.emit("Select one version to activate.")
            return
        self._activate_ref(chosen[0].ref)

    def _activate_ref(self, ref: str) -> None:
        """Activate `ref` (a version of this model) at the reader's request."""
        entry = next((e for e in self.entries if e.ref == ref), None)
        if entry is None:
            self.message.emit(f"{ref} is not a version of {self.name}.")
            return
        try:
            entry = activate(entry.card.name, entry.card.version)
        except MedviewError as exc:
            self.message.emit(str(exc))
            return
        self.show_model(self.name)
        self.message.emit(f"{entry.ref} now runs for {entry.card.name}.")
        self.activated.emit(entry.ref)

    def set_viewer(self, state: ViewerState) -> None:
        """The viewer whose open study "Compare on this study" runs the versions on."""
        self.viewer = state

    def _pair(self) -> list[str] | None:
        """The two versions to compare: the selected two, else the active one and the
        newest."""
        if len(self.entries) < 2:
            self.message.emit("There is only one version to compare.")
            return None
        chosen = self.selected()
        active = next((e.ref for e in self.entries if e.active), self.entries[0].ref)
        return [e.ref for e in chosen] if len(chosen) == 2 else [active, self.entries[-1].ref]

    def compare(self) -> VersionCompareDialog | None:
        refs = self._pair()
        if refs is None:
            return None
        dialog = VersionCompareDialog(self.entries, refs[0], refs[-1], self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.on_study.connect(self.compare_on_study)
        dialog.activate.connect(self._activate_ref)
        dialog.show()
        return dialog

    def compare_on_study(
        self, first: str | None = None, second: str | None = None
    ) -> VersionOverlayCompare | None:
        """Both versions' outputs on the open study, in a window of their own (one at a
        time: a new comparison replaces the last one)."""
        if self.viewer is None or self.viewer.volume is None:
            self.message.emit(
                "Open a study first: the comparison runs both versions on the study on screen."
            )
            return None
        refs = [first, second] if first and second else self._pair()
        if refs is None:
            return None
        by_ref = {e.ref: e for e in self.entries}
        if refs[0] == refs[1] or not all(r in by_ref for r in refs):
            self.message.emit("Choose two different versions of this model to compare.")
            return None
        if self.on_study is not None:
            self.on_study.close()
        window = VersionOverlayCompare(self.viewer, by_ref[refs[0]], by_ref[refs[1]], self)
        window.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)  # frees its maps
        window.message.connect(self.message)
        self._study_serial += 1  # which window a late `destroyed` is about
        serial = self._study_serial
        window.destroyed.connect(lambda *_: self._forget_on_study(serial))
        window.show()
        self.on_study = window
        return window

    def _forget_on_study(self, serial: int) -> None:
        if serial == self._study_serial:
            self.on_study = None

"""Two versions of a model side by side: every validation number either card holds, the
difference, and which studies each was measured on. The conditions the numbers were
measured under (how many studies and lesions, the threshold, the smallest component kept,
the false-positive stage's threshold) are not results: they are shown apart, under
"Measured with", each marked same or different, since a "B − A" of +0 for them reads as a
result that did not change. A fine-tuned card also holds its
parent's numbers on the same validation studies (validation.fine_tune.parent_metrics): when
one version is the other's parent, those are the numbers compared, so both columns describe
the same studies; a cross-validated fine-tune's numbers come with their 95% intervals over
studies, and the verdict (ai.models.verdict: "Not better than 1.2 on your 8 studies: ...")
stands next to "Activate B", which activates only when the reader presses it."""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets

from medview.ai.models.card_numbers import seed_range
from medview.ai.models.registry import ModelEntry
from medview.ai.models.verdict import BETTER, verdict

# keys of a card's validation numbers that say how it was measured, not how well it did
CONDITIONS = (
    "studies",
    "lesions",
    "lesions_ge_6mm",
    "threshold",
    "fp_threshold",
    "min_component_voxels",
    "min_component_slices",
    "extent_threshold",
    "extent_max_mm",
)
CONDITIONS_TITLE = "Measured with (conditions, not results)"
KEY_ROLE = QtCore.Qt.ItemDataRole.UserRole  # a row's card key, for tests and tooltips


# the Dice numbers say which Dice: overlap of all voxels, or each lesion's own
NAMES = {
    "dice_mean": "Dice of all voxels (mean of labels)",
    "mean_dice_ge_6mm": "Dice per lesion ≥6 mm (mean)",
    "mean_dice_detected_ge_6mm": "Dice per found lesion ≥6 mm (mean)",
    "sensitivity_all": "sensitivity, all lesions",
}


def metric_name(key: str) -> str:
    """A card's metric key as a reader reads it: "sensitivity ≥6 mm", "Dice per lesion
    ≥6 mm (mean)"."""
    if key in NAMES:
        return NAMES[key]
    words = key.replace("_ge_6mm", " ≥6 mm").replace("_", " ")
    return " ".join("Dice" if w == "dice" else "FP" if w == "fp" else w for w in words.split(" "))


def _numbers(validation: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in validation.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def parent_of(a: ModelEntry, b: ModelEntry) -> tuple[ModelEntry, ModelEntry] | None:
    """(parent, fine-tune) when one of the two was fine-tuned from the other."""
    for parent, child in ((a, b), (b, a)):
        ft = child.card.validation.get("fine_tune") or {}
        if ft.get("parent") == parent.ref:
            return parent, child
    return None


def paired_metrics(a: ModelEntry, b: ModelEntry) -> tuple[dict, dict, str]:
    """(numbers of a, numbers of b, what they were measured on)."""
    pair = parent_of(a, b)
    if pair is not None:
        parent, child = pair
        ft = child.card.validation["fine_tune"]
        pa, ch = _numbers(ft.get("parent_metrics", {})), _numbers(child.card.validation)
        n = ft.get("val_studies", [])
        n = n if isinstance(n, int) else len(n)
        cv = ft.get("cross_validation")
        if isinstance(cv, dict):
            where = (
                f"both on all {n} stud{'y' if n == 1 else 'ies'} of {child.ref}'s "
                f"fine-tune, {cv.get('folds')}-fold cross-validated (each study scored "
                f"by a version trained without it); [low, high] = 95% interval over "
                f"studies"
            )
        else:
            where = (
                f"both on the {n} validation stud{'y' if n == 1 else 'ies'} of "
                f"{child.ref}'s fine-tune (hash {ft.get('val_hash', '?')})"
            )
        return (ch, pa, where) if parent is b else (pa, ch, where)
    seeds = a.card.validation.get("held_out_seeds")
    if seed_range(seeds) and seeds == b.card.validation.get("held_out_seeds"):
        where = f"both on the same held-out demo seeds {seed_range(seeds)} (see their cards)"
    else:
        where = "each on its own validation studies (see its card): not directly comparable"
    return _numbers(a.card.validation), _numbers(b.card.validation), where


def intervals(a: ModelEntry, b: ModelEntry) -> tuple[dict, dict]:
    """The 95% intervals ({key: [low, high]}) of a's and b's numbers, when one is the
    other's cross-validated fine-tune (else none)."""
    pair = parent_of(a, b)
    cv = pair[1].card.validation["fine_tune"].get("cross_validation") if pair else None
    if not isinstance(cv, dict):
        return {}, {}
    found = cv.get("intervals") or {}
    side = {"parent": {}, "new": {}}
    for key, both in found.items():
        for who in side:
            if isinstance(both, dict) and isinstance(both.get(who), list):
                side[who][key] = both[who]
    return (side["new"], side["parent"]) if pair[0] is b else (side["parent"], side["new"])


def pair_verdict(a: ModelEntry, b: ModelEntry) -> tuple[str, str]:
    """(level, sentence) of the fine-tune of the two against its parent; ("", "") when
    neither is the other's fine-tune."""
    pair = parent_of(a, b)
    said = verdict(pair[1].card.validation, pair[0].card.version) if pair else None
    if said is None:
        return "", ""
    return said.level, f"{pair[1].card.version}: {said.text}"


def verdict_style(label: QtWidgets.QLabel, level: str, text: str) -> None:
    """The verdict in a label: a warning sign and colour unless the version is better."""
    warn = bool(level) and level != BETTER
    label.setText(("⚠ " if warn else "") + text)
    label.setStyleSheet("color: #b35900; font-weight: bold;" if warn else "")
    label.setVisible(bool(text))


def metric_rows(
    a: ModelEntry, b: ModelEntry
) -> tuple[str, list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(what the numbers were measured on, results, conditions), each row (card key, A, B,
    B − A; for a condition "same" or "differs"): the numbers both cards hold first, then
    those only one holds."""
    na, nb, where = paired_metrics(a, b)
    ia, ib = intervals(a, b)
    keys = (
        [k for k in na if k in nb] + [k for k in na if k not in nb] + [k for k in nb if k not in na]
    )
    rows, conditions = [], []
    for key in keys:
        va, vb = na.get(key), nb.get(key)
        if key in CONDITIONS:
            same = "" if va is None or vb is None else "same" if va == vb else "differs"
            conditions.append((key, _fmt(va), _fmt(vb), same))
        else:
            diff = "" if va is None or vb is None else f"{vb - va:+.4g}"
            rows.append((key, _fmt(va, ia.get(key)), _fmt(vb, ib.get(key)), diff))
    return where, rows, conditions


def fill_table(
    table: QtWidgets.QTableWidget,
    rows: list[tuple[str, ...]],
    conditions: list[tuple[str, ...]] = (),
) -> None:
    """Rows of (key, texts…) into `table`, the key worded (metric_name) with the key itself
    as tooltip, numbers right-aligned; the conditions after a title row of their own."""
    table.clearSpans()
    table.setRowCount(len(rows) + (len(conditions) + 1 if conditions else 0))
    right = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
    lines = [*rows, *([None, *conditions] if conditions else [])]
    for row, texts in enumerate(lines):
        if texts is None:
            title = QtWidgets.QTableWidgetItem(CONDITIONS_TITLE)
            font = title.font()
            font.setBold(True)
            title.setFont(font)
            table.setItem(row, 0, title)
            table.setSpan(row, 0, 1, table.columnCount())
            continue
        for col, text in enumerate(texts):
            item = QtWidgets.QTableWidgetItem(metric_name(text) if col == 0 else text)
            if col == 0:
                item.setToolTip(text)
                item.setData(KEY_ROLE, text)
            else:
                item.setTextAlignment(right)
            table.setItem(row, col, item)


def table_value(table: QtWidgets.QTableWidget, key: str, column: int) -> str:
    """The text shown for the row of card key (or row name) `key` in `column`."""
    for row in range(table.rowCount()):
        item = table.item(row, 0)
        if item is not None and item.data(KEY_ROLE) == key:
            return table.item(row, column).text()
    return ""


class VersionCompareDialog(QtWidgets.QDialog):
    on_study = QtCore.Signal(str, str)  # (A, B): show both versions on the open study
    activate = QtCore.Signal(str)  # the ref the reader chose to activate (B)

    def __init__(
        self,
        entries: list[ModelEntry],
        first: str | None = None,
        second: str | None = None,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare model versions")
        self.entries = {e.ref: e for e in entries}
        refs = list(self.entries)
        self.a, self.b = QtWidgets.QComboBox(), QtWidgets.QComboBox()
        for combo, want in ((self.a, first or refs[0]), (self.b, second or refs[-1])):
            combo.addItems(refs)
            combo.setCurrentText(want)
            combo.currentIndexChanged.connect(self.refresh)
        self.note = QtWidgets.QLabel(wordWrap=True)
        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["validation result", "A", "B", "B − A"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            0, QtWidgets.QHeaderView.ResizeMode.Stretch
        )
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("A"))
        top.addWidget(self.a, 1)
        top.addWidget(QtWidgets.QLabel("B"))
        top.addWidget(self.b, 1)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        self.study_button = close.addButton(
            "Compare on this study", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole
        )
        self.study_button.setToolTip(
            "Run both versions on the open study and show their outputs side by side"
        )
        self.study_button.clicked.connect(
            lambda: self.on_study.emit(self.a.currentText(), self.b.currentText())
        )
        # the reader's choice, beside what the numbers say of it: nothing is activated here
        # on their behalf
        self.activate_button = QtWidgets.QPushButton(
            "Activate B",
            toolTip="Make version B the one that runs (to roll back, activate the older one)",
        )
        self.activate_button.clicked.connect(lambda: self.activate.emit(self.b.currentText()))
        self.verdict = QtWidgets.QLabel(wordWrap=True)
        choose = QtWidgets.QHBoxLayout()
        choose.addWidget(self.activate_button, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        choose.addWidget(self.verdict, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addLayout(choose)
        layout.addWidget(close)
        self.resize(560, 520)
        self.refresh()

    def refresh(self) -> None:
        a, b = self.entries[self.a.currentText()], self.entries[self.b.currentText()]
        where, rows, conditions = metric_rows(a, b)
        self.note.setText(f"A = {a.ref}, B = {b.ref}: {where}.")
        fill_table(self.table, rows, conditions)
        verdict_style(self.verdict, *pair_verdict(a, b))

    def value(self, metric: str, column: int) -> str:
        """The text shown for card key `metric` in column 1 (A), 2 (B) or 3 (B − A, or
        same/differs for a condition); for tests."""
        return table_value(self.table, metric, column)


def _fmt(value: float | None, interval: list | None = None) -> str:
    """A number, with its 95% interval when the card gives one: "0.712 [0.65, 0.77]"."""
    if value is None:
        return "—"
    if interval and len(interval) == 2 and all(isinstance(v, (int, float)) for v in interval):
        return f"{value:.3g} [{interval[0]:.3g}, {interval[1]:.3g}]"
    return f"{value:.4g}"

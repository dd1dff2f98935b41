"""Two versions of a model side by side: every validation number either card holds, the
difference, and which studies each was measured on. A fine-tuned card also holds its
parent's numbers on the same validation studies (validation.fine_tune.parent_metrics): when
one version is the other's parent, those are the numbers compared, so both columns describe
the same studies."""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets

from medview.ai.registry import ModelEntry


def _numbers(validation: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in validation.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def paired_metrics(a: ModelEntry, b: ModelEntry) -> tuple[dict, dict, str]:
    """(numbers of a, numbers of b, what they were measured on)."""
    for parent, child, flip in ((a, b, False), (b, a, True)):
        ft = child.card.validation.get("fine_tune") or {}
        if ft.get("parent") == parent.ref:
            pa, ch = _numbers(ft.get("parent_metrics", {})), _numbers(child.card.validation)
            where = (f"both on the {len(ft.get('val_studies', []))} validation studies of "
                     f"{child.ref}'s fine-tune (hash {ft.get('val_hash', '?')})")
            return (ch, pa, where) if flip else (pa, ch, where)
    return (_numbers(a.card.validation), _numbers(b.card.validation),
            "each on its own validation studies (see its card): not directly comparable")


def metric_rows(a: ModelEntry, b: ModelEntry) -> tuple[str, list[tuple[str, ...]]]:
    """(what the numbers were measured on, rows of (metric, A, B, B − A) as shown): the
    numbers both cards hold first, then those only one holds."""
    na, nb, where = paired_metrics(a, b)
    keys = [k for k in na if k in nb] + [k for k in na if k not in nb] + \
        [k for k in nb if k not in na]
    rows = []
    for key in keys:
        va, vb = na.get(key), nb.get(key)
        diff = "" if va is None or vb is None else f"{vb - va:+.4g}"
        rows.append((key, _fmt(va), _fmt(vb), diff))
    return where, rows


def fill_table(table: QtWidgets.QTableWidget, rows: list[tuple[str, ...]]) -> None:
    """Rows of texts into `table`, numbers (every column but the first) right-aligned."""
    table.setRowCount(len(rows))
    for row, texts in enumerate(rows):
        for col, text in enumerate(texts):
            item = QtWidgets.QTableWidgetItem(text)
            if col:
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight |
                                      QtCore.Qt.AlignmentFlag.AlignVCenter)
            table.setItem(row, col, item)


class VersionCompareDialog(QtWidgets.QDialog):
    on_study = QtCore.Signal(str, str)  # (A, B): show both versions on the open study

    def __init__(self, entries: list[ModelEntry], first: str | None = None,
                 second: str | None = None, parent: QtWidgets.QWidget | None = None) -> None:
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
        self.table.setHorizontalHeaderLabels(["metric", "A", "B", "B − A"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("A"))
        top.addWidget(self.a, 1)
        top.addWidget(QtWidgets.QLabel("B"))
        top.addWidget(self.b, 1)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        self.study_button = close.addButton(
            "Compare on this study", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.study_button.setToolTip("Run both versions on the open study and show their "
                                     "outputs side by side")
        self.study_button.clicked.connect(
            lambda: self.on_study.emit(self.a.currentText(), self.b.currentText()))
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addWidget(close)
        self.resize(560, 520)
        self.refresh()

    def refresh(self) -> None:
        a, b = self.entries[self.a.currentText()], self.entries[self.b.currentText()]
        where, rows = metric_rows(a, b)
        self.note.setText(f"A = {a.ref}, B = {b.ref}: {where}.")
        fill_table(self.table, rows)

    def value(self, metric: str, column: int) -> str:
        """The text shown for `metric` in column 1 (A), 2 (B) or 3 (B − A); for tests."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == metric:
                return self.table.item(row, column).text()
        return ""


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"

"""FindingsTable: the AI findings of the open series as a sortable list to click through.

One row per connected finding: label (with its colour), volume, longest axial diameter,
mean HU, peak probability, TTA uncertainty (when the model ran with it), slice range, and
the reader's decision, which also tints the row (green accepted, red rejected). Clicking a
row, or moving to it with the arrow keys, emits `activated` with its finding id; the panel
moves the views there. Accept / Reject / Undecide act on the selected rows, from the buttons
under the table or its context menu — no single-letter keys, since R already resets a view.

Sorting uses the numbers, not the text shown (a QSortFilterProxyModel on SORT_ROLE), so
10.5 mL sorts after 9.8 mL."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.findings import Finding
from medview.viewer.finding_store import same_finding

COLUMNS = (
    "#",
    "Label",
    "Decision",
    "Volume mL",
    "Diam. mm",
    "Mean HU",
    "Peak p",
    "Uncert.",
    "Slices",
)
TIPS = (
    "Finding number at this threshold",
    "What the model calls it",
    "Your decision",
    "Volume in millilitres",
    "Longest diameter in the axial plane, mm",
    "Mean CT number over the finding, HU",
    "Highest probability inside the finding",
    "Mean spread of the probability under test-time flips (0 = they agree; 0.5 = most)",
    "First and last image (as numbered in the views)",
)
ID, LABEL, DECISION, VOLUME, DIAMETER, HU, PEAK, UNCERTAINTY, SLICES = range(len(COLUMNS))
SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
ID_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2
DECISION_TEXT = {"pending": "–", "accepted": "✓ accepted", "rejected": "✗ rejected"}
DECISION_TINT = {"accepted": QtGui.QColor(46, 110, 62), "rejected": QtGui.QColor(122, 46, 46)}
Role = QtCore.Qt.ItemDataRole
RIGHT = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter


class _Model(QtCore.QAbstractTableModel):
    def __init__(self, parent: QtCore.QObject) -> None:
        super().__init__(parent)
        self.findings: list[Finding] = []
        self.colours: dict[int, QtGui.QColor] = {}

    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.findings)

    def columnCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Role.DisplayRole):
        if orientation == QtCore.Qt.Orientation.Horizontal:
            if role == Role.DisplayRole:
                return COLUMNS[section]
            if role == Role.ToolTipRole:
                return TIPS[section]
        return None

    def data(self, index: QtCore.QModelIndex, role=Role.DisplayRole):
        f = self.findings[index.row()]
        col = index.column()
        if role == Role.DisplayRole:
            return _text(f, col)
        if role == SORT_ROLE:
            return _sort_key(f, col)
        if role == ID_ROLE:
            return f.id
        if role == Role.BackgroundRole:
            return DECISION_TINT.get(f.decision)
        if role == Role.DecorationRole and col == LABEL:
            return self.colours.get(f.label_value)
        if role == Role.TextAlignmentRole and col not in (LABEL, DECISION):
            return RIGHT
        return None

    def set_findings(self, findings: list[Finding]) -> None:
        self.beginResetModel()
        self.findings = list(findings)
        self.endResetModel()

    def update_finding(self, finding: Finding) -> None:
        for row, f in enumerate(self.findings):
            if f.id == finding.id:
                self.findings[row] = finding
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))


def _text(f: Finding, col: int) -> str:
    if col == UNCERTAINTY:
        return "" if f.uncertainty is None else f"{f.uncertainty:.3f}"
    return {
        ID: str(f.id),
        LABEL: f.label_name,
        VOLUME: f"{f.volume_ml:.2f}" if f.volume_ml >= 0.1 else f"{f.volume_ml:.3f}",
        DIAMETER: f"{f.longest_axial_diameter_mm:.1f}",
        HU: f"{f.mean_hu:.0f}",
        PEAK: f"{f.peak_probability:.2f}",
        SLICES: f"{f.slice_range[0] + 1}–{f.slice_range[1] + 1}",
        DECISION: DECISION_TEXT[f.decision],
    }[col]


def _sort_key(f: Finding, col: int) -> object:
    return {
        ID: f.id,
        LABEL: f.label_name,
        VOLUME: f.volume_ml,
        DIAMETER: f.longest_axial_diameter_mm,
        HU: f.mean_hu,
        PEAK: f.peak_probability,
        UNCERTAINTY: -1.0 if f.uncertainty is None else f.uncertainty,
        SLICES: f.slice_range[0] * 100000 + f.slice_range[1],
        DECISION: ("accepted", "pending", "rejected").index(f.decision),
    }[col]


class FindingsTable(QtWidgets.QWidget):
    activated = QtCore.Signal(int)  # finding id: go there
    decided = QtCore.Signal(object, str)  # finding ids (list[int]), decision
    to_labels = QtCore.Signal(object)  # finding ids (list[int]) to accept into the labels

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._syncing = False
        self.model = _Model(self)
        self.proxy = QtCore.QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = QtWidgets.QTableView(minimumHeight=150)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(ID, QtCore.Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 6)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.clicked.connect(self._on_index)
        self.view.selectionModel().currentRowChanged.connect(lambda now, _: self._on_index(now))
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        row = QtWidgets.QHBoxLayout()
        for decision, text, tip in (
            ("accepted", "Accept", "Accept the selected finding(s): kept with the study"),
            ("rejected", "Reject", "Reject the selected finding(s) as not a lesion"),
            ("pending", "Undecide", "Take back the decision on the selected finding(s)"),
        ):
            button = QtWidgets.QPushButton(text, toolTip=tip)
            button.clicked.connect(lambda _=False, d=decision: self.decide_selected(d))
            row.addWidget(button)
            self.buttons[decision] = button
        # accepted into the label map as an editable segment (the Labels panel)
        self.label_buttons = {
            "selected": QtWidgets.QPushButton(
                "Accept into labels",
                toolTip=(
                    "Accept the selected finding(s) and copy them into the label map as an "
                    "editable segment, marked 'not reviewed' until you edit or confirm it"
                ),
            ),
            "all": QtWidgets.QPushButton(
                "Accept all into labels",
                toolTip=("Accept every finding not rejected and copy them into the label map"),
            ),
        }
        self.label_buttons["selected"].clicked.connect(
            lambda: self.to_labels.emit(self.selected_ids())
        )
        self.label_buttons["all"].clicked.connect(
            lambda: self.to_labels.emit(
                [f.id for f in self.model.findings if f.decision != "rejected"]
            )
        )
        labels_row = QtWidgets.QHBoxLayout()
        for button in self.label_buttons.values():
            labels_row.addWidget(button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        layout.addLayout(labels_row)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        self._update_buttons()

    # -- model -> widget
    def set_findings(
        self, findings: list[Finding], colours: dict[int, tuple[int, int, int]], tta: bool
    ) -> None:
        """Show these findings. Selected findings stay selected at a new threshold (ids
        are renumbered then; the same lesion is found by place, as decisions are)."""
        kept = [f for f in self.model.findings if f.id in set(self.selected_ids())]
        self._syncing = True
        try:
            self.model.colours = {v: QtGui.QColor(*c) for v, c in colours.items()}
            self.model.set_findings(findings)
            self.view.setColumnHidden(UNCERTAINTY, not tta)
            # once per new list, not ResizeToContents: that measures every row on every
            # change, slow with hundreds of findings
            self.view.resizeColumnsToContents()
            for f in findings:
                if any(same_finding(f, k) for k in kept):
                    self.view.selectionModel().select(
                        self.proxy.index(self.proxy_row(f.id), 0),
                        QtCore.QItemSelectionModel.SelectionFlag.Select
                        | QtCore.QItemSelectionModel.SelectionFlag.Rows,
                    )
        finally:
            self._syncing = False
        self._update_buttons()

    def update_finding(self, finding: Finding) -> None:
        self.model.update_finding(finding)
        self._update_buttons()

    def proxy_row(self, finding_id: int) -> int:
        """The row (as sorted on screen) showing a finding, -1 when none does."""
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, 0).data(ID_ROLE) == finding_id:
                return row
        return -1

    def selected_ids(self) -> list[int]:
        rows = self.view.selectionModel().selectedRows()
        return [int(ix.data(ID_ROLE)) for ix in sorted(rows, key=lambda ix: ix.row())]

    # -- widget -> panel
    def _on_index(self, index: QtCore.QModelIndex) -> None:
        if not self._syncing and index.isValid():
            self.activated.emit(int(index.data(ID_ROLE)))

    def decide_selected(self, decision: str) -> None:
        ids = self.selected_ids()
        if ids:
            self.decided.emit(ids, decision)

    def _update_buttons(self) -> None:
        chosen = [f for f in self.model.findings if f.id in set(self.selected_ids())]
        for decision, button in self.buttons.items():
            button.setEnabled(any(f.decision != decision for f in chosen))
        self.label_buttons["selected"].setEnabled(any(f.decision != "rejected" for f in chosen))
        self.label_buttons["all"].setEnabled(
            any(f.decision != "rejected" for f in self.model.findings)
        )

    def _context_menu(self, pos: QtCore.QPoint) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        if not self.view.selectionModel().isRowSelected(index.row(), QtCore.QModelIndex()):
            self.view.selectRow(index.row())
        menu = QtWidgets.QMenu(self)
        fid = int(index.data(ID_ROLE))
        menu.addAction("Go to finding", lambda: self.activated.emit(fid))
        menu.addSeparator()
        for decision, button in self.buttons.items():
            action = menu.addAction(button.text(), lambda d=decision: self.decide_selected(d))
            action.setEnabled(button.isEnabled())
        menu.popup(self.view.viewport().mapToGlobal(pos))
        self.menu = menu  # kept for tests and until it closes

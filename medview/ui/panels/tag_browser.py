"""TagBrowser: the DICOM tags of the image under the reader's eyes, searchable by tag
number ("(0010,0010)", "0010,0010") or keyword ("PatientName", "slice").

It follows the slice: the main window passes the file of the current slice whenever the
cursor moves, and the header is read at most every 100 ms (a throttle, so scrolling through
a series updates the table live without a header read per wheel step), only while the panel
is visible, and never again for the file already shown (the frames of a multi-frame file
share one header). A header read is a few milliseconds with the pixels skipped
(io/dicom_tags), so it runs on the GUI thread."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.errors import MedviewError
from medview.core.series import SourceRef
from medview.io.dicom.tags import TagRow, filter_rows, read_tags

THROTTLE_MS = 100
HEADERS = ("Tag", "Keyword", "VR", "Value")


class _TagModel(QtCore.QAbstractTableModel):
    """Rows of TagRow; a model, not a widget per cell: enhanced multi-frame headers have
    tens of thousands of elements."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[TagRow] = []
        self.mono = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)

    def set_rows(self, rows: list[TagRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QtCore.QModelIndex()) -> int:  # noqa: B008
        return len(HEADERS)

    def data(
        self,
        index: QtCore.QModelIndex | QtCore.QPersistentModelIndex,
        role: int = QtCore.Qt.ItemDataRole.DisplayRole,
    ):
        row = self.rows[index.row()]
        if role in (QtCore.Qt.ItemDataRole.DisplayRole, QtCore.Qt.ItemDataRole.ToolTipRole):
            return (row.tag, row.label, row.vr, row.value)[index.column()]
        if role == QtCore.Qt.ItemDataRole.FontRole and index.column() in (0, 2):
            return self.mono
        return None

    def headerData(self, section: int, orientation, role=QtCore.Qt.ItemDataRole.DisplayRole):
        if (
            orientation == QtCore.Qt.Orientation.Horizontal
            and role == QtCore.Qt.ItemDataRole.DisplayRole
        ):
            return HEADERS[section]
        return None


class TagBrowser(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText("Search: tag (0010,0010) or keyword (slice, PatientName)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filter)
        self.model = _TagModel()
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        mono = QtGui.QFontMetrics(self.model.mono)
        for col, width in enumerate(
            (mono.horizontalAdvance("(0000,0000)") + 14, 140, mono.horizontalAdvance("UN") + 14)
        ):
            self.table.setColumnWidth(col, width)  # the value gets the rest
        self.status = QtWidgets.QLabel("No image open.")
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.table)
        layout.addWidget(self.status)
        self._all: list[TagRow] = []
        self._pending: SourceRef | None = None
        self._note = "No image open."
        self._shown: SourceRef | None = None
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._refresh)
        self.reads = 0  # header reads done, for tests of the throttle

    @property
    def rows(self) -> list[TagRow]:
        """The rows shown (after the search filter)."""
        return self.model.rows

    def set_source(self, ref: SourceRef | None, note: str = "") -> None:
        """Show the tags of `ref` (or `note` when there is no file, e.g. a NIfTI volume or a
        blank slice filling a gap) — within THROTTLE_MS."""
        self._pending, self._note = ref, note
        if not self._timer.isActive():
            self._timer.start(THROTTLE_MS)

    def showEvent(self, ev: QtGui.QShowEvent) -> None:
        super().showEvent(ev)
        if not self._timer.isActive():
            self._timer.start(0)

    def _refresh(self) -> None:
        if not self.isVisible():
            return  # read when shown
        ref = self._pending
        if ref is None:
            self._shown = None
            self._all = []
            self.status.setText(self._note or "No DICOM file for this image.")
            self._apply_filter()
            return
        if ref == self._shown:
            return
        self._shown = ref
        self.reads += 1
        try:
            self._all = read_tags(ref)
            where = ref.member or QtCore.QFileInfo(ref.path).fileName()
            self.status.setText(f"{where}: {len(self._all)} elements")
            self.status.setToolTip(str(ref))
        except MedviewError as exc:
            self._all = []
            self.status.setText(str(exc))
        self._apply_filter()

    def _apply_filter(self) -> None:
        self.model.set_rows(filter_rows(self._all, self.search.text()))

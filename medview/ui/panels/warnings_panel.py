"""WarningsPanel: what the scan and the load found wrong, shown to the reader, not hidden.

Slice gaps, unequal spacing, gantry tilt, files that could not be read and failed loads
change how far a study can be trusted (a measurement across a gap, a missing slice); the
issue asks for them to be visible. One line per message with the series it belongs to; the
full text is the tooltip, and the panel's title carries the count."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

_ICONS = {
    "warning": QtWidgets.QStyle.StandardPixmap.SP_MessageBoxWarning,
    "error": QtWidgets.QStyle.StandardPixmap.SP_MessageBoxCritical,
    "info": QtWidgets.QStyle.StandardPixmap.SP_MessageBoxInformation,
}


class WarningsPanel(QtWidgets.QWidget):
    count_changed = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QtWidgets.QListWidget()
        self.list.setWordWrap(True)
        self.list.setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)
        self.list.setUniformItemSizes(False)
        self.list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        copy = QtWidgets.QPushButton("Copy")
        copy.setToolTip("Copy the selected messages (all if none is selected)")
        copy.clicked.connect(self.copy_to_clipboard)
        row = QtWidgets.QHBoxLayout()
        self.summary = QtWidgets.QLabel("No warnings.")
        row.addWidget(self.summary, 1)
        row.addWidget(copy)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.list)

    def clear(self) -> None:
        self.list.clear()
        self._changed()

    def add(self, message: str, kind: str = "warning", where: str = "") -> None:
        """One message; `where` (a series or file) is put in front of it."""
        text = f"{where}: {message}" if where else message
        item = QtWidgets.QListWidgetItem(self.style().standardIcon(_ICONS[kind]), text)
        item.setToolTip(text)
        item.setData(QtCore.Qt.ItemDataRole.UserRole, kind)
        self.list.addItem(item)
        self._changed()

    def messages(self, kind: str | None = None) -> list[str]:
        items = (self.list.item(i) for i in range(self.list.count()))
        return [
            it.text()
            for it in items
            if kind is None or it.data(QtCore.Qt.ItemDataRole.UserRole) == kind
        ]

    def copy_to_clipboard(self) -> None:
        chosen = self.list.selectedItems() or [self.list.item(i) for i in range(self.list.count())]
        QtWidgets.QApplication.clipboard().setText("\n".join(it.text() for it in chosen))

    def _changed(self) -> None:
        n = self.list.count()
        self.summary.setText("No warnings." if n == 0 else f"{n} message(s)")
        self.count_changed.emit(n)

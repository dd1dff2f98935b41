"""MeasurementsPanel: the measurement tools and the list of the open series' measurements.

Tool buttons (W/L, Ruler, Angle, Ellipse, Rectangle) set the left-drag tool of every view.
The list shows each measurement's name, values and slice; clicking one selects it and
moves its plane to its slice; Del (or the Delete button) deletes it; double-click, F2 or
Rename edits its label (an empty label brings back the automatic name). The panel owns the
MeasurementStore (kept per series across sessions) and one MeasureTools per view, so a
main window only builds the panel and shows `message` in its status bar."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medview.io import series_files
from medview.ui.measure_tools import MeasureTools
from medview.ui.slice_view import SliceView
from medview.viewer import measurement_store as ms
from medview.viewer.measurement_store import MeasurementStore
from medview.viewer.measurements import ANGLE, ELLIPSE, RECTANGLE, RULER, value_lines
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState

WL = "wl"
TOOLS = (
    (WL, "W/L", "Left-drag sets window and level (right = wider, down = darker)"),
    (RULER, "Ruler", "Drag from one end to the other: distance in mm"),
    (ANGLE, "Angle", "Drag the first arm to the vertex, then click where the second ends"),
    (ELLIPSE, "Ellipse", "Drag across the ellipse's box: mean, SD, min, max and area"),
    (RECTANGLE, "Rectangle", "Drag from corner to corner: mean, SD, min, max and area"),
)
NAME, VALUE, WHERE = range(3)
SHORT = {Plane.AXIAL: "Ax", Plane.CORONAL: "Cor", Plane.SAGITTAL: "Sag"}
ID_ROLE = QtCore.Qt.ItemDataRole.UserRole
TOP_LEFT = QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft
MESSAGE_STYLE = "color: #e0a030;"
BUTTON_STYLE = "QToolButton:checked { background: #3d6fa8; color: white; }"


class MeasurementsPanel(QtWidgets.QWidget):
    message = QtCore.Signal(str)  # one sentence for the reader (a file that could not load)

    def __init__(
        self, state: ViewerState, views: list[SliceView], parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.store = MeasurementStore(state, series_files.measurements_file)
        self.tools: list[MeasureTools] = []
        self.tool = WL
        self.buttons: dict[str, QtWidgets.QToolButton] = {}
        bar = QtWidgets.QHBoxLayout()
        bar.setSpacing(2)
        group = QtWidgets.QButtonGroup(self)
        for name, text, tip in TOOLS:
            button = QtWidgets.QToolButton(text=text, checkable=True, toolTip=tip)
            button.clicked.connect(lambda _=False, n=name: self.set_tool(n))
            group.addButton(button)
            bar.addWidget(button)
            self.buttons[name] = button
        bar.addStretch(1)
        self.setStyleSheet(BUTTON_STYLE)
        self.buttons[WL].setChecked(True)

        self.list = QtWidgets.QTreeWidget(rootIsDecorated=False, alternatingRowColors=True)
        self.list.setHeaderLabels(["Measurement", "Value", "Image"])
        self.list.setEditTriggers(
            QtWidgets.QAbstractItemView.EditTrigger.DoubleClicked
            | QtWidgets.QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.list.header().setStretchLastSection(False)
        self.list.header().setSectionResizeMode(VALUE, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.list.itemClicked.connect(lambda item, _col: self._activate(item))
        self.list.currentItemChanged.connect(lambda item, _old: self._activate(item))
        self.list.itemChanged.connect(self._renamed)
        self.list.installEventFilter(self)
        self.rename_button = QtWidgets.QPushButton("Rename")
        self.rename_button.clicked.connect(self._start_rename)
        self.delete_button = QtWidgets.QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        self.message_label = QtWidgets.QLabel(wordWrap=True, visible=False)
        self.message_label.setStyleSheet(MESSAGE_STYLE)

        actions = QtWidgets.QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.rename_button)
        actions.addWidget(self.delete_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.list, 1)
        layout.addLayout(actions)
        layout.addWidget(self.message_label)

        for view in views:
            self.add_view(view)
        self.store.subscribe(self._on_store)
        self._rebuild()
        if self.store.message:
            self._show_message(self.store.message)

    def add_view(self, view: SliceView) -> None:
        """A view made after the panel (a layout change) gets the tools and drawings too."""
        tools = MeasureTools(view, self.store)
        tools.set_tool(self.tool)
        self.tools.append(tools)
        view.destroyed.connect(lambda _=None, t=tools: self._forget(t))

    def _forget(self, tools: MeasureTools) -> None:
        if tools in self.tools:
            self.tools.remove(tools)

    def set_tool(self, name: str) -> None:
        """The left-drag tool of every view: "wl" or a measurement kind."""
        self.tool = name
        self.buttons[name].setChecked(True)
        for tools in self.tools:
            tools.set_tool(name)

    def delete_selected(self) -> None:
        if self.store.selected:
            self.store.remove(self.store.selected)

    # -- model -> widgets
    def _on_store(self, event: str, mid: str) -> None:
        if event == ms.RESET:
            self._rebuild()
            self._show_message("")
        elif event == ms.ADDED:
            self._add_row(mid)
        elif event == ms.CHANGED and (item := self._row(mid)) is not None:
            self._fill(item, mid)
        elif event == ms.REMOVED and (item := self._row(mid)) is not None:
            self.list.takeTopLevelItem(self.list.indexOfTopLevelItem(item))
        elif event == ms.SELECTED:
            self._select_row(mid)
        elif event == ms.MESSAGE:
            self._show_message(self.store.message)
        self._update_buttons()

    def _rebuild(self) -> None:
        self.list.clear()
        for mid in self.store.measurements:
            self._add_row(mid)
        self._update_buttons()

    def _add_row(self, mid: str) -> None:
        item = QtWidgets.QTreeWidgetItem()
        item.setData(NAME, ID_ROLE, mid)
        item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsEditable)
        for col in (NAME, VALUE, WHERE):
            item.setTextAlignment(col, TOP_LEFT)
        self._fill(item, mid)
        with QtCore.QSignalBlocker(self.list):
            self.list.addTopLevelItem(item)
        for col in (NAME, WHERE):
            self.list.resizeColumnToContents(col)

    def _fill(self, item: QtWidgets.QTreeWidgetItem, mid: str) -> None:
        m = self.store.measurements[mid]
        n = self.state.maps[m.plane].n_slices
        with QtCore.QSignalBlocker(self.list):
            item.setText(NAME, m.name)
            item.setText(VALUE, "\n".join(value_lines(m, self.store.values(mid))))
            item.setText(WHERE, f"{SHORT[m.plane]} {m.slice_index + 1}")
            item.setToolTip(WHERE, f"{m.plane.value}, image {m.slice_index + 1} of {n}")
            item.setToolTip(VALUE, item.text(VALUE))

    def _row(self, mid: str) -> QtWidgets.QTreeWidgetItem | None:
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            if item.data(NAME, ID_ROLE) == mid:
                return item
        return None

    def _select_row(self, mid: str) -> None:
        with QtCore.QSignalBlocker(self.list):
            item = self._row(mid)
            if item is None:
                self.list.clearSelection()
            self.list.setCurrentItem(item)

    def _update_buttons(self) -> None:
        has = bool(self.store.selected)
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has)

    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(bool(text))
        if text:
            self.message.emit(text)

    # -- widgets -> model
    def _activate(self, item: QtWidgets.QTreeWidgetItem | None) -> None:
        """Select the measurement and bring its slice into its plane's views."""
        if item is None:
            return
        m = self.store.measurements.get(item.data(NAME, ID_ROLE))
        if m is None:
            return
        self.store.select(m.id)
        self.state.set_slice(m.plane, m.slice_index)

    def _renamed(self, item: QtWidgets.QTreeWidgetItem, column: int) -> None:
        m = self.store.measurements.get(item.data(NAME, ID_ROLE))
        if column == NAME and m is not None and item.text(NAME) != m.name:
            self.store.rename(m.id, item.text(NAME))
            self._fill(item, m.id)  # an empty label shows the automatic name again

    def _start_rename(self) -> None:
        item = self._row(self.store.selected)
        if item is not None:
            self.list.editItem(item, NAME)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:
        if (
            obj is self.list
            and ev.type() == QtCore.QEvent.Type.KeyPress
            and ev.key() in (QtCore.Qt.Key.Key_Delete, QtCore.Qt.Key.Key_Backspace)
            and self.list.state() != QtWidgets.QAbstractItemView.State.EditingState
        ):
            self.delete_selected()
            return True
        return False

"""SegmentTable: the segments of the open series' label map, one row each, edited in place.

Columns, as 3D Slicer's segment list has them: colour (a click opens a colour chooser),
name (double-click or F2), the coded concept (a picker over core.labels.COMMON_CODES, type
with its category in the tooltip; a code read from an imported file stays as it came),
shown and locked (an eye and a padlock: a click toggles), the volume in mL (voxels in the
tooltip), and for a segment taken from the AI an amber Confirm button until a person edits
or confirms it — AI output is never silently a human label. The selected row is the segment
the tools paint; the panel's line under the table spells it out (model, review, voxels).

The table only shows and asks: every change is a signal (`edited`, `colour_clicked`,
`confirm_clicked`, `chosen`) that the panel turns into one editor call, and the editor's
events come back through `set_segments` / `set_counts`. Sizes are the one column that moves
while painting, so `set_counts` touches only that column. It fits a 340-pixel dock."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.labels import COMMON_CODES, Code, Segment

COLUMNS = ("", "Name", "Code", "", "", "mL", "AI")
COLOUR, NAME, CODE, SHOWN, LOCKED, SIZE, REVIEW = range(len(COLUMNS))
TIPS = (
    "Colour: click to change",
    "Name: double-click to rename",
    "What it is (SNOMED CT code, as DICOM SEG writes it)",
    "Shown in the views: click to hide or show",
    "Locked: no tool changes its voxels; click to lock or unlock",
    "Volume in millilitres (the voxel count in the tooltip)",
    "Segments taken from an AI model stay 'not reviewed' until you edit or confirm them",
)
VALUE_ROLE = QtCore.Qt.ItemDataRole.UserRole
AMBER = "#f0b040"
ICON_PX = 16
Flag = QtCore.Qt.ItemFlag


def swatch(colour: tuple[int, int, int], size: int = ICON_PX - 2) -> QtGui.QIcon:
    pix = QtGui.QPixmap(size, size)
    pix.fill(QtGui.QColor(*colour))
    painter = QtGui.QPainter(pix)
    painter.setPen(QtGui.QColor(0, 0, 0, 160))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return QtGui.QIcon(pix)


def _glyph(draw, on: bool) -> QtGui.QIcon:
    """A small line icon, bright when on and dim when off (drawn: no icon font needed)."""
    pix = QtGui.QPixmap(ICON_PX, ICON_PX)
    pix.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(pix)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    palette = QtWidgets.QApplication.palette()  # bright on a dark theme, dark on a light one
    colour = (
        palette.color(QtGui.QPalette.ColorRole.Text)
        if on
        else palette.color(QtGui.QPalette.ColorGroup.Disabled, QtGui.QPalette.ColorRole.Text)
    )
    pen = QtGui.QPen(colour, 1.4)
    painter.setPen(pen)
    draw(painter, on)
    painter.end()
    return QtGui.QIcon(pix)


def _eye(p: QtGui.QPainter, on: bool) -> None:
    path = QtGui.QPainterPath()
    path.moveTo(1.5, 8)
    path.quadTo(8, 1, 14.5, 8)
    path.quadTo(8, 15, 1.5, 8)
    p.drawPath(path)
    if on:
        p.setBrush(p.pen().color())
    p.drawEllipse(QtCore.QPointF(8, 8), 2.2, 2.2)
    if not on:
        p.drawLine(3, 13, 13, 3)


def _lock(p: QtGui.QPainter, on: bool) -> None:
    """A padlock: filled and shut when on, hollow with the shackle open when off."""
    if on:
        p.setBrush(p.pen().color())
    p.drawRect(QtCore.QRectF(3.5, 7.5, 9, 6.5))
    p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
    shift = 0 if on else 3  # the open shackle swings to the right
    p.drawArc(QtCore.QRectF(5 + shift, 2, 6, 9), 0, 180 * 16)
    if on:
        p.drawLine(QtCore.QPointF(5, 6.5), QtCore.QPointF(5, 7.5))
    p.drawLine(QtCore.QPointF(11 + shift, 6.5), QtCore.QPointF(11 + shift, 7.5))


def ml_text(voxels: int, voxel_ml: float) -> str:
    ml = voxels * voxel_ml
    return f"{ml:.2f}" if ml >= 0.1 or not voxels else f"{ml:.3f}"


class SegmentTable(QtWidgets.QTableWidget):
    edited = QtCore.Signal(int, object)  # segment value, {field: new value} for update_segment
    colour_clicked = QtCore.Signal(int)
    confirm_clicked = QtCore.Signal(int)
    chosen = QtCore.Signal(int)  # the segment to paint with (0: none selected)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self._syncing = False
        self.values: list[int] = []  # segment value of each row
        self.segments: dict[int, Segment] = {}
        self._shown: tuple | None = None  # set_segments' arguments, to redraw on a new theme
        self.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(TIPS):
            self.horizontalHeaderItem(col).setToolTip(tip)
        self.horizontalHeaderItem(SHOWN).setIcon(_glyph(_eye, True))
        self.horizontalHeaderItem(LOCKED).setIcon(_glyph(_lock, True))
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 12)
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(
            QtWidgets.QAbstractItemView.EditTrigger.DoubleClicked
            | QtWidgets.QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setIconSize(QtCore.QSize(ICON_PX, ICON_PX))
        header = self.horizontalHeader()
        header.setMinimumSectionSize(24)
        header.setSectionResizeMode(NAME, QtWidgets.QHeaderView.ResizeMode.Stretch)
        for col in (SIZE, REVIEW):
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        for col, width in ((COLOUR, 22), (CODE, 66), (SHOWN, 24), (LOCKED, 24)):
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.Fixed)
            self.setColumnWidth(col, width)
        self.setMinimumHeight(110)
        self.itemChanged.connect(self._on_item_changed)
        self.cellClicked.connect(self._on_cell_clicked)
        self.itemSelectionChanged.connect(self._on_selection)

    # -- model -> widget
    def set_segments(
        self, segments: list[Segment], counts: dict[int, int], voxel_ml: float, active: int
    ) -> None:
        """Show these segments (in value order), `active` selected."""
        self._shown = (segments, dict(counts), voxel_ml)
        self._syncing = True
        try:
            self.clearContents()
            self.values = [s.value for s in segments]
            self.segments = {s.value: s for s in segments}
            self.setRowCount(len(segments))
            for row, seg in enumerate(segments):
                self._fill_row(row, seg, counts.get(seg.value, 0), voxel_ml)
            self.select_value(active)
        finally:
            self._syncing = False

    def changeEvent(self, ev: QtCore.QEvent) -> None:
        """A new theme: the icons are drawn again in its colours."""
        super().changeEvent(ev)
        if ev.type() == QtCore.QEvent.Type.PaletteChange and self._shown is not None:
            self.horizontalHeaderItem(SHOWN).setIcon(_glyph(_eye, True))
            self.horizontalHeaderItem(LOCKED).setIcon(_glyph(_lock, True))
            segments, counts, voxel_ml = self._shown
            self.set_segments(segments, counts, voxel_ml, self.current_value())

    def set_counts(self, counts: dict[int, int], voxel_ml: float) -> None:
        if self._shown is not None:
            self._shown = (self._shown[0], dict(counts), voxel_ml)
        for row, value in enumerate(self.values):
            item = self.item(row, SIZE)
            if item is not None:
                n = counts.get(value, 0)
                item.setText(ml_text(n, voxel_ml))
                item.setToolTip(f"{n:,} voxels, {n * voxel_ml:.3f} mL")

    def select_value(self, value: int) -> None:
        if value in self.values:
            self.selectRow(self.values.index(value))
        else:
            self.clearSelection()

    def current_value(self) -> int:
        rows = self.selectionModel().selectedRows()
        return self.values[rows[0].row()] if rows else 0

    def _fill_row(self, row: int, seg: Segment, voxels: int, voxel_ml: float) -> None:
        colour = self._cell(swatch(seg.colour), f"RGB {seg.colour}: click to change")
        name = QtWidgets.QTableWidgetItem(seg.name)
        name.setFlags(Flag.ItemIsEnabled | Flag.ItemIsSelectable | Flag.ItemIsEditable)
        name.setToolTip(seg.name + (f" — from AI {seg.made_by}" if seg.made_by else ""))
        shown = self._cell(
            _glyph(_eye, seg.visible),
            "Shown: click to hide" if seg.visible else "Hidden: click to show",
        )
        locked = self._cell(
            _glyph(_lock, seg.locked),
            "Locked: tools leave it alone; click to unlock"
            if seg.locked
            else "Unlocked: click to lock",
        )
        size = self._cell(None, "")
        size.setTextAlignment(
            QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        )
        review = self._cell(None, "")
        for col, item in (
            (COLOUR, colour),
            (NAME, name),
            (SHOWN, shown),
            (LOCKED, locked),
            (SIZE, size),
            (REVIEW, review),
        ):
            item.setData(VALUE_ROLE, seg.value)
            self.setItem(row, col, item)
        size.setText(ml_text(voxels, voxel_ml))
        size.setToolTip(f"{voxels:,} voxels, {voxels * voxel_ml:.3f} mL")
        self.setCellWidget(row, CODE, self._code_picker(seg))
        if seg.made_by and not seg.reviewed:
            button = QtWidgets.QToolButton(
                text="Confirm",
                toolTip=(f"From AI {seg.made_by}, not reviewed: click when you have checked it"),
            )
            button.setStyleSheet(f"color: {AMBER}; padding: 0px 2px;")
            button.clicked.connect(lambda _=False, v=seg.value: self.confirm_clicked.emit(v))
            self.setCellWidget(row, REVIEW, button)
        elif seg.made_by:
            review.setText("✓")
            review.setToolTip(f"From AI {seg.made_by}; reviewed by a person")

    def _cell(self, icon: QtGui.QIcon | None, tip: str) -> QtWidgets.QTableWidgetItem:
        item = (
            QtWidgets.QTableWidgetItem("") if icon is None else QtWidgets.QTableWidgetItem(icon, "")
        )
        item.setFlags(Flag.ItemIsEnabled | Flag.ItemIsSelectable)
        item.setToolTip(tip)
        return item

    def _code_picker(self, seg: Segment) -> QtWidgets.QComboBox:
        combo = QtWidgets.QComboBox(frame=False)
        combo.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        combo.setMinimumContentsLength(5)  # the name needs the room more
        known = False
        for key, (category, kind) in COMMON_CODES.items():
            combo.addItem(key, (category, kind))
            combo.setItemData(
                combo.count() - 1, _code_tip(category, kind), QtCore.Qt.ItemDataRole.ToolTipRole
            )
            if kind == seg.type and category == seg.category:
                combo.setCurrentIndex(combo.count() - 1)
                known = True
        if not known:  # a code read from a file made elsewhere: kept, shown as it is
            combo.addItem(seg.type.meaning, (seg.category, seg.type))
            combo.setCurrentIndex(combo.count() - 1)
        combo.setToolTip(_code_tip(seg.category, seg.type))
        combo.activated.connect(lambda index, c=combo, v=seg.value: self._on_code(v, c, index))
        return combo

    def confirm_button(self, value: int) -> QtWidgets.QToolButton | None:
        if value not in self.values:
            return None
        widget = self.cellWidget(self.values.index(value), REVIEW)
        return widget if isinstance(widget, QtWidgets.QToolButton) else None

    def code_picker(self, value: int) -> QtWidgets.QComboBox | None:
        if value not in self.values:
            return None
        widget = self.cellWidget(self.values.index(value), CODE)
        return widget if isinstance(widget, QtWidgets.QComboBox) else None

    # -- widget -> panel
    def _on_item_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        if self._syncing or item.column() != NAME:
            return
        value, name = int(item.data(VALUE_ROLE)), item.text().strip()
        if name and name != self.segments[value].name:
            self.edited.emit(value, {"name": name})
        elif not name:  # an empty name is no name: put the old one back
            self._syncing = True
            item.setText(self.segments[value].name)
            self._syncing = False

    def _on_cell_clicked(self, row: int, col: int) -> None:
        if not 0 <= row < len(self.values):
            return
        value = self.values[row]
        seg = self.segments[value]
        if col == COLOUR:
            self.colour_clicked.emit(value)
        elif col == SHOWN:
            self.edited.emit(value, {"visible": not seg.visible})
        elif col == LOCKED:
            self.edited.emit(value, {"locked": not seg.locked})

    def _on_code(self, value: int, combo: QtWidgets.QComboBox, index: int) -> None:
        category, kind = combo.itemData(index)
        combo.setToolTip(_code_tip(category, kind))
        seg = self.segments[value]
        if (category, kind) != (seg.category, seg.type):
            self.edited.emit(value, {"category": category, "type": kind})

    def _on_selection(self) -> None:
        if not self._syncing:
            self.chosen.emit(self.current_value())


def _code_tip(category: Code, kind: Code) -> str:
    return (
        f"{kind.meaning} ({kind.scheme} {kind.value}); category {category.meaning} "
        f"({category.scheme} {category.value})"
    )

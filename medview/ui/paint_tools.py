"""PaintController: painting labels with the mouse in every view, through one LabelEditor.

Each view gets the editor's tools as its left-drag tools (SliceView.drag_tools; right-drag
zoom, middle-drag pan and the wheel stay as they are):
- brush, eraser, threshold brush: press and drag paints (one undo step per stroke), a
  click paints one dab; the brush cursor is a circle of the brush's size in mm following
  the mouse, in every plane (scene units are mm, so it is round on screen at any spacing);
- lasso: drag around a region, release fills it on the shown slice;
- fill: click to flood-fill from that voxel.
Ctrl+Z undoes, Ctrl+Shift+Z and Ctrl+Y redo while a view has the focus; [ and ] shrink and
grow the brush. In a turned (oblique) plane the brushes paint a disc in that plane
(LabelEditor.dab); the lasso and fill work in orthogonal planes only.

A dab changes the label array in place; only the label layer's item of each view is
redrawn (SliceView.refresh_layer: one table gather of the slice, not the image nor other
layers), and at most once a frame — mouse moves faster than that are painted into the array
at once and shown together at the next frame."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from medview.ui.slice_view import SliceView
from medview.viewer.label_editor import TOOLS, LabelEditor
from medview.viewer.oblique import ObliqueMap

FRAME_S = 1 / 60
BRUSHES = ("brush", "eraser", "threshold")
MIN_RADIUS_MM, MAX_RADIUS_MM = 0.5, 100.0
Qt = QtCore.Qt


class _ViewPaint:
    """The editor's tools in one view: the DragTool for every tool name, the brush cursor
    and the lasso's outline."""

    def __init__(self, owner: PaintController, view: SliceView) -> None:
        self.owner, self.view, self.editor = owner, view, owner.editor
        self.points: list[tuple[float, float]] = []
        self.cursor = QtWidgets.QGraphicsEllipseItem()
        self.lasso = QtWidgets.QGraphicsPathItem()
        for item, z in ((self.cursor, 30), (self.lasso, 29)):
            item.setZValue(z)
            item.setVisible(False)
            view.vb.addItem(item, ignoreBounds=True)
        self.mouse_mm: QtCore.QPointF | None = None
        view.scene().sigMouseMoved.connect(self.on_mouse_moved)
        for name in TOOLS:
            view.drag_tools[name] = self

    def remove(self) -> None:
        for name in TOOLS:
            if self.view.drag_tools.get(name) is self:
                del self.view.drag_tools[name]
        self.view.scene().sigMouseMoved.disconnect(self.on_mouse_moved)
        for item in (self.cursor, self.lasso):
            self.view.vb.removeItem(item)

    def pixel(self, point_mm: QtCore.QPointF) -> tuple[float, float]:
        return self.view.mm_to_pixel(point_mm)

    # -- DragTool
    def begin(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        name = self.editor.tool.name
        if name in BRUSHES:
            self.editor.begin_stroke()
            self.editor.dab(view.plane, *self.pixel(point_mm))
        elif name == "lasso":
            self.points = [self.pixel(point_mm)]
            self.lasso.setVisible(True)
            self._draw_lasso()

    def move(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        name = self.editor.tool.name
        if name in BRUSHES:
            self.editor.dab(view.plane, *self.pixel(point_mm))
        elif name == "lasso" and self.points:
            self.points.append(self.pixel(point_mm))
            self._draw_lasso()
        self.on_mouse_moved(None, point_mm)

    def finish(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        name = self.editor.tool.name
        if name in BRUSHES:
            self.editor.dab(view.plane, *self.pixel(point_mm))
            self.editor.end_stroke()
            self.owner.flush()
        elif name == "lasso" and self.points:
            self.points.append(self.pixel(point_mm))
            points, self.points = self.points, []
            self.lasso.setVisible(False)
            self.editor.lasso(view.plane, points)

    def click(self, view: SliceView, point_mm: QtCore.QPointF) -> bool:
        """A click paints one dab, or fills from that voxel; the lasso ignores it."""
        name = self.editor.tool.name
        if name in BRUSHES:
            self.editor.begin_stroke()
            self.editor.dab(view.plane, *self.pixel(point_mm))
            self.editor.end_stroke()
            self.owner.flush()
        elif name == "fill":
            self.editor.fill(view.plane, *self.pixel(point_mm))
        return True

    # -- the brush cursor and the lasso outline
    def on_mouse_moved(self, scene_pos: Any, point_mm: QtCore.QPointF | None = None) -> None:
        if point_mm is None:
            point_mm = self.view.vb.mapSceneToView(scene_pos)
        self.mouse_mm = point_mm
        self.update_cursor()

    def update_cursor(self) -> None:
        shown = (
            self.view.tool in BRUSHES
            and self.mouse_mm is not None
            and self.view.state.volume is not None
        )
        self.cursor.setVisible(shown)
        if not shown:
            return
        r = self.editor.tool.radius_mm
        self.cursor.setRect(QtCore.QRectF(-r, -r, 2 * r, 2 * r))
        self.cursor.setPos(self.mouse_mm)
        seg = self.editor.label_map.segments.get(self.editor.active)
        colour = QtGui.QColor(*seg.colour) if seg is not None else QtGui.QColor(200, 200, 200)
        pen = QtGui.QPen(
            colour,
            1.5,
            Qt.PenStyle.DashLine if self.view.tool == "eraser" else Qt.PenStyle.SolidLine,
        )
        pen.setCosmetic(True)
        self.cursor.setPen(pen)

    def hide_cursor(self) -> None:
        self.mouse_mm = None
        self.cursor.setVisible(False)

    def _draw_lasso(self) -> None:
        path = QtGui.QPainterPath()
        mm = [self.view.pixel_to_mm(r, c) for r, c in self.points]
        path.moveTo(mm[0])
        for p in mm[1:]:
            path.lineTo(p)
        path.closeSubpath()
        pen = QtGui.QPen(QtGui.QColor(255, 255, 0), 1.5)
        pen.setCosmetic(True)
        self.lasso.setPen(pen)
        self.lasso.setPath(path)


class PaintController(QtCore.QObject):
    """Painting on in `views` (a list of SliceViews, or anything with `.views`, such as the
    MainWindow) with `editor`; `stop()` gives the views back their window/level tool."""

    def __init__(
        self,
        views: Iterable[SliceView] | Any,
        editor: LabelEditor,
        parent: QtCore.QObject | None = None,
    ) -> None:
        views = list(getattr(views, "views", views))
        super().__init__(parent if parent is not None else (views[0] if views else None))
        self.editor = editor
        self.views = views
        self.paints = [_ViewPaint(self, v) for v in views]
        self._last_flush = 0.0
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)
        for view in views:
            view.installEventFilter(self)
            view.viewport().installEventFilter(self)
        editor.subscribe(self._on_editor)
        self.set_tool(editor.tool.name)

    def set_tool(self, name: str) -> None:
        """Every view's left-drag tool becomes the editor's `name` tool."""
        self.editor.set_tool(name=name)  # -> _on_editor("tool")

    def stop(self) -> None:
        """Painting off: the views' left button is window/level again."""
        self.editor.unsubscribe(self._on_editor)
        self._timer.stop()
        for paint in self.paints:
            paint.remove()
            view = paint.view
            view.removeEventFilter(self)
            view.viewport().removeEventFilter(self)
            if view.tool in TOOLS:
                view.tool = "wl"
                view.viewport().setCursor(Qt.CursorShape.ArrowCursor)
        self.paints = []

    def _on_editor(self, what: str) -> None:
        if what == "voxels":
            now = time.perf_counter()
            if now - self._last_flush >= FRAME_S:
                self.flush()
            elif not self._timer.isActive():
                self._timer.start(max(1, round((FRAME_S - (now - self._last_flush)) * 1000)))
        elif what in ("tool", "active", "segments"):
            for paint in self.paints:
                paint.view.tool = self.editor.tool.name
                paint.view.viewport().setCursor(Qt.CursorShape.CrossCursor)
                paint.update_cursor()

    def flush(self) -> None:
        """Show the voxels painted since the last frame, in the views whose shown slice
        they touch (a dab off the crosshair leaves the other two planes alone)."""
        self._timer.stop()
        self._last_flush = time.perf_counter()
        box = self.editor.take_dirty()
        if box is None:
            return  # nothing painted since (other edits redraw through the state)
        for view in self.views:
            # a view already closed (its items deleted) is skipped
            if not (shiboken6.isValid(view) and all(map(shiboken6.isValid, view.overlay_items))):
                continue
            pm = view.plane_map
            if isinstance(pm, ObliqueMap):  # a turned plane: cut by any box it crosses
                view.refresh_layer(self.editor.layer)
                continue
            index = view.state.slice_index(view.plane)
            if box[0][pm.normal_axis] <= index <= box[1][pm.normal_axis]:
                view.refresh_layer(self.editor.layer)

    # -- keys: undo / redo, brush size; the cursor leaves with the mouse
    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:
        kind = ev.type()
        if kind == QtCore.QEvent.Type.Leave:
            for paint in self.paints:
                if obj is paint.view.viewport():
                    paint.hide_cursor()
            return False
        if kind not in (QtCore.QEvent.Type.ShortcutOverride, QtCore.QEvent.Type.KeyPress):
            return False
        action = self._key_action(ev)
        if action is None:
            return False
        if kind == QtCore.QEvent.Type.KeyPress:
            action()
        ev.accept()  # a ShortcutOverride accepted here keeps a menu's Ctrl+Z from taking it
        return True

    def _key_action(self, ev: QtGui.QKeyEvent):
        key, mods = ev.key(), ev.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        if ctrl and key == Qt.Key.Key_Z:
            return self.editor.redo if shift else self.editor.undo
        if ctrl and key == Qt.Key.Key_Y:
            return self.editor.redo
        if not ctrl and key in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight):
            factor = 1.25 if key == Qt.Key.Key_BracketRight else 0.8
            r = min(MAX_RADIUS_MM, max(MIN_RADIUS_MM, self.editor.tool.radius_mm * factor))
            return lambda: self.editor.set_tool(radius_mm=round(r, 2))
        return None

"""MeasureTools: the ruler, angle, ellipse and rectangle tools of one SliceView, and the
measurements of its plane drawn on it.

Tools are the view's left-drag tools (SliceView.drag_tools; `view.tool = "ruler"` picks
one); right-drag zoom and middle-drag pan stay as they are, and "wl" stays window/level.
- ruler, ellipse, rectangle: press at one end (corner), drag, release at the other. A
  release within a few screen pixels of the press draws nothing.
- angle (as RadiAnt and OsiriX's angle tool): drag the first arm from its far end to the
  vertex, then move the mouse — the second arm follows — and click where it ends (a second
  drag also works: the arm ends where the button is released). Esc, another tool or another
  slice drops an unfinished angle.
Drawn measurements are edited by dragging their handles (the shape moves when its outline
is dragged), selected by a click, deleted with Del.

Measurements live in patient space (MeasurementStore); here they are converted to the
view's scene millimetres through the plane's screen pixels: scene (x, y) <->
(row, col) by view.mm_to_pixel / pixel_to_mm, (row, col) <-> LPS by the plane map and the
volume's affine. Every measurement of the plane gets its items once; scrolling only toggles
which are visible (the ones drawn on the slice shown)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore

from medview.ui.measure_items import MeasurementItem
from medview.ui.slice_view import SliceView
from medview.viewer import measurement_store as ms
from medview.viewer import state as st
from medview.viewer.measurement_store import MeasurementStore
from medview.viewer.measurements import (
    ANGLE,
    ELLIPSE,
    KINDS,
    RECTANGLE,
    ROI_KINDS,
    RULER,
    Measurement,
    lps_to_screen,
    screen_to_lps,
    value_lines,
)
from medview.viewer.oblique import ObliqueMap

MIN_DRAG_PX = 3  # a shorter drag is a slip of the hand, not a measurement


class _TwoPointTool:
    """Ruler, ellipse and rectangle: the two points are where the drag began and ended."""

    def __init__(self, tools: MeasureTools, kind: str) -> None:
        self.tools, self.kind = tools, kind
        self.mid, self.start = "", QtCore.QPointF()

    def begin(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        self.start = point_mm
        self.mid = self.tools.start(self.kind, [point_mm, point_mm])

    def move(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        self.tools.reshape(self.mid, [self.start, point_mm], save=False)

    def finish(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        if self.tools.too_small(self.kind, self.start, point_mm):
            self.tools.store.remove(self.mid, save=False)
        else:
            self.tools.reshape(self.mid, [self.start, point_mm], save=True)
        self.mid = ""


class _AngleTool:
    """First arm by a drag (far end -> vertex), the second arm's end by a click."""

    def __init__(self, tools: MeasureTools) -> None:
        self.tools = tools
        self.mid, self.arm = "", (QtCore.QPointF(), QtCore.QPointF())
        self.pending = False  # first arm drawn, waiting for the second

    def begin(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        if not self.pending:
            self.arm = (point_mm, point_mm)
            self.mid = self.tools.start(ANGLE, [point_mm] * 3)

    def move(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        if self.pending:
            self.follow(point_mm)
        else:
            self.arm = (self.arm[0], point_mm)
            self.tools.reshape(self.mid, [*self.arm, point_mm], save=False)

    def finish(self, view: SliceView, point_mm: QtCore.QPointF) -> None:
        if self.pending:
            self.click(view, point_mm)
        elif self.tools.too_small(ANGLE, *self.arm):
            self.cancel()
        else:
            self.pending = True

    def click(self, view: SliceView, point_mm: QtCore.QPointF) -> bool:
        """SliceView's hook for a plain click: the second arm's end."""
        if not self.pending:
            return False
        self.tools.reshape(self.mid, [*self.arm, point_mm], save=True)
        self.mid, self.pending = "", False
        return True

    def follow(self, point_mm: QtCore.QPointF) -> None:
        self.tools.reshape(self.mid, [*self.arm, point_mm], save=False)

    def cancel(self) -> None:
        if self.mid:
            self.tools.store.remove(self.mid, save=False)
        self.mid, self.pending = "", False


class MeasureTools(QtCore.QObject):
    """Installs the measurement tools into one SliceView and draws its plane's
    measurements from a MeasurementStore shared by all views and the panel."""

    def __init__(self, view: SliceView, store: MeasurementStore) -> None:
        super().__init__(view)
        self.view, self.store, self.state = view, store, view.state
        self.items: dict[str, MeasurementItem] = {}
        self._dragged = ""  # the item whose own drag is moving the model right now
        self._shown_index = -1
        self.angle = _AngleTool(self)
        view.drag_tools.update(
            {
                RULER: _TwoPointTool(self, RULER),
                ANGLE: self.angle,
                ELLIPSE: _TwoPointTool(self, ELLIPSE),
                RECTANGLE: _TwoPointTool(self, RECTANGLE),
            }
        )
        view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        view.installEventFilter(self)
        store.subscribe(self._on_store)
        self.state.subscribe(self._on_state)
        # a view closed by a layout change must not be called by the models it outlives
        on_store, on_state, state = self._on_store, self._on_state, self.state
        view.destroyed.connect(
            lambda *_: (store.unsubscribe(on_store), state.unsubscribe(on_state))
        )
        self._rebuild()

    def set_tool(self, name: str) -> None:
        """The view's left-drag tool ("wl" or one of KINDS); drops an unfinished angle."""
        if name != ANGLE:
            self.angle.cancel()
        self.view.tool = name
        cursor = (
            QtCore.Qt.CursorShape.CrossCursor
            if name in KINDS
            else QtCore.Qt.CursorShape.ArrowCursor
        )
        self.view.viewport().setCursor(cursor)

    # -- scene mm <-> patient space
    def to_lps(self, slice_index: int, points_mm: list[QtCore.QPointF]) -> np.ndarray:
        rows_cols = np.array([self.view.mm_to_pixel(p) for p in points_mm])
        return screen_to_lps(self.state.volume, self.view.plane_map, slice_index, rows_cols)

    def to_mm(self, m: Measurement) -> list[QtCore.QPointF]:
        rows_cols = lps_to_screen(self.state.volume, self.view.plane_map, m.points_lps)
        return [self.view.pixel_to_mm(r, c) for r, c in rows_cols]

    # -- used by the drawing tools
    def start(self, kind: str, points_mm: list[QtCore.QPointF]) -> str:
        index = self.state.slice_index(self.view.plane)
        points = self.to_lps(index, points_mm)
        # a measurement drawn in a turned plane is kept on the orthogonal slice nearest its
        # centre (what the store checks and saves), and shown where its points lie
        stored = (
            index
            if not self.state.oblique
            else int(
                np.rint(
                    self.state.maps[self.view.plane].from_index(
                        self.state.volume.lps_to_index(points.mean(axis=0))
                    )[0]
                )
            )
        )
        pm = self.view.plane_map
        # an ROI in a turned plane keeps that plane: its box and pixels are that plane's
        turned = isinstance(pm, ObliqueMap) and kind in ROI_KINDS
        axes = np.array([pm.down, pm.right]) if turned else None
        m = Measurement(kind, self.view.plane, stored, points, axes_lps=axes)
        return self.store.add(m, save=False).id

    def shown_index(self, m: Measurement) -> int:
        """The slice of this view a measurement is drawn on."""
        if not self.state.oblique:
            return m.slice_index
        centre = self.state.volume.lps_to_index(np.asarray(m.points_lps, float).mean(axis=0))
        return int(np.rint(self.view.plane_map.from_index(centre)[0]))

    def reshape(self, mid: str, points_mm: list[QtCore.QPointF], save: bool) -> None:
        m = self.store.measurements.get(mid)
        if m is not None:
            self.store.move(mid, self.to_lps(self.shown_index(m), points_mm), save=save)

    def too_small(self, kind: str, a: QtCore.QPointF, b: QtCore.QPointF) -> bool:
        d = self.view.vb.mapViewToDevice(b) - self.view.vb.mapViewToDevice(a)
        dx, dy = abs(d.x()), abs(d.y())
        if kind in (ELLIPSE, RECTANGLE):
            return min(dx, dy) < MIN_DRAG_PX
        return max(dx, dy) < MIN_DRAG_PX

    # -- model -> items
    def _on_store(self, event: str, mid: str) -> None:
        if self.state.volume is None:
            return
        if event == ms.RESET:
            self.angle.mid, self.angle.pending = "", False
            self._rebuild()
        elif event == ms.ADDED:
            self._add_item(self.store.measurements[mid])
        elif event == ms.CHANGED and mid in self.items:
            self._sync(mid)
        elif event == ms.REMOVED and mid in self.items:
            self.items.pop(mid).remove_from(self.view.vb)
        elif event == ms.SELECTED:
            for key, item in self.items.items():
                item.set_selected(key == mid)

    def _rebuild(self) -> None:
        for item in self.items.values():
            item.remove_from(self.view.vb)
        self.items = {}
        self._shown_index = -1
        if self.state.volume is not None:
            for m in self.store.on_plane(self.view.plane):
                self._add_item(m)

    def _add_item(self, m: Measurement) -> None:
        if m.plane is not self.view.plane:
            return
        item = MeasurementItem(
            m.kind,
            self.to_mm(m),
            on_moved=lambda pts, final, mid=m.id: self._dragging(mid, pts, final),
            on_clicked=lambda mid=m.id: self.store.select(mid),
        )
        item.add_to(self.view.vb)
        item.set_selected(m.id == self.store.selected)
        item.set_visible(self.shown_index(m) == self.state.slice_index(self.view.plane))
        self.items[m.id] = item
        self._sync(m.id)

    def _sync(self, mid: str) -> None:
        m, item = self.store.measurements[mid], self.items[mid]
        if mid != self._dragged:
            item.set_points(self.to_mm(m))
        item.set_text(([m.label] if m.label else []) + value_lines(m, self.store.values(mid)))

    def _on_state(self, what: str) -> None:
        if self.state.volume is None:
            return
        if what == st.OBLIQUE:  # the plane turned: every drawing moves on screen
            self.angle.cancel()
            self._rebuild()
            return
        if what != st.CURSOR:
            return
        index = self.state.slice_index(self.view.plane)
        if index == self._shown_index:
            return
        self._shown_index = index
        pending = self.store.measurements.get(self.angle.mid)
        if pending is not None and self.shown_index(pending) != index:
            self.angle.cancel()
        for mid, item in self.items.items():
            item.set_visible(self.shown_index(self.store.measurements[mid]) == index)

    # -- items -> model
    def _dragging(self, mid: str, points_mm: list[QtCore.QPointF], final: bool) -> None:
        """A handle or outline dragged: values follow live, the release saves."""
        m = self.store.measurements.get(mid)
        if m is None or self.state.volume is None:
            return
        self._dragged = mid
        try:
            self.store.move(mid, self.to_lps(self.shown_index(m), points_mm), save=final)
        finally:
            self._dragged = ""
        if final:
            self.store.select(mid)

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if not self.angle.pending:
            return
        if self.view.tool != ANGLE:
            self.angle.cancel()
        else:
            self.angle.follow(self.view.vb.mapSceneToView(scene_pos))

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:
        """Esc drops an unfinished angle; Del deletes the selected measurement of this plane."""
        if obj is not self.view or ev.type() != QtCore.QEvent.Type.KeyPress:
            return False
        Key = QtCore.Qt.Key
        if ev.key() == Key.Key_Escape and self.angle.pending:
            self.angle.cancel()
            return True
        if ev.key() in (Key.Key_Delete, Key.Key_Backspace) and self.store.selected in self.items:
            self.store.remove(self.store.selected)
            return True
        return False

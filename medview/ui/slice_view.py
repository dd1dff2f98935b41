"""SliceView: one plane of the open volume, drawn with pyqtgraph and driven the way radiology
viewers are (docs/development.md "Qt and pyqtgraph"; OHIF, Horos/OsiriX, Orthanc Stone):
wheel = slice, left-drag = active tool (window/level by default: drag right = wider,
drag down = higher level, so darker), right-drag = zoom (up = in), middle-drag = pan,
Ctrl+wheel = zoom; keys for slices, presets (1-9), R reset, I invert, Space cine, F fit,
O overlays, C crosshair link, M thick-slab mode (off, MIP, MinIP, average), + and - the slab
thickness.

Scene units are millimetres: pixel spacing lives in the ImageItem's rect (pyqtgraph's
setRect) or transform, never in resampled pixels, so aspect is right in every plane and
zoom is exact."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from medview.ui.fast_image_item import FastImageItem
from medview.viewer import state as st
from medview.viewer.annotations import ai_notes, corner_lines, scale_bar_mm
from medview.viewer.layers import OverlayLayer, label_outline
from medview.viewer.oblique import ObliqueMap, crosshair_angles
from medview.viewer.planes import Plane
from medview.viewer.slab import SlabMode, layer_image, oblique_slab, step_thickness
from medview.viewer.state import ViewerState

GREY = np.arange(256, dtype=np.uint8)
GREY_INVERTED = GREY[::-1].copy()
TEXT_COLOUR = QtGui.QColor(230, 230, 200)
CROSSHAIR_PEN = pg.mkPen((255, 200, 0, 160), width=1)
CINE_FPS = 15
WL_DRAG_PER_PIXEL = 1 / 200  # fraction of the current width per pixel of drag
WHEEL_NOTCH = 120  # Qt's angleDelta for one wheel notch; touchpads send fractions of it
HANDLE_PX = 11  # the rotation handle's size on screen
HANDLE_OFFSET_PX = 60  # how far from the crosshair's centre it sits, along one line
# what works in turned planes (the brushes paint a disc in the plane: LabelEditor.dab; an
# ROI keeps its plane: viewer.measurements)
OBLIQUE_TOOLS = (
    *("wl", "zoom", "pan", "rotate", "ruler", "angle"),
    *("ellipse", "rectangle", "brush", "eraser", "threshold"),
)


class DragTool(Protocol):
    """A left-button tool (ruler, ROI, ...): gets scene points in millimetres. It may also
    have click(view, point_mm) -> bool, offered each plain left click first (True = taken)."""

    def begin(self, view: SliceView, point_mm: QtCore.QPointF) -> None: ...
    def move(self, view: SliceView, point_mm: QtCore.QPointF) -> None: ...
    def finish(self, view: SliceView, point_mm: QtCore.QPointF) -> None: ...


class _ViewBox(pg.ViewBox):
    """pyqtgraph's ViewBox zooms on wheel and pans on left-drag; radiology wants neither."""

    def __init__(self, owner: SliceView) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._owner = owner

    def wheelEvent(self, ev, axis=None) -> None:
        self._owner.on_wheel(ev.delta(), ev.modifiers(), self.mapToView(ev.pos()))
        ev.accept()

    def mouseDragEvent(self, ev, axis=None) -> None:
        self._owner.on_drag(ev)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self._owner.on_click(self.mapToView(ev.pos()))
            ev.accept()


class SliceView(pg.GraphicsView):
    """One plane of a ViewerState. Several views share one state."""

    hovered = QtCore.Signal(str)  # status-bar text: value and LPS position under the mouse
    activated = QtCore.Signal(object)  # this view's Plane, when it takes focus
    cine_toggled = QtCore.Signal(bool)  # cine started (True) or stopped, by key or button

    def __init__(
        self, state: ViewerState, plane: Plane, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent, background="k")
        self.state, self.plane = state, plane
        self.vb = _ViewBox(self)
        self.setCentralItem(self.vb)
        self.image_item = FastImageItem(axisOrder="row-major")
        self.vb.addItem(self.image_item)
        self.overlay_items: list[pg.ImageItem] = []
        self.h_line = pg.InfiniteLine(angle=0, pen=CROSSHAIR_PEN, movable=False)
        self.v_line = pg.InfiniteLine(angle=90, pen=CROSSHAIR_PEN, movable=False)
        for line in (self.h_line, self.v_line):
            line.setZValue(20)
            self.vb.addItem(line, ignoreBounds=True)
        self.tool = "wl"
        self.drag_tools: dict[str, DragTool] = {}
        self._drag_kind = ""
        self._wheel_rest = 0  # angleDelta not yet turned into a whole notch
        self._shown_index = -1
        self._fitted_shape = (0, 0)
        # the crosshair's handle: dragged round the crosshair, it turns the other planes
        self.handle = pg.ScatterPlotItem(
            size=HANDLE_PX, pen=pg.mkPen((255, 200, 0)), brush=pg.mkBrush(255, 200, 0, 120)
        )
        self.handle.setZValue(21)
        self.vb.addItem(self.handle, ignoreBounds=True)
        self._cine = QtCore.QTimer(self)
        self._cine.timeout.connect(self._cine_step)
        self.cine_fps = CINE_FPS
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        listener = self._on_state
        state.subscribe(listener)
        # a deleted view must stop listening, or the next state change calls into a dead
        # C++ object (a crash, seen when a layout change dropped a view)
        self.destroyed.connect(lambda *_: state.unsubscribe(listener))
        if state.volume is not None:
            self._on_state(st.VOLUME)

    # -- geometry helpers
    @property
    def plane_map(self):
        return self.state.view_map(self.plane)

    def mm_to_pixel(self, p: QtCore.QPointF) -> tuple[float, float]:
        """Scene point (mm) -> fractional (row, col) on this view's image."""
        row_mm, col_mm = self.plane_map.pixel_mm
        return p.y() / row_mm - 0.5, p.x() / col_mm - 0.5

    def pixel_to_mm(self, row: float, col: float) -> QtCore.QPointF:
        row_mm, col_mm = self.plane_map.pixel_mm
        return QtCore.QPointF((col + 0.5) * col_mm, (row + 0.5) * row_mm)

    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        px_w, _ = self.vb.viewPixelSize()
        return self.plane_map.pixel_mm[1] / px_w if px_w else 1.0

    # -- state -> widget
    def _on_state(self, what: str) -> None:
        if self.state.volume is None:
            return
        if what in (st.VOLUME, st.OBLIQUE):
            self._shown_index = -1
            rows, cols = self.plane_map.screen_shape
            row_mm, col_mm = self.plane_map.pixel_mm
            self._refresh_image()
            self.image_item.setRect(QtCore.QRectF(0, 0, cols * col_mm, rows * row_mm))
            self._rebuild_overlays()
            if what == st.VOLUME or (rows, cols) != self._fitted_shape:
                self.fit()  # not the view the axes are turned in: it stays as it is
            self._fitted_shape = (rows, cols)
            self._apply_window()
        elif what == st.CURSOR:
            if self.state.slice_index(self.plane) != self._shown_index:
                self._refresh_image()
                self._refresh_overlays()
        elif what == st.WINDOW:
            self._apply_window()
        elif what == st.SLAB:
            self._refresh_image()
            self._refresh_overlays()
        elif what == st.LAYERS:
            if len(self.overlay_items) == len(self.state.layers):
                self._refresh_overlays()  # a setting changed (opacity slider...): same items
            else:
                self._rebuild_overlays()
        self._place_crosshair()
        # through the scene, not viewport().update(): the scene repaints its changed items
        # from a queued call, and a direct viewport update painted the first view before the
        # other views' scenes had queued theirs, so linked views were each painted twice
        self.scene().update()

    def _refresh_image(self) -> None:
        idx = self.state.slice_index(self.plane)
        slab, pm, array = self.state.slab, self.plane_map, self.state.volume.array
        if not slab.on:
            img = pm.image(array, idx)
        elif isinstance(pm, ObliqueMap):  # a turned plane: its resampled planes reduced
            img = oblique_slab(pm, array, idx, slab)
        else:
            img = self.state.projector.image(pm, idx, slab, self.state.slab_spacing(self.plane))
        self.image_item.setImage(img, autoLevels=False, levels=self._levels())
        self._shown_index = idx

    def _levels(self) -> tuple[float, float]:
        return self.state.window.bounds if self.state.volume.windowed else (0, 255)

    def _apply_window(self) -> None:
        self.image_item.setLevels(self._levels())
        if not self.state.volume.is_colour:
            self.image_item.setLookupTable(GREY_INVERTED if self.state.invert else GREY)

    def _place_crosshair(self) -> None:
        _, row, col = self.plane_map.from_index(self.state.cursor_ijk)
        p = self.pixel_to_mm(row, col)
        visible = self.state.crosshair_linked and self.state.show_overlays
        # each line is where one of the other planes cuts this one: 0 and 90 degrees until
        # a plane is turned (rotation_handle)
        for line, angle in zip(
            (self.h_line, self.v_line), crosshair_angles(self.state, self.plane), strict=True
        ):
            line.setAngle(angle)
            line.setPos(p)
            line.setVisible(visible)
        self._place_handle(p, visible)

    def _rebuild_overlays(self) -> None:
        for item in self.overlay_items:
            self.vb.removeItem(item)
        self.overlay_items = []
        row_mm, col_mm = self.plane_map.pixel_mm
        for k in range(len(self.state.layers)):
            item = FastImageItem(axisOrder="row-major")
            item.setZValue(10 + k)
            self.vb.addItem(item)
            # pixel spacing as a transform, not setRect: setRect scales by the size of an
            # image the item does not have yet, which drew overlays far off the image
            item.setTransform(QtGui.QTransform.fromScale(col_mm, row_mm))
            self.overlay_items.append(item)
        self._refresh_overlays()

    def _refresh_overlays(self) -> None:
        idx = self.state.slice_index(self.plane)
        for item, layer in zip(self.overlay_items, self.state.layers, strict=True):
            item.setVisible(layer.visible)
            if not layer.visible:
                continue
            image = self._layer_image(layer, idx)
            if layer.kind == "labels" and layer.outline:
                image = label_outline(image)
            item.setImage(
                image,
                autoLevels=False,
                levels=(0, 255) if layer.kind == "labels" else (0, layer.heat_scale()),
            )
            item.setLookupTable(_lut(layer))
            item.setOpacity(layer.opacity)

    def refresh_layer(self, layer: OverlayLayer) -> None:
        """Redraw one layer whose voxels changed in place (a brush dab): its item only,
        not the image nor the other layers."""
        for item, shown in zip(self.overlay_items, self.state.layers, strict=False):
            if shown is layer and layer.visible:
                image = self._layer_image(layer, self.state.slice_index(self.plane))
                item.setImage(
                    label_outline(image) if layer.outline else image,
                    autoLevels=False,
                    levels=(0, 255),
                )

    def _layer_image(self, layer: OverlayLayer, idx: int) -> np.ndarray:
        """A layer's slice, or its maximum over the slab the image shows; in a turned
        plane the layers held as arrays resampled (a decoded AI heatmap is not shown)."""
        pm = self.plane_map
        if isinstance(pm, ObliqueMap):
            if not isinstance(layer.array, np.ndarray):
                return np.zeros(pm.screen_shape, np.uint8)
            if self.state.slab.on:
                return oblique_slab(pm, layer.array, idx, self.state.slab, SlabMode.MIP)
            return pm.image(layer.array, idx)
        return layer_image(
            self.plane_map, layer.array, idx, self.state.slab, self.state.slab_spacing(self.plane)
        )

    def _handle_mm(self, centre: QtCore.QPointF) -> QtCore.QPointF:
        px_w, _ = self.vb.viewPixelSize()
        t = np.radians(self.h_line.angle)
        reach = HANDLE_OFFSET_PX * (px_w or 1.0)
        return QtCore.QPointF(centre.x() + reach * np.cos(t), centre.y() + reach * np.sin(t))

    def _place_handle(self, centre: QtCore.QPointF, visible: bool) -> None:
        p = self._handle_mm(centre)
        self.handle.setData([p.x()], [p.y()])
        self.handle.setVisible(visible)

    def _on_handle(self, point_mm: QtCore.QPointF) -> bool:
        if not self.handle.isVisible():
            return False
        pts = self.handle.getData()
        px_w, _ = self.vb.viewPixelSize()
        return bool(len(pts[0])) and float(
            np.hypot(point_mm.x() - pts[0][0], point_mm.y() - pts[1][0])
        ) <= (HANDLE_PX * (px_w or 1.0))

    def fit(self) -> None:
        """F: the whole image in view, centred."""
        self.vb.autoRange(padding=0.0)

    # -- widget -> state
    def on_wheel(self, delta: int, modifiers, point_mm: QtCore.QPointF) -> None:
        if self.state.volume is None or delta == 0:
            return
        # one slice (or zoom step) per notch: coalesced notches each count, a touchpad's
        # small deltas add up to one; turning back starts afresh
        if self._wheel_rest * delta < 0:
            self._wheel_rest = 0
        self._wheel_rest += delta
        notches = int(self._wheel_rest / WHEEL_NOTCH)
        self._wheel_rest -= notches * WHEEL_NOTCH
        if notches == 0:
            return
        if modifiers & QtCore.Qt.KeyboardModifier.ControlModifier:
            factor = 0.9**notches
            self.vb.scaleBy((factor, factor), center=point_mm)
            self.viewport().update()
        else:
            self.state.step(self.plane, -notches)

    def on_click(self, point_mm: QtCore.QPointF) -> None:
        if self.state.volume is None:
            return
        click = getattr(self.drag_tools.get(self.tool), "click", None)
        if self.state.oblique and self.tool not in OBLIQUE_TOOLS:
            click = None  # fill works in orthogonal planes only
        if click is not None and click(self, point_mm):
            return  # the active tool took the click (e.g. the angle's last point)
        if not self.state.crosshair_linked:
            return
        row, col = self.mm_to_pixel(point_mm)
        self.state.set_cursor_screen(self.plane, row, col)

    def on_drag(self, ev) -> None:
        if self.state.volume is None:
            ev.ignore()
            return
        ev.accept()
        button = ev.button()
        pos, last = self.vb.mapToView(ev.pos()), self.vb.mapToView(ev.lastPos())
        if ev.isStart():
            self._drag_kind = {
                QtCore.Qt.MouseButton.LeftButton: self.tool,
                QtCore.Qt.MouseButton.RightButton: "zoom",
                QtCore.Qt.MouseButton.MiddleButton: "pan",
            }.get(button, "")
            if button == QtCore.Qt.MouseButton.LeftButton and self._on_handle(
                self.vb.mapToView(ev.buttonDownPos())
            ):
                self._drag_kind = "rotate"
            elif self.state.oblique and self._drag_kind not in OBLIQUE_TOOLS:
                self._drag_kind = ""  # lasso and fill work in orthogonal planes only
            tool = self.drag_tools.get(self._drag_kind)
            if tool is not None:
                tool.begin(self, self.vb.mapToView(ev.buttonDownPos()))
        kind = self._drag_kind
        delta_px = ev.screenPos() - ev.lastScreenPos()
        if kind == "wl":
            w = self.state.window
            floor = 10.0 if self.state.volume.array.dtype.kind in "iu" else 1e-3
            step = max(w.width, floor) * WL_DRAG_PER_PIXEL
            self.state.set_window(
                w.center + delta_px.y() * step, w.width + delta_px.x() * step, "Custom"
            )
        elif kind == "zoom":
            factor = float(np.exp(delta_px.y() * 0.01))
            self.vb.scaleBy((factor, factor), center=self.vb.mapToView(ev.buttonDownPos()))
        elif kind == "pan":
            self.vb.translateBy(x=last.x() - pos.x(), y=last.y() - pos.y())
        elif kind == "rotate":
            centre = self.pixel_to_mm(*self.plane_map.from_index(self.state.cursor_ijk)[1:])
            a0 = np.degrees(np.arctan2(last.y() - centre.y(), last.x() - centre.x()))
            a1 = np.degrees(np.arctan2(pos.y() - centre.y(), pos.x() - centre.x()))
            # a turn on screen (x right, y down) is a turn about down x right the other way
            self.state.rotate(self.plane, -float((a1 - a0 + 180) % 360 - 180))
        elif kind in self.drag_tools:
            tool = self.drag_tools[kind]
            (tool.finish if ev.isFinish() else tool.move)(self, pos)
        self.viewport().update()

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if self.state.volume is None:
            return
        p = self.vb.mapSceneToView(scene_pos)
        row, col = self.mm_to_pixel(p)
        ijk = self.plane_map.to_index(self.state.slice_index(self.plane), round(row), round(col))
        value = self.state.value_at(ijk)
        if value is None:
            self.hovered.emit("")
            return
        lps = self.state.volume.index_to_lps(ijk)
        unit = f" {self.state.volume.metadata.units}" if self.state.volume.metadata.units else ""
        shown = (f"{value:.4g}" if isinstance(value, float) else str(value)) + unit
        self.hovered.emit(
            f"{shown}   at ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm LPS   "
            f"voxel ({int(ijk[2])}, {int(ijk[1])}, {int(ijk[0])})"
        )

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:
        super().mousePressEvent(ev)
        # pyqtgraph makes its clicks and drags from the press but leaves the Qt event
        # unaccepted where no item grabbed it, so Qt also offers it to the dock and the main
        # window: every button's press here is the view's (crosshair, tools, pan, W/L)
        ev.accept()

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:
        super().mouseReleaseEvent(ev)
        ev.accept()

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        if self.state.volume is None or not self._handle_key(ev):
            super().keyPressEvent(ev)

    def _handle_key(self, ev: QtGui.QKeyEvent) -> bool:
        k, Key = ev.key(), QtCore.Qt.Key
        n = self.plane_map.n_slices
        steps = {
            Key.Key_Up: -1,
            Key.Key_Left: -1,
            Key.Key_Down: 1,
            Key.Key_Right: 1,
            Key.Key_PageUp: -max(1, n // 10),
            Key.Key_PageDown: max(1, n // 10),
        }
        if k in steps:
            self.state.step(self.plane, steps[k])
        elif k == Key.Key_Home:
            self.state.set_slice(self.plane, 0)
        elif k == Key.Key_End:
            self.state.set_slice(self.plane, n - 1)
        elif Key.Key_1 <= k <= Key.Key_9:
            self.state.apply_preset(k - Key.Key_0)
        elif k == Key.Key_R:
            self.state.reset()
            self.fit()
        elif k == Key.Key_I:
            self.state.toggle_invert()
        elif k == Key.Key_F:
            self.fit()
        elif k == Key.Key_O:
            self.state.toggle_overlays()
        elif k == Key.Key_C:
            self.state.set_crosshair_linked(not self.state.crosshair_linked)
        elif k == Key.Key_Space:
            self.toggle_cine()
        elif k == Key.Key_M:
            self.state.cycle_slab_mode()
        elif k in (Key.Key_Plus, Key.Key_Equal, Key.Key_Minus):
            direction = -1 if k == Key.Key_Minus else 1
            self.state.set_slab(
                thickness_mm=step_thickness(self.state.slab.thickness_mm, direction)
            )
        else:
            return False
        return True

    def focusInEvent(self, ev: QtGui.QFocusEvent) -> None:
        super().focusInEvent(ev)
        self.activated.emit(self.plane)

    # -- cine
    @property
    def cine_fps(self) -> int:
        return self._cine_fps

    @cine_fps.setter
    def cine_fps(self, fps: int) -> None:
        """Frames per second, 1..60; a running cine takes the new rate at once."""
        self._cine_fps = int(np.clip(fps, 1, 60))
        self._cine.setInterval(round(1000 / self._cine_fps))

    def toggle_cine(self) -> None:
        if self._cine.isActive():
            self._cine.stop()
        else:
            self._cine.start()
        self.cine_toggled.emit(self._cine.isActive())

    @property
    def cine_running(self) -> bool:
        return self._cine.isActive()

    def _cine_step(self) -> None:
        n = self.plane_map.n_slices
        self.state.set_slice(self.plane, (self.state.slice_index(self.plane) + 1) % n)

    # -- corner text, orientation letters and scale bar, in screen pixels
    def drawForeground(self, painter: QtGui.QPainter, rect) -> None:
        if self.state.volume is None:
            return
        full = self.state.show_overlays
        # with the overlays hidden (O) a model's layers still say what made them and that
        # they are no diagnosis, on screen and in an exported PNG
        corners = (
            corner_lines(self.state, self.plane, self.zoom())
            if full
            else {"br": ai_notes(self.state)}
        )
        if not any(corners.values()):
            return
        painter.save()
        painter.resetTransform()
        w, h = self.viewport().width(), self.viewport().height()
        font = painter.font()
        font.setPixelSize(max(11, min(15, h // 40)))
        painter.setFont(font)
        fm = QtGui.QFontMetrics(font)
        lh = fm.height()
        # corner lines stop short of the middle of the edge, where the orientation letter
        # stands: long descriptions ran over it in views narrower than about 500 pixels
        half = max(40, w // 2 - fm.horizontalAdvance("MM") - 6)
        # the AI note's lines below the bottom letter (the last two of the corner) may take
        # all the room the bottom-left lines leave: a narrow view still names the model
        notes = set(ai_notes(self.state))
        wide = w - 24 - max((fm.horizontalAdvance(ln) for ln in corners.get("bl", [])), default=0)
        for key, lines in corners.items():
            lines = [ln for ln in lines if ln]
            for i, line in enumerate(lines):
                from_bottom = len(lines) - 1 - i
                room = max(half, wide) if line in notes and from_bottom < 2 else half
                text = fm.elidedText(line, QtCore.Qt.TextElideMode.ElideRight, room)
                y = 4 + lh * (i + 1) if key[0] == "t" else h - 6 - lh * from_bottom
                x = 6 if key[1] == "l" else w - 6 - fm.horizontalAdvance(text)
                _shadow_text(painter, x, y - fm.descent(), text)
        if full:
            self._draw_letters(painter, font, w, h, lh)
            # above the bottom-right lines (two, more with the AI note)
            below = max(2, len([ln for ln in corners.get("br", []) if ln]))
            self._draw_scale_bar(painter, w, h, lh, below)
        painter.restore()

    def _draw_letters(
        self, painter: QtGui.QPainter, font: QtGui.QFont, w: int, h: int, lh: int
    ) -> None:
        top, bottom, left, right = self.plane_map.edge_letters
        big = QtGui.QFont(font)
        big.setPixelSize(font.pixelSize() + 3)
        big.setBold(True)
        painter.setFont(big)
        fm2 = QtGui.QFontMetrics(big)
        _shadow_text(painter, (w - fm2.horizontalAdvance(top)) // 2, fm2.ascent() + 4, top)
        _shadow_text(painter, (w - fm2.horizontalAdvance(bottom)) // 2, h - 6 - 2 * lh, bottom)
        _shadow_text(painter, 6, h // 2, left)
        _shadow_text(painter, w - 6 - fm2.horizontalAdvance(right), h // 2, right)

    def _draw_scale_bar(
        self, painter: QtGui.QPainter, w: int, h: int, lh: int, below: int = 2
    ) -> None:
        px_w, _ = self.vb.viewPixelSize()
        if not px_w:
            return
        length_mm = scale_bar_mm(w * px_w)
        length_px = round(length_mm / px_w)
        x1, y = w - 12, h - (below + 1) * lh - 12
        x0 = x1 - length_px
        painter.setPen(QtGui.QPen(TEXT_COLOUR, 2))
        painter.drawLine(x0, y, x1, y)
        painter.drawLine(x0, y - 5, x0, y + 5)
        painter.drawLine(x1, y - 5, x1, y + 5)
        label = f"{length_mm:g} mm"
        _shadow_text(painter, x0, y - 6, label)


def _shadow_text(painter: QtGui.QPainter, x: int, y: int, text: str) -> None:
    """Text with a dark shadow, readable on any part of the image."""
    painter.setPen(QtGui.QColor(0, 0, 0, 220))
    painter.drawText(x + 1, y + 1, text)
    painter.setPen(TEXT_COLOUR)
    painter.drawText(x, y, text)


_LUT_CACHE: dict[tuple, np.ndarray] = {}


def _lut(layer: OverlayLayer) -> np.ndarray:
    """RGBA lookup table for a layer: label colours, or a colour map with values under the
    threshold transparent."""
    if layer.kind == "labels":
        key: tuple = ("labels", tuple(sorted(layer.label_colours.items())))
        if key not in _LUT_CACHE:
            _LUT_CACHE[key] = layer.label_lut()
        return _LUT_CACHE[key]
    key = ("heat", layer.colour_map, round(layer.threshold, 3))
    if key not in _LUT_CACHE:
        lut = pg.colormap.get(layer.colour_map).getLookupTable(0.0, 1.0, 256, alpha=True)
        lut = np.asarray(lut, np.uint8).copy()
        lut[: int(np.ceil(layer.threshold * 255)), 3] = 0
        _LUT_CACHE[key] = lut
    return _LUT_CACHE[key]

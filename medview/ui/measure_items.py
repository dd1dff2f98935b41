"""MeasurementItem: how one measurement looks in a SliceView — a pyqtgraph ROI whose handles
the reader drags (the ends of a ruler, the three points of an angle, the four corners of an
ellipse or rectangle; the whole shape moves when its outline is dragged) and its values in
a text label with a dark background, readable on bone and on air alike.

It knows scene millimetres only: converting to patient space and back is MeasureTools'
job, so this module is about drawing and dragging, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from medview.viewer.measurements import ANGLE, ELLIPSE, ROI_KINDS

PEN = pg.mkPen((90, 235, 130), width=2)
SELECTED_PEN = pg.mkPen((90, 200, 255), width=2)  # not the crosshair's amber
HOVER_PEN = pg.mkPen((255, 255, 160), width=2)
HANDLE_PEN = pg.mkPen((200, 255, 220), width=1)
TEXT_COLOUR = (245, 245, 215)
TEXT_FILL = pg.mkBrush(0, 0, 0, 170)
HIT_WIDTH_PX = 8  # how near the outline (screen pixels) the mouse grabs a line
Z = 30


class _PointsROI(pg.ROI):
    """Free handles joined by straight lines: the ruler (2 points) and the angle (3). One
    class instead of LineSegmentROI + PolyLineROI, whose segment clicks add points."""

    def __init__(self, points: list[QtCore.QPointF]) -> None:
        super().__init__(
            (0, 0),
            (1, 1),
            pen=PEN,
            hoverPen=HOVER_PEN,
            handlePen=HANDLE_PEN,
            rotatable=False,
            resizable=False,
        )
        for p in points:
            self.addFreeHandle(p)

    def points(self) -> list[QtCore.QPointF]:
        return [self.mapToParent(h["item"].pos()) for h in self.handles]

    def set_points(self, points: list[QtCore.QPointF]) -> None:
        self.setPos(pg.Point(0, 0), update=False)
        for h, p in zip(self.handles, points, strict=True):
            h["item"].setPos(p)
            h["pos"] = pg.Point(p)
        self.prepareGeometryChange()
        self.update()

    def _polygon(self) -> QtGui.QPolygonF:
        return QtGui.QPolygonF([h["item"].pos() for h in self.handles])

    def paint(self, p: QtGui.QPainter, *args) -> None:
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        p.setPen(self.currentPen)
        p.drawPolyline(self._polygon())

    def shape(self) -> QtGui.QPainterPath:
        path = QtGui.QPainterPath()
        path.addPolygon(self._polygon())
        stroker = QtGui.QPainterPathStroker()
        stroker.setWidth(HIT_WIDTH_PX * (self.pixelLength(pg.Point(1, 0)) or 1.0))
        return stroker.createStroke(path)

    def boundingRect(self) -> QtCore.QRectF:
        return self.shape().boundingRect()

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()  # the grab width is in screen pixels


class _BoxROI(pg.ROI):
    """An upright ellipse or rectangle in scene mm with a scale handle at each corner (the
    opposite corner stays put), so every corner is editable, not only pyqtgraph's one."""

    def __init__(self, ellipse: bool, corners: list[QtCore.QPointF]) -> None:
        super().__init__(
            (0, 0), (1, 1), pen=PEN, hoverPen=HOVER_PEN, handlePen=HANDLE_PEN, rotatable=False
        )
        self.ellipse = ellipse
        for x, y in ((0, 0), (1, 0), (0, 1), (1, 1)):
            self.addScaleHandle((x, y), (1 - x, 1 - y))
        self.set_points(corners)

    def points(self) -> list[QtCore.QPointF]:
        w, h = self.state["size"]
        return [self.mapToParent(QtCore.QPointF(0, 0)), self.mapToParent(QtCore.QPointF(w, h))]

    def set_points(self, corners: list[QtCore.QPointF]) -> None:
        a, b = corners
        self.setPos(pg.Point(min(a.x(), b.x()), min(a.y(), b.y())), update=False)
        self.setSize(pg.Point(abs(b.x() - a.x()), abs(b.y() - a.y())), update=False)
        self.stateChanged(finish=False)

    def _rect(self) -> QtCore.QRectF:
        return QtCore.QRectF(0, 0, *self.state["size"])

    def paint(self, p: QtGui.QPainter, *args) -> None:
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        p.setPen(self.currentPen)
        (p.drawEllipse if self.ellipse else p.drawRect)(self._rect())

    def shape(self) -> QtGui.QPainterPath:
        path = QtGui.QPainterPath()
        (path.addEllipse if self.ellipse else path.addRect)(self._rect())
        return path

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect()


class MeasurementItem:
    """One measurement's outline, handles and label in one ViewBox. `on_moved(points_mm,
    final)` is called while the reader drags it (final=True once, at release), `on_clicked`
    when the reader clicks it."""

    def __init__(
        self,
        kind: str,
        points_mm: list[QtCore.QPointF],
        on_moved: Callable[[list[QtCore.QPointF], bool], None],
        on_clicked: Callable[[], None],
    ) -> None:
        self.kind = kind
        self.roi = (
            _BoxROI(kind == ELLIPSE, points_mm) if kind in ROI_KINDS else _PointsROI(points_mm)
        )
        self.roi.setZValue(Z)
        self.roi.setAcceptedMouseButtons(QtCore.Qt.MouseButton.LeftButton)
        self.text = pg.TextItem(color=TEXT_COLOUR, fill=TEXT_FILL)
        self.text.setZValue(Z + 1)
        self.roi.sigRegionChanged.connect(lambda _roi: on_moved(self.roi.points(), False))
        self.roi.sigRegionChangeFinished.connect(lambda _roi: on_moved(self.roi.points(), True))
        self.roi.sigClicked.connect(lambda _roi, _ev: on_clicked())

    def add_to(self, vb: pg.ViewBox) -> None:
        vb.addItem(self.roi, ignoreBounds=True)
        vb.addItem(self.text, ignoreBounds=True)

    def remove_from(self, vb: pg.ViewBox) -> None:
        vb.removeItem(self.roi)
        vb.removeItem(self.text)

    def points(self) -> list[QtCore.QPointF]:
        return self.roi.points()

    def set_points(self, points_mm: list[QtCore.QPointF]) -> None:
        """Redraw at these points without calling on_moved (the model moved, not the mouse)."""
        self.roi.blockSignals(True)
        try:
            self.roi.set_points(points_mm)
        finally:
            self.roi.blockSignals(False)
        self._place_text()

    def set_text(self, lines: list[str]) -> None:
        self.text.setText("\n".join(lines))
        self._place_text()

    def set_selected(self, selected: bool) -> None:
        self.roi.setPen(SELECTED_PEN if selected else PEN)

    def set_visible(self, visible: bool) -> None:
        self.roi.setVisible(visible)
        self.text.setVisible(visible)

    def is_visible(self) -> bool:
        return self.roi.isVisible()

    def _place_text(self) -> None:
        """Beside the shape where it hides the least and stays in view: right of a ruler or
        ROI (left of it near the view's right edge, over a ruler that spans the view),
        outside an angle's opening."""
        pts = self.roi.points()
        if self.kind == ANGLE:
            vertex = pts[1]
            opening = (pts[0] - vertex) + (pts[2] - vertex)
            self.text.setPos(vertex)
            if abs(opening.x()) >= abs(opening.y()):
                self.text.setAnchor((1.15, 0.5) if opening.x() > 0 else (-0.15, 0.5))
            else:  # scene y grows downwards on screen (invertY)
                self.text.setAnchor((0.5, 1.25) if opening.y() > 0 else (0.5, -0.25))
            return
        left, right = min(pts, key=lambda p: p.x()), max(pts, key=lambda p: p.x())
        vb = self.roi.getViewBox()
        x0, x1 = vb.viewRange()[0] if vb is not None else (left.x(), np.inf)
        box = self.kind in ROI_KINDS
        y = min(p.y() for p in pts) if box else None
        if right.x() < x0 + 0.75 * (x1 - x0):
            self.text.setPos(right.x(), right.y() if y is None else y)
            self.text.setAnchor((-0.04, 0) if box else (-0.1, 0.5))
        elif left.x() > x0 + 0.25 * (x1 - x0) or box:
            self.text.setPos(left.x(), left.y() if y is None else y)
            self.text.setAnchor((1.04, 0) if box else (1.1, 0.5))
        else:
            self.text.setPos((left + right) / 2)
            self.text.setAnchor((0.5, 1.3))

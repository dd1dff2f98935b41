"""Real input for GUI tests: wheel turns, mouse drags and grabs, sent the way a user's mouse
sends them, so pyqtgraph's scene turns them into its own drag and click events.

pyqtgraph drops mouse moves closer than 10 ms apart (its `mouseRateLimit`), and a press
that moves less than a few pixels within half a second is a click, not a drag: `drag`
waits between moves and moves far enough."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

Qt = QtCore.Qt
MOVE_GAP_MS = 15  # above pyqtgraph's 10 ms between mouse moves


def _point(pos) -> QtCore.QPointF:
    return QtCore.QPointF(pos) if not isinstance(pos, tuple) else QtCore.QPointF(*pos)


def _send_mouse(
    widget: QtWidgets.QWidget, kind, pos: QtCore.QPointF, button, buttons, modifiers
) -> None:
    glob = QtCore.QPointF(widget.mapToGlobal(pos.toPoint()))
    event = QtGui.QMouseEvent(kind, pos, glob, button, buttons, modifiers)
    QtWidgets.QApplication.sendEvent(widget, event)


def drag(
    widget: QtWidgets.QWidget,
    start,
    end,
    button=Qt.MouseButton.LeftButton,
    steps: int = 6,
    modifiers=Qt.KeyboardModifier.NoModifier,
) -> None:
    """Press at `start`, move in `steps` to `end`, release: widget (viewport) coordinates."""
    a, b = _point(start), _point(end)
    _send_mouse(widget, QtCore.QEvent.Type.MouseButtonPress, a, button, button, modifiers)
    for i in range(1, steps + 1):
        QTest.qWait(MOVE_GAP_MS)
        p = a + (b - a) * (i / steps)
        _send_mouse(
            widget, QtCore.QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button, modifiers
        )
    QTest.qWait(MOVE_GAP_MS)
    _send_mouse(
        widget, QtCore.QEvent.Type.MouseButtonRelease, b, button, Qt.MouseButton.NoButton, modifiers
    )


def wheel(
    widget: QtWidgets.QWidget, pos, notches: float = 1, modifiers=Qt.KeyboardModifier.NoModifier
) -> None:
    """Turn the wheel by `notches` (positive = away from the user, angleDelta 120 each)."""
    p = _point(pos)
    glob = QtCore.QPointF(widget.mapToGlobal(p.toPoint()))
    event = QtGui.QWheelEvent(
        p,
        glob,
        QtCore.QPoint(),
        QtCore.QPoint(0, round(120 * notches)),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QtWidgets.QApplication.sendEvent(widget, event)


def view_to_widget(graphics_view, view_box, x: float, y: float) -> QtCore.QPoint:
    """Where a point in a ViewBox's data coordinates lies on the GraphicsView's viewport."""
    scene = view_box.mapViewToScene(QtCore.QPointF(x, y))
    return graphics_view.mapFromScene(scene)


def grab_rgb(widget: QtWidgets.QWidget) -> np.ndarray:
    """The widget as drawn on screen, (rows, cols, 3) uint8."""
    image = widget.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
    h, w = image.height(), image.width()
    raw = np.frombuffer(image.constBits(), np.uint8, count=h * image.bytesPerLine())
    bgra = raw.reshape(h, image.bytesPerLine() // 4, 4)[:, :w]
    return bgra[..., 2::-1].copy()


def shown(qtbot, widget: QtWidgets.QWidget, width: int, height: int) -> QtWidgets.QWidget:
    """`widget` at this size on screen, closed by pytest-qt after the test."""
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget

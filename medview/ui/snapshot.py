"""Render one view of a volume to an image without a display: `medview snapshot`, key images
and the benchmarks all draw through the very SliceView the app shows, so a snapshot carries
the same pixels, corner text, orientation letters and scale bar as the screen (the issue:
"renders the same image without a display"). A second renderer would drift from the app.

The widget is shown with WA_DontShowOnScreen, so even with a display nothing flashes up, and
painted into a QImage of the exact size asked for (not widget.grab(), whose pixmap is scaled
by the screen's device pixel ratio on high-DPI displays)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.volume import Volume
from medview.core.windowing import Window
from medview.ui.slice_view import SliceView
from medview.viewer.layers import OverlayLayer
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState


def ensure_app() -> QtWidgets.QApplication:
    """The running QApplication, or a new one; on a Linux machine without X11 or Wayland
    (a server, CI, ssh) Qt is told to draw offscreen instead of aborting on a missing
    display. macOS and Windows always have a display platform."""
    app = QtWidgets.QApplication.instance()
    if app is not None:
        return app
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return pg.mkQApp("MedView")


def render_view(
    volume: Volume,
    plane: Plane,
    slice_index: int,
    *,
    window: Window | None = None,
    size: tuple[int, int] = (512, 512),
    overlays: bool = True,
    layers: Sequence[OverlayLayer] = (),
) -> QtGui.QImage:
    """`slice_index` (0-based) of `plane` drawn as the app draws it, fitted to `size`
    (width, height) pixels. `window` None keeps the series' opening window; `overlays`
    False leaves out corner text, orientation letters and scale bar. The crosshair is never
    drawn: it points at a place in linked views, and a key image has no other views."""
    app = ensure_app()
    state = ViewerState()
    state.set_volume(volume)
    state.set_crosshair_linked(False)
    state.show_overlays = overlays
    if window is not None:
        state.set_window(window.center, window.width, window.name)
    for layer in layers:
        state.add_layer(layer)
    state.set_slice(plane, slice_index)
    view = SliceView(state, plane)
    try:
        view.setAttribute(QtCore.Qt.WidgetAttribute.WA_DontShowOnScreen)
        view.resize(*size)
        view.show()
        app.processEvents()  # lays the ViewBox out at the final size before fitting
        view.fit()
        image = QtGui.QImage(size[0], size[1], QtGui.QImage.Format.Format_RGB32)
        image.fill(QtGui.QColor("black"))
        painter = QtGui.QPainter(image)
        try:
            view.render(painter)
        finally:
            painter.end()
        return image
    finally:
        view.close()
        view.deleteLater()


def png_bytes(image: QtGui.QImage) -> bytes:
    """The image encoded as PNG, ready for an atomic write."""
    buf = QtCore.QBuffer()
    buf.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, "PNG"):
        raise RuntimeError("Qt could not encode the image as PNG")
    return bytes(buf.data())

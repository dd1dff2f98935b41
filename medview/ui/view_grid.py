"""ViewGrid: the image area — one view, 1 x 3 (axial, coronal, sagittal) or 2 x 2.

The three SliceViews are made once and only moved between grid cells when the layout
changes; all of them draw the one ViewerState, so there is one copy of the volume however
many views show it. The fourth cell of 2 x 2 is a series card (what is open, its matrix and
spacing); that of "3d" is the 3D view (ui.volume_view), made the first time it is shown:
it imports VTK, which start-up never waits for.

While a series loads, each cell shows a loading page instead of its view, so the old series
is never mixed with the new one and a cancelled load leaves the old one exactly as it was;
the first slice to arrive is drawn in the native-plane cell at once. A series still arriving
from a PACS is shown there slice by slice (show_arriving): the reader scrolls through the
slices already here, and the steps come back as `loading_step`."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.series import SeriesInfo
from medview.core.volume import Volume
from medview.core.windowing import default_window
from medview.jobs.studies import FirstSlice
from medview.ui.settings import DEFAULT_LAYOUT, LAYOUTS
from medview.ui.slice_view import GREY, GREY_INVERTED, SliceView
from medview.viewer.planes import Plane, native_plane, plane_map
from medview.viewer.state import VOLUME, ViewerState

PLANES = (Plane.AXIAL, Plane.CORONAL, Plane.SAGITTAL)
WHEEL_NOTCH = 120  # angleDelta of one wheel notch
LOADING = "Loading…"
NO_VTK = "This MedView build has no 3D view: VTK, which draws it, is not installed."
_CELLS = {
    "1": {},
    "1x3": {Plane.AXIAL: (0, 0), Plane.CORONAL: (0, 1), Plane.SAGITTAL: (0, 2)},
    "2x2": {Plane.AXIAL: (0, 0), Plane.CORONAL: (0, 1), Plane.SAGITTAL: (1, 0), "card": (1, 1)},
    "3d": {Plane.AXIAL: (0, 0), Plane.CORONAL: (0, 1), Plane.SAGITTAL: (1, 0), "3d": (1, 1)},
}


def native_image(series: SeriesInfo, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """One acquired slice of `series` turned for the screen as its native-plane view shows
    it (radiological convention), with its (row, col) pixel size in mm on screen."""
    plane = native_plane(series.affine)
    pm = plane_map(series.affine, series.shape[:3], plane)
    return pm.image(image[None], 0), pm.pixel_mm


class _LoadingPage(pg.GraphicsView):
    """What a cell shows while its series loads: the first slice, if this is its plane."""

    painted = QtCore.Signal()  # a slice has been painted (start-up waits for it)
    stepped = QtCore.Signal(int)  # the reader scrolled or pressed Up / Down (slices)

    def __init__(self) -> None:
        super().__init__(background="k")
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.vb.setMouseEnabled(False, False)
        self.setCentralItem(self.vb)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image_item)
        self.text = LOADING
        self._wheel_rest = 0
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)

    def clear(self) -> None:
        self.image_item.clear()
        self.viewport().update()

    def show_image(self, series: SeriesInfo, image: np.ndarray) -> None:
        img, (row_mm, col_mm) = native_image(series, image)
        if img.ndim == 3:
            levels: tuple[float, float] = (0, 255)
        else:
            levels = default_window(series.modality, series.windows, img).bounds
        self.image_item.setImage(img, autoLevels=False, levels=levels)
        if img.ndim == 2:
            inverted = series.photometric == "MONOCHROME1"
            self.image_item.setLookupTable(GREY_INVERTED if inverted else GREY)
        self.image_item.setRect(QtCore.QRectF(0, 0, img.shape[1] * col_mm, img.shape[0] * row_mm))
        self.vb.autoRange(padding=0.0)
        self.viewport().update()

    def wheelEvent(self, ev: QtGui.QWheelEvent) -> None:
        """One slice a notch, as in SliceView (a touchpad's small deltas add up)."""
        delta = ev.angleDelta().y()
        if self._wheel_rest * delta < 0:
            self._wheel_rest = 0
        self._wheel_rest += delta
        notches = int(self._wheel_rest / WHEEL_NOTCH)
        self._wheel_rest -= notches * WHEEL_NOTCH
        if notches:
            self.stepped.emit(-notches)
        ev.accept()

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        Key = QtCore.Qt.Key
        steps = {Key.Key_Up: -1, Key.Key_Down: 1, Key.Key_PageUp: -10, Key.Key_PageDown: 10}
        if ev.key() in steps:
            self.stepped.emit(steps[ev.key()])
        else:
            super().keyPressEvent(ev)

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:
        super().paintEvent(ev)
        if self.image_item.image is not None:
            self.painted.emit()

    def drawForeground(self, painter: QtGui.QPainter, rect) -> None:
        painter.save()
        painter.resetTransform()
        painter.setPen(QtGui.QColor(230, 230, 200))
        painter.drawText(8, 8 + painter.fontMetrics().ascent(), self.text)
        painter.restore()


class _VolumeCell(QtWidgets.QWidget):
    """The 3D layout's fourth cell: empty until it is shown with a volume open, then the
    3D view, so neither start-up (whose first image comes before any volume, even with the
    3D layout saved) nor the other layouts import VTK."""

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.view: QtWidgets.QWidget | None = None
        QtWidgets.QVBoxLayout(self).setContentsMargins(0, 0, 0, 0)
        state.subscribe(self._on_state)

    def _on_state(self, what: str) -> None:
        if what == VOLUME and self.isVisible():
            self._build_soon()

    def showEvent(self, ev: QtGui.QShowEvent) -> None:
        super().showEvent(ev)
        self._build_soon()

    def _build_soon(self) -> None:
        if self.view is None and self.state.volume is not None:
            QtCore.QTimer.singleShot(0, self, self.build)

    def build(self) -> None:
        if self.view is not None:
            return
        try:
            from medview.ui.volume_view import volume_view  # VTK: only for this layout
        except ModuleNotFoundError as error:
            if not (error.name or "").startswith("vtk"):
                raise
            # a desktop bundle built without VTK (packaging/README.md, MEDVIEW_BUNDLE_VTK)
            self.view = QtWidgets.QLabel(NO_VTK, wordWrap=True)
            self.view.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        else:
            self.view = volume_view(self.state)
        self.layout().addWidget(self.view)


class ViewGrid(QtWidgets.QWidget):
    focus_changed = QtCore.Signal(object)  # Plane
    slice_painted = QtCore.Signal()  # a loading page has painted its slice
    loading_step = QtCore.Signal(int)  # the reader stepped through an arriving series

    def __init__(self, state: ViewerState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._views = {p: SliceView(state, p) for p in PLANES}
        self._pages = {p: _LoadingPage() for p in PLANES}
        self._cells: dict[object, QtWidgets.QWidget] = {}
        for p in PLANES:
            stack = QtWidgets.QStackedWidget()
            stack.addWidget(self._views[p])
            stack.addWidget(self._pages[p])
            self._cells[p] = stack
            self._views[p].activated.connect(self._on_activated)
            self._pages[p].painted.connect(self.slice_painted)
            self._pages[p].stepped.connect(self.loading_step)
        self.card = QtWidgets.QLabel(
            "No series open.\n\nOpen a folder, a DICOMDIR, a zip or an "
            "image file from the File menu, or drop it here."
        )
        self.card.setObjectName("placeholder")
        self.card.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.card.setWordWrap(True)
        self._cells["card"] = self.card
        self.volume_cell = _VolumeCell(state)
        self._cells["3d"] = self.volume_cell
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self._layout = ""
        self._focused = Plane.AXIAL
        self._arriving = False
        self.set_layout(DEFAULT_LAYOUT)

    # -- views
    @property
    def views(self) -> list[SliceView]:
        return [self._views[p] for p in PLANES]

    def view(self, plane: Plane) -> SliceView:
        return self._views[plane]

    @property
    def focused_view(self) -> SliceView:
        return self._views[self._focused]

    @property
    def layout_name(self) -> str:
        return self._layout

    def set_layout(self, name: str) -> None:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; one of {', '.join(LAYOUTS)}")
        self._layout = name
        cells = _CELLS[name] or {self._focused: (0, 0)}
        for widget in self._cells.values():
            self._grid.removeWidget(widget)
        for i in range(3):
            self._grid.setRowStretch(i, 0)
            self._grid.setColumnStretch(i, 0)
        for key, (row, col) in cells.items():
            self._grid.addWidget(self._cells[key], row, col)
            self._grid.setRowStretch(row, 1)
            self._grid.setColumnStretch(col, 1)
        for key, widget in self._cells.items():  # after addWidget, which reparents
            widget.setVisible(key in cells)
        # cells change size once the layout has run: then show each image whole in its cell
        QtCore.QTimer.singleShot(0, self, self.fit_all)

    def set_focused(self, plane: Plane) -> None:
        """The view keys go to, and the one the single-view layout shows."""
        changed = plane != self._focused
        self._focused = plane
        if self._layout == "1" and changed:
            self.set_layout("1")
        if self._views[plane].isVisible():
            self._views[plane].setFocus()
        if changed:
            self.focus_changed.emit(plane)

    def _on_activated(self, plane: Plane) -> None:
        if plane != self._focused:
            self._focused = plane
            self.focus_changed.emit(plane)

    def show_card(self, volume: Volume | None, series: SeriesInfo | None) -> None:
        """The fourth cell of 2 x 2: what is open, in the numbers a reader checks first."""
        if volume is None:
            self.card.setText("No series open.")
            return
        md = volume.metadata
        s, r, c = volume.shape
        ds, dr, dc = volume.spacing_mm
        lines = [
            f"{md.modality} {md.series_description}".strip(),
            f"{c} x {r} pixels, {s} slices",
            f"pixels {dc:.3g} x {dr:.3g} mm, slices every {ds:.3g} mm",
            f"{len(md.warnings)} warning(s)" if md.warnings else "no warnings",
        ]
        if series is not None and series.stack_label:
            lines.insert(1, series.stack_label)
        self.card.setText("\n".join(lines) + "\n\n(3D: View > Layout > 2 x 2 with 3D)")

    def fit_all(self) -> None:
        for view in self.views:
            view.fit()

    # -- loading
    @property
    def loading(self) -> bool:
        return any(self._cells[p].currentIndex() == 1 for p in PLANES)

    def show_loading(self, series: SeriesInfo | None) -> None:
        """Cover every view with its loading page until end_loading()."""
        self._arriving = False
        if series is not None:
            self.set_focused(native_plane(series.affine))
        for p in PLANES:
            self._pages[p].clear()
            self._pages[p].text = LOADING
            self._cells[p].setCurrentIndex(1)

    def show_first_slice(self, series: SeriesInfo, first: FirstSlice) -> None:
        self._pages[native_plane(series.affine)].show_image(series, first.image)

    def show_preview(self, series: SeriesInfo, image: np.ndarray) -> None:
        """Loading pages with `image` (one slice of `series`) drawn in its native-plane cell:
        what the window shows while the study it belongs to is scanned."""
        self.show_loading(series)
        self._pages[native_plane(series.affine)].show_image(series, image)

    @property
    def arriving(self) -> bool:
        """Whether the loading pages still show a series arriving (show_arriving), not
        something opened since."""
        return self._arriving and self.loading

    def show_arriving(self, series: SeriesInfo, image: np.ndarray, text: str) -> None:
        """One slice of a series still arriving (`series`: that slice's own) in its
        native-plane cell with `text`; the first call covers the views with loading pages."""
        if not self.arriving:
            self.show_loading(series)
            self._arriving = True
        page = self._pages[native_plane(series.affine)]
        page.text = text
        page.show_image(series, image)

    def set_arriving_text(self, text: str) -> None:
        """New words over the arriving slice drawn already (show_arriving)."""
        for page in self._pages.values():
            if page.image_item.image is not None:
                page.text = text
                page.viewport().update()

    def end_loading(self) -> None:
        self._arriving = False
        for p in PLANES:
            self._cells[p].setCurrentIndex(0)
            self._pages[p].clear()
        if self._views[self._focused].isVisible():
            self._views[self._focused].setFocus()

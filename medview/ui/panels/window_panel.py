"""WindowPanel: window/level of the open volume — a histogram with draggable level lines,
presets, W and L boxes, invert, and the cine rate — all two-way bound to ViewerState.

The histogram is a curve with a LinearRegionItem rather than pyqtgraph's
HistogramLUTItem, which owns the image levels itself and would fight the state. Its
x-range always takes in the current window as well as the data, so a lung window
(-1350..150 HU) is never clipped to the data range (docs/development.md: a slider bound to the data
range clips it). The histogram is computed once per volume from a strided sample, never
on a slice change, so the panel costs nothing while scrolling."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.volume import Volume
from medview.core.windowing import CT_PRESETS, Window, auto_window
from medview.ui.slab_control import SlabControl
from medview.ui.slice_view import SliceView
from medview.viewer import state as st
from medview.viewer.state import ViewerState

HISTOGRAM_SAMPLES = 1_000_000  # ~10 ms for np.histogram
HISTOGRAM_BINS = 256
REGION_BRUSH = (255, 200, 0, 45)
LINE_PEN = pg.mkPen((255, 200, 0), width=2)
LINE_HOVER_PEN = pg.mkPen((255, 240, 120), width=3)
RAMP_PEN = pg.mkPen((230, 230, 200, 200), width=1, style=QtCore.Qt.PenStyle.DashLine)
CUSTOM = "Custom"


def volume_histogram(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bin edges, log10(1 + count)) of a strided sample of `array`. Log counts, because the
    air and soft-tissue peaks of a CT would otherwise flatten everything else."""
    flat = array.reshape(-1)
    sample = flat[:: max(1, flat.size // HISTOGRAM_SAMPLES)]
    lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(sample, bins=HISTOGRAM_BINS, range=(lo, hi))
    return edges, np.log10(1.0 + counts)


def _presets(volume: Volume, auto: Window) -> list[tuple[str, Window]]:
    """Menu entries: the file's own windows, the CT presets (with their number keys) for CT,
    and the automatic window from the histogram."""
    md = volume.metadata
    items = [
        (f"File{f' {i}' if len(md.windows) > 1 else ''}: W {w:g} / L {c:g}", Window(c, w, "File"))
        for i, (c, w) in enumerate(md.windows, start=1)
    ]
    if md.modality == "CT":
        items += [
            (f"{k}  {p.name}  W {p.width:g} / L {p.center:g}", p)
            for k, p in enumerate(CT_PRESETS, start=1)
        ]
    items.append((f"Auto  W {auto.width:.4g} / L {auto.center:.4g}", auto))
    return items


def _decimals(span: float) -> int:
    """Decimals the W/L boxes need: none for HU, some for PET SUV or normalised MR."""
    return 0 if span >= 100 else 2 if span >= 1 else 4


class WindowPanel(QtWidgets.QWidget):
    """Window/level and cine controls for one ViewerState; `views` are the SliceViews whose
    cine it drives (the one last focused plays)."""

    def __init__(
        self,
        state: ViewerState,
        views: list[SliceView] | None = None,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.views = list(views or [])
        self._active = self.views[0] if self.views else None
        self._syncing = False  # True while the widgets are set from the state
        self._data_range = (0.0, 1.0)
        self._y_top = 1.0  # top of the histogram's y-range
        self.preset_windows: list[Window | None] = []  # per combo entry; None = Custom
        self._build()
        for view in self.views:
            view.activated.connect(self._on_view_activated)
            view.cine_toggled.connect(self._show_cine)
        state.subscribe(self._on_state)
        self._on_state(st.VOLUME)

    # -- construction
    def _build(self) -> None:
        base = self.palette().color(QtGui.QPalette.ColorRole.Base)
        # a bare GraphicsView + ViewBox + axis, not a PlotWidget: PlotItem's parentless
        # context menus are a known source of PySide6 crashes (pyqtgraph #2497, #2520)
        self.plot = pg.GraphicsView(background=base)
        self.plot.setMinimumHeight(120)
        layout = pg.GraphicsLayout()
        self.plot.setCentralItem(layout)
        self.vb = pg.ViewBox(enableMenu=False)
        self.vb.setMouseEnabled(x=False, y=False)
        self.vb.disableAutoRange()
        axis = pg.AxisItem("bottom")
        axis.linkToView(self.vb)
        axis.setStyle(tickLength=-4)
        layout.addItem(self.vb, 0, 0)
        layout.addItem(axis, 1, 0)
        self.curve = pg.PlotCurveItem(
            fillLevel=0, pen=pg.mkPen((150, 150, 150)), brush=(110, 110, 110, 160)
        )
        self.ramp = pg.PlotCurveItem(pen=RAMP_PEN)  # the grey ramp the window applies
        self.vb.addItem(self.curve)
        self.vb.addItem(self.ramp)
        self.region = pg.LinearRegionItem(
            brush=REGION_BRUSH, pen=LINE_PEN, hoverPen=LINE_HOVER_PEN, swapMode="block"
        )
        self.region.setZValue(10)
        self.vb.addItem(self.region, ignoreBounds=True)
        self.region.sigRegionChanged.connect(self._on_region)
        self.region.sigRegionChangeFinished.connect(self._fit_range)

        self.presets = QtWidgets.QComboBox()
        self.presets.setToolTip("Window presets; number keys 1-9 in a view pick them too")
        self.presets.activated.connect(self._on_preset)
        self.width_box, self.level_box = QtWidgets.QDoubleSpinBox(), QtWidgets.QDoubleSpinBox()
        for box, lo, tip in (
            (self.width_box, 1.0, "Window width"),
            (self.level_box, -1e6, "Window level (centre)"),
        ):
            box.setRange(lo, 1e6)
            box.setKeyboardTracking(False)  # apply on Enter / arrows, not per digit typed
            box.setToolTip(tip)
        self.width_box.valueChanged.connect(self._on_width)
        self.level_box.valueChanged.connect(self._on_level)
        self.invert_box = QtWidgets.QCheckBox("Invert")
        self.invert_box.setToolTip("Invert the grey scale (key I)")
        self.invert_box.toggled.connect(self._on_invert)
        self.fps_box = QtWidgets.QSpinBox()
        self.fps_box.setRange(1, 60)
        self.fps_box.setSuffix(" fps")
        self.fps_box.setToolTip("Cine frame rate")
        self.fps_box.setValue(self._active.cine_fps if self._active else 15)
        self.fps_box.valueChanged.connect(self._on_fps)
        self.play_button = QtWidgets.QPushButton("Play")
        self.play_button.setToolTip("Cine through the focused view's slices (key Space)")
        self.play_button.clicked.connect(self._on_play)
        for w in (self.fps_box, self.play_button):
            w.setEnabled(bool(self.views))

        form = QtWidgets.QGridLayout()
        form.addWidget(QtWidgets.QLabel("Preset"), 0, 0)
        form.addWidget(self.presets, 0, 1, 1, 3)
        form.addWidget(QtWidgets.QLabel("W"), 1, 0)
        form.addWidget(self.width_box, 1, 1)
        form.addWidget(QtWidgets.QLabel("L"), 1, 2)
        form.addWidget(self.level_box, 1, 3)
        form.addWidget(self.invert_box, 2, 1)
        form.addWidget(QtWidgets.QLabel("Cine"), 3, 0)
        form.addWidget(self.fps_box, 3, 1)
        form.addWidget(self.play_button, 3, 2, 1, 2)
        self.slab = SlabControl(self.state)
        form.addWidget(QtWidgets.QLabel("Slab"), 4, 0)
        form.addWidget(self.slab, 4, 1, 1, 3)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.plot, 1)
        layout.addLayout(form)
        layout.addWidget(self.note)

    # -- state -> widgets
    def _on_state(self, what: str) -> None:
        if what == st.VOLUME:
            self._load_volume()
        elif what == st.WINDOW and self._windowed():
            self._show_window()

    def _windowed(self) -> bool:
        v = self.state.volume
        return v is not None and v.windowed

    def _load_volume(self) -> None:
        v = self.state.volume
        windowed = self._windowed()
        for w in (self.plot, self.presets, self.width_box, self.level_box):
            w.setEnabled(windowed)
        self.invert_box.setEnabled(v is not None and not v.is_colour)
        self.note.setText(
            ""
            if v is None or not v.is_colour
            else f"Colour image of {8 * v.array.itemsize}-bit values: window/level "
            f"applies to all three channels."
            if windowed
            else "Colour image: window/level does not apply."
        )
        self.note.setVisible(bool(self.note.text()))
        self.presets.clear()
        self.preset_windows = []
        if not windowed:
            self.curve.clear()
            self.ramp.clear()
            return
        edges, counts = volume_histogram(v.array)
        self.curve.setData(edges, counts, stepMode="center")
        self._y_top = float(counts.max()) * 1.05 or 1.0
        self.vb.setYRange(0, self._y_top, padding=0)
        self._data_range = (float(edges[0]), float(edges[-1]))
        # the boxes reach past the data: 32-bit RGB runs to 4.3e9, beyond a CT's 1e6
        reach = max(1e6, 4 * max(abs(self._data_range[0]), abs(self._data_range[1])))
        self.width_box.setMaximum(reach)
        self.level_box.setRange(-reach, reach)
        decimals = _decimals(self._data_range[1] - self._data_range[0])
        step = max((self._data_range[1] - self._data_range[0]) / 200, 10.0**-decimals)
        for box in (self.width_box, self.level_box):
            box.setDecimals(decimals)
            box.setSingleStep(float(f"{step:.1g}"))
        # windows kept beside the combo, not as item data: a Python object in a combo's
        # QVariant crashed PySide6 6.11 on a later repaint
        entries = [(CUSTOM, None), *_presets(v, auto_window(v.array))]
        self.presets.addItems([text for text, _ in entries])
        self.preset_windows = [window for _, window in entries]
        self._show_window()
        self._fit_range()

    def _show_window(self) -> None:
        w = self.state.window
        lo, hi = w.bounds
        self._syncing = True
        try:
            self.region.setRegion((lo, hi))
            self.width_box.setValue(w.width)
            self.level_box.setValue(w.center)
            self.invert_box.setChecked(self.state.invert)
            match = next((i for i, p in enumerate(self.preset_windows) if _same(p, w)), 0)
            self.presets.setCurrentIndex(match)
        finally:
            self._syncing = False
        self._draw_ramp()
        if not self._dragging():
            self._fit_range()

    def _draw_ramp(self) -> None:
        """The grey level each value gets: 0 below the window, full above (reversed when
        inverted), scaled to the plot's height."""
        lo, hi = self.state.window.bounds
        x0, x1 = min(self._data_range[0], lo), max(self._data_range[1], hi)
        x0, x1 = x0 - (x1 - x0), x1 + (x1 - x0)  # past the plot's edges, not to infinity:
        # a dashed line a billion units long takes Qt a second to draw
        y = np.array([0.0, 0.0, 1.0, 1.0]) * self._y_top
        self.ramp.setData([x0, lo, hi, x1], y[::-1] if self.state.invert else y)

    def _dragging(self) -> bool:
        return self.region.moving or any(line.moving for line in self.region.lines)

    def _fit_range(self) -> None:
        """x-range: the data and the window, whichever reaches further, plus a margin."""
        if self._syncing or not self._windowed():
            return
        lo, hi = self.state.window.bounds
        lo, hi = min(lo, self._data_range[0]), max(hi, self._data_range[1])
        self.vb.setXRange(lo, hi, padding=0.04)

    # -- widgets -> state
    def _on_region(self) -> None:
        if self._syncing or not self._windowed():
            return
        lo, hi = self.region.getRegion()
        if hi - lo < 1.0:  # the lines met: keep the one not dragged, as the state keeps W >= 1
            if self.region.lines[0].moving:
                lo = hi - 1.0
            else:
                hi = lo + 1.0
        self.state.set_window((lo + hi) / 2, hi - lo, CUSTOM)

    def _on_preset(self, index: int) -> None:
        window = self.preset_windows[index] if 0 <= index < len(self.preset_windows) else None
        if window is not None:
            self.state.set_window(window.center, window.width, window.name)

    # each box changes its own value only: the other box shows a rounded one
    def _on_width(self, width: float) -> None:
        if not self._syncing and self._windowed():
            self.state.set_window(self.state.window.center, width, CUSTOM)

    def _on_level(self, level: float) -> None:
        if not self._syncing and self._windowed():
            self.state.set_window(level, self.state.window.width, CUSTOM)

    def _on_invert(self, checked: bool) -> None:
        if not self._syncing and self._windowed() and checked != self.state.invert:
            self.state.toggle_invert()

    # -- cine
    def _on_view_activated(self, _plane: object) -> None:
        view = self.sender()
        if isinstance(view, SliceView):
            self._active = view

    def _on_fps(self, fps: int) -> None:
        for view in self.views:
            view.cine_fps = fps

    def _on_play(self) -> None:
        """Stop whatever cine runs; when none runs, play the focused view."""
        running = [view for view in self.views if view.cine_running]
        for view in running:
            view.toggle_cine()
        if not running and self._active is not None and self.state.volume is not None:
            self._active.toggle_cine()

    def _show_cine(self, _running: bool) -> None:
        running = any(view.cine_running for view in self.views)
        self.play_button.setText("Stop" if running else "Play")


def _same(a: Window | None, b: Window) -> bool:
    return a is not None and abs(a.center - b.center) < 1e-6 and abs(a.width - b.width) < 1e-6

"""LabelToolBox: the label tools and their settings — which tool paints, how big, which HU.

Buttons for the five tools (brush, eraser, threshold brush, fill, lasso), each with its key
in the tooltip, and one for the window/level drag to get the mouse back for reading; the
brush shape (2D disc on the slice shown, or 3D sphere); the size in millimetres (a slider
for the hand and a spin box for the exact number, kept in step); the HU range of the
threshold brush with presets from the CT windows ("Lung" paints -1350..150 HU, "Current
window" what the reader is looking at); and the HU tolerance of the fill. Settings that do
not apply to the chosen tool are disabled, not hidden, so the box never jumps.

The box holds no state of its own beyond its widgets: `changed` carries the whole setting
as a dict with ToolSettings' field names, and `show_settings` puts one back (a series with
its own tool settings, or a key that picked a tool)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtWidgets

from medview.core.windowing import CT_PRESETS, Window

# (tool name, button text, tooltip with its key)
TOOLS = (
    ("brush", "Brush", "Paint the selected segment (B)"),
    ("eraser", "Eraser", "Erase the selected segment (E)"),
    ("threshold", "Threshold", "Paint only voxels inside the HU range (T)"),
    ("fill", "Fill", "Fill the connected region within the tolerance of the voxel clicked (G)"),
    ("lasso", "Lasso", "Draw around a region to fill it on this slice (L)"),
)
NAVIGATE = "wl"  # no label tool: left-drag is window / level again
SIZE_RANGE_MM = (0.5, 100.0)
SLIDER_STEPS = 200  # the slider is logarithmic: fine steps for small brushes
HU_RANGE = (-3000, 4000)
CURRENT_WINDOW = "Current window"
BUTTON_STYLE = "QToolButton:checked { background: #3d6fa8; color: white; }"


def _log_slider(mm: float) -> int:
    lo, hi = SIZE_RANGE_MM
    return round(SLIDER_STEPS * math.log(mm / lo) / math.log(hi / lo))


def _slider_mm(step: int) -> float:
    lo, hi = SIZE_RANGE_MM
    return round(lo * (hi / lo) ** (step / SLIDER_STEPS), 1)


class LabelToolBox(QtWidgets.QWidget):
    changed = QtCore.Signal(object)  # {"name", "radius_mm", "sphere", "hu_range", "tolerance_hu"}

    def __init__(
        self, window: Callable[[], Window], parent: QtWidgets.QWidget | None = None
    ) -> None:
        """`window()` gives the reader's current window (the "Current window" preset)."""
        super().__init__(parent)
        self._window = window
        self._syncing = False
        self.buttons: dict[str, QtWidgets.QToolButton] = {}
        self.group = QtWidgets.QButtonGroup(self)
        tools = QtWidgets.QGridLayout()  # two rows of three: fits a 340-pixel dock
        tools.setSpacing(2)
        for i, (name, text, tip) in enumerate(
            ((NAVIGATE, "W/L", "Back to reading: left-drag sets window and level (W)"), *TOOLS)
        ):
            button = QtWidgets.QToolButton(text=text, checkable=True, toolTip=tip)
            button.setSizePolicy(
                QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed
            )
            button.clicked.connect(self._emit)
            self.group.addButton(button)
            tools.addWidget(button, i // 3, i % 3)
            self.buttons[name] = button
        self.buttons[NAVIGATE].setChecked(True)
        self.setStyleSheet(BUTTON_STYLE)

        self.sphere = QtWidgets.QComboBox(
            toolTip="2D: a disc on the slice shown; 3D: a sphere through the neighbouring slices"
        )
        self.sphere.addItems(["2D disc", "3D sphere"])
        self.sphere.activated.connect(self._emit)
        self.size_slider = QtWidgets.QSlider(
            QtCore.Qt.Orientation.Horizontal, toolTip="Brush diameter"
        )
        self.size_slider.setRange(0, SLIDER_STEPS)
        self.size = QtWidgets.QDoubleSpinBox(
            suffix=" mm", decimals=1, singleStep=0.5, toolTip="Brush diameter in millimetres"
        )
        self.size.setRange(*SIZE_RANGE_MM)
        self.size_slider.valueChanged.connect(self._on_slider)
        self.size.valueChanged.connect(self._on_size)

        self.hu_low = _hu_box("Lowest HU the threshold brush paints")
        self.hu_high = _hu_box("Highest HU the threshold brush paints")
        self.hu_low.valueChanged.connect(self._emit)
        self.hu_high.valueChanged.connect(self._emit)
        self.presets = QtWidgets.QComboBox(toolTip="Take the HU range from a window preset")
        self.presets.addItem("Presets…")
        self.presets.addItem(CURRENT_WINDOW)
        for w in CT_PRESETS:
            lo, hi = w.bounds
            self.presets.addItem(f"{w.name}  ({lo:g} … {hi:g})", w)
        self.presets.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.presets.setMinimumContentsLength(5)
        self.presets.activated.connect(self._on_preset)
        self.tolerance = QtWidgets.QSpinBox(
            suffix=" HU",
            toolTip="Fill takes the connected voxels within this many HU of the one clicked",
        )
        self.tolerance.setRange(0, 2000)
        self.tolerance.valueChanged.connect(self._emit)

        form = QtWidgets.QGridLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addWidget(QtWidgets.QLabel("Size"), 0, 0)
        form.addWidget(self.size_slider, 0, 1, 1, 2)
        form.addWidget(self.size, 0, 3)
        form.addWidget(QtWidgets.QLabel("Shape"), 1, 0)
        form.addWidget(self.sphere, 1, 1, 1, 3)
        form.addWidget(QtWidgets.QLabel("HU"), 2, 0)
        form.addWidget(self.hu_low, 2, 1)
        form.addWidget(self.hu_high, 2, 2)
        form.addWidget(self.presets, 2, 3)
        form.addWidget(QtWidgets.QLabel("Fill ±"), 3, 0)
        form.addWidget(self.tolerance, 3, 1, 1, 2)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(2, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        layout.addLayout(form)
        self.show_settings(
            {
                "name": NAVIGATE,
                "radius_mm": 2.5,
                "sphere": False,
                "hu_range": (-100.0, 300.0),
                "tolerance_hu": 50.0,
            }
        )

    # -- settings <-> widgets
    def settings(self) -> dict[str, Any]:
        name = next((n for n, b in self.buttons.items() if b.isChecked()), NAVIGATE)
        lo, hi = sorted((self.hu_low.value(), self.hu_high.value()))
        return {
            "name": name,
            "radius_mm": self.size.value() / 2,
            "sphere": self.sphere.currentIndex() == 1,
            "hu_range": (float(lo), float(hi)),
            "tolerance_hu": float(self.tolerance.value()),
        }

    def show_settings(self, settings: dict[str, Any]) -> None:
        """Put these settings in the widgets without emitting `changed`."""
        self._syncing = True
        try:
            self.buttons.get(settings.get("name", NAVIGATE), self.buttons[NAVIGATE]).setChecked(
                True
            )
            if "radius_mm" in settings:
                self.size.setValue(2 * float(settings["radius_mm"]))
                self.size_slider.setValue(_log_slider(self.size.value()))
            if "sphere" in settings:
                self.sphere.setCurrentIndex(1 if settings["sphere"] else 0)
            if "hu_range" in settings:
                lo, hi = settings["hu_range"]
                self.hu_low.setValue(round(lo))
                self.hu_high.setValue(round(hi))
            if "tolerance_hu" in settings:
                self.tolerance.setValue(round(settings["tolerance_hu"]))
        finally:
            self._syncing = False
        self._enable()

    def pick(self, name: str) -> None:
        """Choose a tool (a key or a menu): as a click on its button."""
        self.buttons[name].setChecked(True)
        self._emit()

    def grow(self, factor: float) -> None:
        """Brush size up (factor > 1) or down, as the [ and ] keys do."""
        self.size.setValue(self.size.value() * factor)

    def _enable(self) -> None:
        name = self.settings()["name"]
        brushes = name in ("brush", "eraser", "threshold")
        for widget in (self.size, self.size_slider, self.sphere):
            widget.setEnabled(brushes)
        for widget in (self.hu_low, self.hu_high, self.presets):
            widget.setEnabled(name == "threshold")
        self.tolerance.setEnabled(name == "fill")

    # -- widget -> settings
    def _emit(self, *_: Any) -> None:
        self._enable()
        if not self._syncing:
            self.changed.emit(self.settings())

    def _on_slider(self, step: int) -> None:
        if not self._syncing:
            self.size.setValue(_slider_mm(step))

    def _on_size(self, mm: float) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.size_slider.setValue(_log_slider(mm))
        self._syncing = False
        self._emit()

    def _on_preset(self, index: int) -> None:
        if index <= 0:
            return
        window: Window = self.presets.itemData(index) or self._window()
        lo, hi = window.bounds
        self._syncing = True
        self.hu_low.setValue(round(lo))
        self.hu_high.setValue(round(hi))
        self._syncing = False
        self.presets.setCurrentIndex(0)
        self._emit()


def _hu_box(tip: str) -> QtWidgets.QSpinBox:
    box = QtWidgets.QSpinBox(toolTip=tip + " (type it, or turn the wheel over it)")
    box.setButtonSymbols(QtWidgets.QAbstractSpinBox.ButtonSymbols.NoButtons)
    box.setRange(*HU_RANGE)
    return box

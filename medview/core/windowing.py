"""Window/level values: the file's own, the standard CT presets, and an automatic window.

Preset values (W/L in HU) are those radiology viewers share (OHIF, RadiAnt, Horos; see
docs/development.md, "Qt and pyqtgraph")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    name: str = ""

    # Narrowest window allowed: DICOM says width >= 1 for stored integers, but MR and PET
    # volumes in float (0..1 normalised, SUV) need far narrower ones.
    MIN_WIDTH = 1e-6

    @property
    def bounds(self) -> tuple[float, float]:
        """Display levels (low, high) for this window; width is kept at least 1."""
        half = max(self.width, self.MIN_WIDTH) / 2.0
        return self.center - half, self.center + half


CT_PRESETS: tuple[Window, ...] = (
    Window(-600, 1500, "Lung"),
    Window(50, 350, "Mediastinum"),
    Window(500, 2000, "Bone"),
    Window(40, 80, "Brain"),
    Window(75, 200, "Subdural"),
    Window(40, 40, "Stroke"),
    Window(40, 400, "Abdomen"),
    Window(90, 150, "Liver"),
)


def auto_window(
    array: np.ndarray, low_pct: float = 0.1, high_pct: float = 99.9, max_samples: int = 1_000_000
) -> Window:
    """Window spanning the 0.1–99.9 percentiles (as 3D Slicer's auto W/L), estimated from a
    strided sample so it stays fast on whole volumes."""
    flat = array.reshape(-1)
    step = max(1, flat.size // max_samples)
    sample = flat[::step]
    if sample.size == 0:
        return Window(0.0, 1.0, "Auto")
    lo, hi = np.percentile(sample, [low_pct, high_pct])
    floor = 1.0 if sample.dtype.kind in "iub" else Window.MIN_WIDTH
    width = max(float(hi - lo), floor)
    return Window(float(lo) + width / 2.0, width, "Auto")


def colour_window(array: np.ndarray) -> Window:
    """The window an RGB image opens with: 0..255 for 8 bits; deeper RGB spans the full
    range of the bits its values use (0..65535 for 16-bit RGB that reaches the top, 0..4095
    for 12 bits stored), so its colours look as the 8-bit twin's."""
    if array.dtype == np.uint8 or array.size == 0:
        return Window(127.5, 255.0, "Colour")
    top = float((1 << int(array.max()).bit_length()) - 1) or 1.0
    return Window(top / 2.0, top, "Colour")


def default_window(
    modality: str, file_windows: list[tuple[float, float]], array: np.ndarray | None = None
) -> Window:
    """The window a series opens with: the file's own first, then a modality default."""
    if file_windows:
        c, w = file_windows[0]
        return Window(c, w, "File")
    if modality == "CT":
        return Window(40, 400, "Abdomen")
    if array is not None:
        return auto_window(array)
    return Window(0.0, 1.0, "Auto")

"""Overlay layers drawn over the image in every plane: label maps and probability heatmaps.

Arrays share the image volume's (slice, row, col) grid, so the plane maps that cut the image
cut the overlays the same way (as views, no copies)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Colours for label values 1.. (0 is transparent): distinct, readable on grey.
LABEL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
)
# pyqtgraph's own map names (pg.colormap.get): CET-L3 is the black-red-yellow-white "hot"
# map; matplotlib's "hot" is not among the maps pyqtgraph ships
COLOUR_MAPS = ("CET-L3", "viridis", "inferno", "plasma", "magma", "CET-L17")


@dataclass
class OverlayLayer:
    name: str
    array: np.ndarray  # labels: uint8 values; heatmap: probabilities 0..1 (any float/uint8)
    kind: str = "labels"  # "labels" or "heatmap"
    visible: bool = True
    opacity: float = 0.5
    colour_map: str = COLOUR_MAPS[0]  # heatmaps only
    # heatmaps: probabilities below this are not drawn
    threshold: float = 0.1
    label_colours: dict[int, tuple[int, int, int]] = field(default_factory=dict)

    def colour_of(self, value: int) -> tuple[int, int, int]:
        return self.label_colours.get(value, LABEL_COLOURS[(value - 1) % len(LABEL_COLOURS)])

    def label_lut(self) -> np.ndarray:
        """256 x 4 RGBA table for label values; value 0 fully transparent."""
        lut = np.zeros((256, 4), np.uint8)
        for v in range(1, 256):
            lut[v, :3] = self.colour_of(v)
            lut[v, 3] = 255
        return lut

    def heat_scale(self) -> float:
        """Value that stands for probability 1 (uint8 heatmaps store 0..255)."""
        return 255.0 if self.array.dtype == np.uint8 else 1.0

"""FastImageItem must draw exactly what pyqtgraph's ImageItem draws, for every memory layout
a plane map hands it (views with negative strides, transposed views), while keeping the HU
data and the levels on the item."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtGui

from medview.ui.fast_image_item import FastImageItem
from medview.viewer.layers import OverlayLayer

GREY = np.arange(256, dtype=np.uint8)
RNG = np.random.default_rng(4)
CT = RNG.integers(-32768, 32767, (9, 14, 11), dtype=np.int16)
CT[0, :3, :3] = [[-1024, -1000, -600], [0, 40, 50], [1000, 3071, 32767]]
LABELS = RNG.integers(0, 256, (9, 14, 11), dtype=np.uint8)
LAYOUTS = {
    "axial": lambda a: a[3],
    "flipped": lambda a: a[3, ::-1, ::-1],
    "coronal": lambda a: a[::-1, 5, :],
    "transposed": lambda a: a[:, :, 4].swapaxes(0, 1),
}


def pixels(item: pg.ImageItem) -> np.ndarray:
    item.render()
    image = item.qimage.convertToFormat(QtGui.QImage.Format.Format_ARGB32)
    raw = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return raw[:, : 4 * image.width()].copy()


def both(image: np.ndarray, levels, lut) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for cls in (pg.ImageItem, FastImageItem):
        item = cls(axisOrder="row-major")
        item.setImage(image, autoLevels=False, levels=levels)
        item.setLookupTable(lut)
        out.append(pixels(item))
    return out[0], out[1]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("levels", "lut"),
    [((-1350, 150), GREY), ((-160, 240), GREY[::-1]), ((39.5, 40.5), GREY)],
    ids=["lung", "abdomen-inverted", "width-1"],
)
def test_ct_pixels_equal_pyqtgraph(qapp, layout, levels, lut):
    expected, fast = both(LAYOUTS[layout](CT), levels, lut.copy())
    assert np.array_equal(fast, expected)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_label_pixels_equal_pyqtgraph(qapp, layout):
    lut = OverlayLayer("l", LABELS).label_lut()
    expected, fast = both(LAYOUTS[layout](LABELS), (0, 255), lut)
    assert np.array_equal(fast, expected)


def test_item_keeps_hu_and_other_data_goes_to_pyqtgraph(qapp):
    item = FastImageItem(axisOrder="row-major")
    item.setImage(CT[2], autoLevels=False, levels=(-160, 240))
    item.setLookupTable(GREY)
    item.render()
    assert item.image.dtype == np.int16 and tuple(item.levels) == (-160, 240)
    assert item.qimage.format() == QtGui.QImage.Format.Format_RGB32
    floats = CT[2].astype(np.float32)
    expected, fast = both(floats, (-160, 240), GREY)
    assert np.array_equal(fast, expected)

"""16- and 32-bit RGB on screen: every path that assumed 8-bit RGB — the slice view's levels,
the opening window, window/level (panel, drag, menu), snapshots and thumbnails — shows
pydicom's SC_rgb_16bit / SC_rgb_32bit as their 8-bit twin SC_rgb looks, and windows them
when the reader asks; 8-bit RGB stays shown as it is."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from PySide6 import QtGui

from medview.core.volume import Volume
from medview.core.windowing import Window
from medview.io.dicom.index import scan
from medview.io.dicom.volume import load_series
from medview.jobs.studies import _thumbnail
from medview.ui.panels.window_panel import WindowPanel
from medview.ui.snapshot import render_view
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ui.qt_input import shown


def _load(name: str, folder: Path) -> Volume:
    with warnings.catch_warnings():  # pydicom-data's download note on an offline machine
        warnings.simplefilter("ignore")
        source = get_testdata_file(name)
    path = Path(shutil.copy(source, folder / name))
    (series,) = scan([path]).series
    return load_series(series)


@pytest.fixture(scope="module")
def rgb(tmp_path_factory) -> dict[int, Volume]:
    folder = tmp_path_factory.mktemp("rgb")
    return {
        bits: _load(f"SC_rgb{'' if bits == 8 else f'_{bits}bit'}.dcm", folder)
        for bits in (8, 16, 32)
    }


def _pixels(image: QtGui.QImage) -> np.ndarray:
    rgb32 = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    arr = np.frombuffer(rgb32.constBits(), np.uint8).reshape(rgb32.height(), rgb32.bytesPerLine())
    return arr[:, : 3 * rgb32.width()].reshape(rgb32.height(), rgb32.width(), 3).astype(int)


def _render(volume: Volume, window: Window | None = None) -> np.ndarray:
    return _pixels(
        render_view(volume, Plane.AXIAL, 0, window=window, size=(200, 200), overlays=False)
    )


def test_deep_rgb_opens_in_a_window_over_its_bits(rgb) -> None:
    windows = {}
    for bits, volume in rgb.items():
        state = ViewerState()
        state.set_volume(volume)
        windows[bits] = state.window.bounds
    assert windows == {8: (0.0, 255.0), 16: (0.0, 65535.0), 32: (0.0, 4294967295.0)}
    assert not rgb[8].windowed and rgb[16].windowed and rgb[32].windowed


@pytest.mark.parametrize("bits", [16, 32])
def test_deep_rgb_looks_like_its_8_bit_twin(qapp, rgb, bits) -> None:
    eight = _render(rgb[8])
    assert eight.max() == 255 and len(np.unique(eight.reshape(-1, 3), axis=0)) >= 6
    assert np.abs(_render(rgb[bits]) - eight).max() <= 1


def test_a_window_on_deep_rgb_changes_what_is_shown(qapp, rgb) -> None:
    top = 65535.0
    full, half = _render(rgb[16]), _render(rgb[16], Window(top / 4, top / 2, "Custom"))
    # values at half range and above saturate; a quarter-range grey shows at about half
    assert (half >= full).all() and (half > full + 60).any()
    grey = np.all(full == full[..., :1], axis=-1) & (full[..., 0] > 50) & (full[..., 0] < 80)
    assert grey.any() and abs(int(np.median(half[grey][:, 0])) - 128) <= 2
    # an 8-bit RGB image is shown as it is whatever the window
    assert np.array_equal(_render(rgb[8], Window(64, 128, "Custom")), _render(rgb[8]))


def test_the_window_panel_windows_deep_rgb_only(qtbot, rgb) -> None:
    state = ViewerState()
    panel = shown(qtbot, WindowPanel(state, None), 320, 320)
    state.set_volume(rgb[8])
    assert not panel.width_box.isEnabled() and "does not apply" in panel.note.text()
    state.set_volume(rgb[16])
    assert panel.width_box.isEnabled() and panel.level_box.isEnabled()
    assert not panel.invert_box.isEnabled() and "16-bit" in panel.note.text()
    panel.width_box.setValue(1000.0)
    assert state.window.width == pytest.approx(1000.0)
    state.set_volume(rgb[32])  # the boxes show a 32-bit window as it is, not clipped
    assert panel.width_box.value() == pytest.approx(4294967295.0)
    assert panel.level_box.value() == pytest.approx(4294967295.0 / 2)


@pytest.mark.parametrize("bits", [16, 32])
def test_deep_rgb_thumbnails_look_like_the_8_bit_twins(rgb, tmp_path, bits) -> None:
    names = {8: "SC_rgb.dcm", 16: "SC_rgb_16bit.dcm", 32: "SC_rgb_32bit.dcm"}
    thumbs = {}
    for b in (8, bits):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = Path(shutil.copy(get_testdata_file(names[b]), tmp_path / names[b]))
        (series,) = scan([path]).series
        thumbs[b] = _thumbnail(series, 96)
    assert thumbs[bits].dtype == np.uint8
    assert np.abs(thumbs[bits].astype(int) - thumbs[8]).max() <= 1

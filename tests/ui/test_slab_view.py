"""Thick slabs driven by real keys and the Window panel's slab control: the pixels a view
draws are numpy's max / min / mean over the same voxels, the AI layer is projected by its
maximum, and the corner text names the slab."""

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.ui.panels.window_panel import WindowPanel
from medview.ui.slice_view import SliceView
from medview.viewer.annotations import corner_lines
from medview.viewer.layers import OverlayLayer
from medview.viewer.planes import Plane
from medview.viewer.slab import SlabMode
from medview.viewer.state import ViewerState
from tests.ui.qt_input import shown

Qt = QtCore.Qt
SHAPE = (24, 30, 40)
AFFINE = affine_from_plane((-12, -15, 40), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.0))


@pytest.fixture
def state():
    rng = np.random.default_rng(7)
    s = ViewerState()
    s.set_volume(
        Volume(
            rng.integers(-1000, 1500, SHAPE).astype(np.int16),
            AFFINE.copy(),
            VolumeMetadata(modality="CT"),
        )
    )
    return s


@pytest.fixture
def views(qtbot, state):
    return {p: shown(qtbot, SliceView(state, p), 300, 300) for p in Plane}


def slab_of(array, axis, centre, n, reduce):
    lo = max(0, centre - (n - 1) // 2)
    return reduce(np.take(array, range(lo, centre - (n - 1) // 2 + n), axis=axis), axis=axis)


def test_m_and_plus_minus_keys_make_the_drawn_pixels_a_numpy_slab(qtbot, state, views):
    axial = views[Plane.AXIAL]
    a, k = state.volume.array, state.slice_index(Plane.AXIAL)
    QTest.keyClick(axial, Qt.Key.Key_M)  # MIP, 10 mm = 5 slices of 2 mm
    assert state.slab.mode is SlabMode.MIP
    assert np.array_equal(axial.image_item.image, slab_of(a, 0, k, 5, np.max))
    QTest.keyClick(axial, Qt.Key.Key_Plus)  # 15 mm: 8 slices (7.5 rounds to even)
    assert state.slab.thickness_mm == 15.0
    assert np.array_equal(axial.image_item.image, slab_of(a, 0, k, 8, np.max))
    QTest.keyClick(axial, Qt.Key.Key_Minus)
    QTest.keyClick(axial, Qt.Key.Key_Minus)  # 8 mm: 4 slices
    assert np.array_equal(axial.image_item.image, slab_of(a, 0, k, 4, np.max))
    QTest.keyClick(axial, Qt.Key.Key_M)  # MinIP
    assert np.array_equal(axial.image_item.image, slab_of(a, 0, k, 4, np.min))
    # the other planes project along their own normals at their own spacing: 8 mm is 10
    # rows of 0.8 mm (coronal), 13 columns of 0.6 mm (sagittal)
    cor, sag = views[Plane.CORONAL], views[Plane.SAGITTAL]
    pm = state.maps[Plane.CORONAL]
    assert np.array_equal(
        cor.image_item.image, pm.orient(slab_of(a, 1, state.slice_index(Plane.CORONAL), 10, np.min))
    )
    pm = state.maps[Plane.SAGITTAL]
    assert np.array_equal(
        sag.image_item.image,
        pm.orient(slab_of(a, 2, state.slice_index(Plane.SAGITTAL), 13, np.min)),
    )
    QTest.keyClick(axial, Qt.Key.Key_M)  # average
    mean = np.rint(slab_of(a, 0, k, 4, np.mean)).astype(np.int16)
    assert np.array_equal(axial.image_item.image, mean)
    QTest.keyClick(axial, Qt.Key.Key_M)  # off: the plain slice again
    assert np.array_equal(axial.image_item.image, a[k])


def test_scrolling_a_slab_follows_the_slice(qtbot, state, views):
    axial = views[Plane.AXIAL]
    state.set_slab(SlabMode.MIP, 6.0)
    QTest.keyClick(axial, Qt.Key.Key_Down)
    k = state.slice_index(Plane.AXIAL)
    assert np.array_equal(axial.image_item.image, slab_of(state.volume.array, 0, k, 3, np.max))


def test_panel_control_sets_the_slab_and_follows_the_keys(qtbot, state, views):
    panel = shown(qtbot, WindowPanel(state, list(views.values())), 360, 420)
    control = panel.slab
    control.mode_box.setFocus()
    QTest.keyClick(control.mode_box, Qt.Key.Key_Down)  # Off -> MIP, as a reader picks it
    assert state.slab.mode is SlabMode.MIP
    control.mm_box.selectAll()
    QTest.keyClicks(control.mm_box, "20")
    QTest.keyClick(control.mm_box, Qt.Key.Key_Return)
    assert state.slab.thickness_mm == 20.0
    k = state.slice_index(Plane.AXIAL)
    assert np.array_equal(
        views[Plane.AXIAL].image_item.image, slab_of(state.volume.array, 0, k, 10, np.max)
    )
    assert "MIP 20 mm" in corner_lines(state, Plane.AXIAL, 1.0)["bl"]
    QTest.keyClick(views[Plane.AXIAL], Qt.Key.Key_Plus)
    assert control.mm_box.value() == 30.0
    QTest.keyClick(views[Plane.AXIAL], Qt.Key.Key_M)
    assert control.mode_box.currentText() == "MinIP"


def test_ai_layer_is_projected_by_its_maximum(qtbot, state, views):
    axial = views[Plane.AXIAL]
    k = state.slice_index(Plane.AXIAL)
    mask = np.zeros(SHAPE, np.uint8)
    mask[k + 2, 5:9, 10:14] = 1  # a finding two slices (4 mm) away from the one shown
    state.add_layer(OverlayLayer("AI findings", mask, made_by="lesion-seg:1.0"))
    item = axial.overlay_items[0]
    assert not item.image.any()
    QTest.keyClick(axial, Qt.Key.Key_M)  # MIP 10 mm: slices k-2..k+2
    assert np.array_equal(item.image, slab_of(mask, 0, k, 5, np.max))
    assert item.image.sum() == 16

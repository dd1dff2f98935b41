"""Thick slabs against numpy on a random volume with anisotropic spacing (slices 2.5 mm, rows
0.8 mm, columns 0.6 mm): every plane, every mode, layers by their maximum, the slab's ends."""

import numpy as np
import pytest

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.viewer.annotations import corner_lines
from medview.viewer.layers import OverlayLayer
from medview.viewer.planes import Plane
from medview.viewer.slab import SlabMode, layer_image, slab_bounds, step_thickness
from medview.viewer.state import SLAB, ViewerState

SHAPE = (20, 30, 40)
AFFINE = affine_from_plane((-12, -15, 40), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))
NUMPY = {SlabMode.MIP: np.max, SlabMode.MINIP: np.min}


@pytest.fixture
def state():
    rng = np.random.default_rng(3)
    s = ViewerState()
    s.set_volume(
        Volume(
            rng.integers(-1000, 2000, SHAPE).astype(np.int16),
            AFFINE.copy(),
            VolumeMetadata(modality="CT"),
        )
    )
    return s


def expected(state, plane, array, mode):
    """numpy over the same voxels: the slices the slab spans along the plane's normal."""
    pm = state.maps[plane]
    idx = state.slice_index(plane)
    spacing = state.volume.spacing_mm[pm.normal_axis]
    n = round(state.slab.thickness_mm / spacing)
    lo, hi = max(0, idx - (n - 1) // 2), min(pm.n_slices, idx - (n - 1) // 2 + n)
    sub = np.take(array, range(lo, hi), axis=pm.normal_axis)
    if mode is SlabMode.AVERAGE:
        flat = np.rint(sub.mean(axis=pm.normal_axis)).astype(array.dtype)
    else:
        flat = NUMPY[mode](sub, axis=pm.normal_axis)
    return pm.orient(flat), hi - lo


@pytest.mark.parametrize("mode", [SlabMode.MIP, SlabMode.MINIP, SlabMode.AVERAGE])
@pytest.mark.parametrize("plane", list(Plane))
def test_slab_equals_numpy_over_the_same_voxels(state, plane, mode):
    state.set_slab(mode, 10.0)
    pm = state.maps[plane]
    got = state.projector.image(pm, state.slice_index(plane), state.slab, state.slab_spacing(plane))
    want, n = expected(state, plane, state.volume.array, mode)
    # 10 mm is 4 slices of 2.5 mm, 13 rows of 0.8 mm, 17 columns of 0.6 mm
    assert n == {Plane.AXIAL: 4, Plane.CORONAL: 12, Plane.SAGITTAL: 17}[plane]
    assert got.dtype == np.int16
    assert np.array_equal(got, want)


def test_slab_is_cut_at_the_volume_ends(state):
    assert slab_bounds(20, 0, 10.0, 2.5) == (0, 3)
    assert slab_bounds(20, 19, 10.0, 2.5) == (18, 20)
    assert slab_bounds(20, 5, 0.5, 2.5) == (5, 6)  # thinner than a slice: that slice
    state.set_slab(SlabMode.MIP, 10.0)
    state.set_slice(Plane.AXIAL, 0)
    got = state.projector.image(state.maps[Plane.AXIAL], 0, state.slab, 2.5)
    assert np.array_equal(got, state.volume.array[0:3].max(axis=0))


def test_state_tells_listeners_and_keeps_thickness_in_range(state):
    heard = []
    state.subscribe(heard.append)
    state.cycle_slab_mode()
    assert state.slab.mode is SlabMode.MIP and heard == [SLAB]
    state.set_slab(thickness_mm=1e6)
    assert state.slab.thickness_mm == 100.0
    state.set_slab(thickness_mm=-3)
    assert state.slab.thickness_mm == 1.0
    assert step_thickness(10.0, 1) == 15.0 and step_thickness(10.0, -1) == 8.0
    assert step_thickness(100.0, 1) == 100.0 and step_thickness(2.0, -1) == 2.0


def test_corner_text_names_the_slab(state):
    assert not any("MIP" in ln for ln in corner_lines(state, Plane.AXIAL, 1.0)["bl"])
    state.set_slab(SlabMode.MIP, 10.0)
    assert "MIP 10 mm" in corner_lines(state, Plane.AXIAL, 1.0)["bl"]
    state.set_slab(SlabMode.MINIP, 7.5)
    assert "MinIP 7.5 mm" in corner_lines(state, Plane.SAGITTAL, 1.0)["bl"]


def test_a_new_volume_opens_without_slab(state):
    state.set_slab(SlabMode.MIP, 20.0)
    state.set_volume(state.volume)
    assert state.slab.mode is SlabMode.OFF and state.slab.thickness_mm == 20.0


def test_colour_volume_has_no_slab():
    s = ViewerState()
    s.set_volume(Volume(np.zeros((*SHAPE, 3), np.uint8), AFFINE.copy(), VolumeMetadata()))
    s.set_slab(SlabMode.MIP)
    assert s.slab.mode is SlabMode.OFF


def test_layers_take_their_maximum_over_the_slab(state):
    labels = np.zeros(SHAPE, np.uint8)
    labels[state.slice_index(Plane.AXIAL) + 1, 10:13, 20:22] = 3  # one slice off the centre
    state.add_layer(OverlayLayer("ai", labels))
    pm = state.maps[Plane.AXIAL]
    idx = state.slice_index(Plane.AXIAL)
    assert not pm.image(labels, idx).any()
    state.set_slab(SlabMode.MINIP, 10.0)  # whatever the image's mode
    shown = layer_image(pm, labels, idx, state.slab, 2.5)
    assert np.array_equal(shown, expected(state, Plane.AXIAL, labels, SlabMode.MIP)[0])
    assert (shown == 3).sum() == 6

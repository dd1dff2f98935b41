"""ViewerState without a display: presets per modality, reset, crosshair clicks, clamping,
values outside the volume, and the layer grid check."""

import numpy as np
import pytest

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.core.windowing import CT_PRESETS, Window, auto_window
from medview.viewer.layers import OverlayLayer
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState

# axial stack, anisotropic: rows 0.8 mm, columns 0.6 mm, slices 2.5 mm apart
AFFINE = affine_from_plane((-10, -20, 30), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))
SHAPE = (6, 8, 10)


def volume(modality="CT", windows=(), dtype=np.int16, invert=False):
    s, r, c = np.indices(SHAPE)
    array = (s * 100 + r * 10 + c).astype(dtype)
    md = VolumeMetadata(modality=modality, windows=list(windows), invert_display=invert)
    return Volume(array, AFFINE.copy(), md)


@pytest.fixture
def state():
    s = ViewerState()
    s.set_volume(volume())
    return s


def record(state):
    seen = []
    state.subscribe(seen.append)
    return seen


def test_open_centres_cursor_and_picks_ct_default(state):
    assert tuple(state.cursor_ijk) == (2.0, 4.0, 4.0)  # rounded centre of (6, 8, 10)
    assert (state.window.center, state.window.width) == (40, 400)
    assert state.slice_index(Plane.AXIAL) == 2
    assert state.slice_index(Plane.CORONAL) == 4
    assert state.slice_index(Plane.SAGITTAL) == 4


def test_ct_number_keys_are_the_ct_presets_in_order(state):
    seen = record(state)
    for number, preset in enumerate(CT_PRESETS, start=1):
        assert state.apply_preset(number)
        assert state.window == preset
    assert state.window.name == "Liver" and (state.window.width, state.window.center) == (150, 90)
    assert not state.apply_preset(len(CT_PRESETS) + 1)  # 9: no preset, window kept
    assert state.window.name == "Liver"
    assert seen == ["window"] * len(CT_PRESETS)


def test_mr_presets_are_the_files_window_then_auto():
    s = ViewerState()
    s.set_volume(volume("MR", windows=[(300.0, 500.0)], dtype=np.float32))
    assert s.window == Window(300.0, 500.0, "File")
    s.set_window(1, 2)
    assert s.apply_preset(1) and s.window == Window(300.0, 500.0, "File")
    assert s.apply_preset(2) and s.window == auto_window(s.volume.array)
    assert not s.apply_preset(3)


def test_mr_without_file_window_opens_and_resets_on_auto():
    s = ViewerState()
    s.set_volume(volume("MR", dtype=np.float32))
    auto = auto_window(s.volume.array)
    assert s.window == auto and s.window.name == "Auto"
    s.set_window(0, 5)
    assert s.apply_preset(1) and s.window == auto  # no file window: 1 is auto too


def test_no_volume_nothing_happens():
    s = ViewerState()
    seen = record(s)
    assert not s.apply_preset(1)
    s.reset()
    assert s.value_at(np.zeros(3)) is None
    assert seen == []


def test_reset_restores_window_invert_and_centre():
    s = ViewerState()
    s.set_volume(volume(invert=True))  # MONOCHROME1: shown inverted from the start
    assert s.invert
    s.set_window(500, 2000)
    s.toggle_invert()
    s.set_slice(Plane.AXIAL, 0)
    seen = record(s)
    s.reset()
    assert s.window == Window(40, 400, "Abdomen") and s.invert
    assert tuple(s.cursor_ijk) == (2.0, 4.0, 4.0)
    assert set(seen) == {"window", "cursor"}


def test_set_slice_clamps_and_only_notifies_on_change(state):
    seen = record(state)
    state.set_slice(Plane.AXIAL, 99)
    assert state.slice_index(Plane.AXIAL) == SHAPE[0] - 1
    state.set_slice(Plane.AXIAL, 99)  # already there: no event
    state.step(Plane.AXIAL, -100)
    assert state.slice_index(Plane.AXIAL) == 0
    assert seen == ["cursor", "cursor"]
    state.step(Plane.SAGITTAL, 3)
    assert state.slice_index(Plane.SAGITTAL) == 7 and state.slice_index(Plane.AXIAL) == 0


def test_crosshair_click_keeps_own_slice_and_moves_the_others(state):
    pm = state.maps[Plane.AXIAL]
    state.set_cursor_screen(Plane.AXIAL, 1.2, 6.7)  # fractional: rounded to a voxel
    assert state.slice_index(Plane.AXIAL) == 2
    expected = np.round(pm.to_index(2, 1.2, 6.7))
    assert np.array_equal(state.cursor_ijk, expected)
    assert state.slice_index(Plane.CORONAL) == expected[state.maps[Plane.CORONAL].normal_axis]
    assert state.slice_index(Plane.SAGITTAL) == expected[state.maps[Plane.SAGITTAL].normal_axis]
    lps = state.cursor_lps()
    assert np.allclose(lps, AFFINE[:3, :3] @ expected + AFFINE[:3, 3])


def test_crosshair_click_outside_the_image_is_clamped(state):
    state.set_cursor_screen(Plane.CORONAL, -50, 500)
    assert np.all(state.cursor_ijk >= 0)
    assert np.all(state.cursor_ijk <= np.array(SHAPE) - 1)
    assert state.slice_index(Plane.CORONAL) == 4  # the clicked plane kept its slice


def test_value_at_inside_rounds_and_outside_is_none(state):
    assert state.value_at(np.array([1, 2, 3])) == 123
    assert state.value_at(np.array([0.6, 1.6, 2.4])) == 122  # nearest voxel
    assert isinstance(state.value_at(np.array([0, 0, 0])), int)
    for outside in ([-1, 0, 0], [0, 8, 0], [0, 0, 10], [5.6, 0, 0]):
        assert state.value_at(np.array(outside)) is None


def test_value_at_colour_volume_is_a_tuple():
    s = ViewerState()
    rgb = np.zeros((*SHAPE, 3), np.uint8)
    rgb[1, 2, 3] = (10, 20, 30)
    s.set_volume(Volume(rgb, AFFINE.copy(), VolumeMetadata(photometric="RGB")))
    assert s.value_at(np.array([1, 2, 3])) == (10, 20, 30)
    assert s.window.name == "Colour"


def test_window_width_is_kept_at_least_one(state):
    state.set_window(10, -5)
    assert state.window.width == 1.0
    state.set_window(-600, 1500, "Lung")
    assert state.window.bounds == (-1350.0, 150.0)


def test_float_volumes_take_narrow_windows():
    s = ViewerState()
    s.set_volume(
        Volume(
            np.linspace(0, 1, 60, dtype=np.float32).reshape(3, 4, 5),
            np.eye(4),
            VolumeMetadata(modality="MR"),
        )
    )
    s.set_window(0.5, 0.02)
    assert s.window.width == pytest.approx(0.02)
    assert s.window.bounds == pytest.approx((0.49, 0.51))


def test_invert_toggles_and_notifies(state):
    seen = record(state)
    state.toggle_invert()
    state.toggle_invert()
    assert not state.invert and seen == ["window", "window"]


def test_layers_must_share_the_image_grid(state):
    seen = record(state)
    with pytest.raises(ValueError, match=r"\(6, 8, 9\)"):
        state.add_layer(OverlayLayer("bad", np.zeros((6, 8, 9), np.uint8)))
    assert state.layers == [] and seen == []
    good = OverlayLayer("good", np.zeros(SHAPE, np.uint8))
    state.add_layer(good)
    assert state.layers == [good] and seen == ["layers"]
    state.remove_layer(good)
    assert state.layers == [] and seen == ["layers", "layers"]
    state.add_layer(good)
    state.set_volume(volume())  # a new series starts without the old overlays
    assert state.layers == []


def test_layer_without_volume_is_refused():
    with pytest.raises(ValueError):
        ViewerState().add_layer(OverlayLayer("x", np.zeros(SHAPE, np.uint8)))


def test_display_toggles(state):
    seen = record(state)
    state.toggle_overlays()
    state.set_crosshair_linked(False)
    assert not state.show_overlays and not state.crosshair_linked
    assert seen == ["display", "display"]
    state.unsubscribe(seen.append)
    state.toggle_overlays()
    assert len(seen) == 2


def test_remove_layer_by_identity_among_same_named_layers(state):
    a = OverlayLayer("seg", np.zeros(SHAPE, np.uint8))
    b = OverlayLayer("seg", np.ones(SHAPE, np.uint8))
    state.add_layer(a)
    state.add_layer(b)
    state.remove_layer(b)
    assert len(state.layers) == 1 and state.layers[0] is a

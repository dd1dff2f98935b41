"""SliceView driven by real wheel, mouse and key events on a volume with known anisotropic
spacing (rows 0.8 mm, columns 0.6 mm, slices 2.5 mm), checking the state it changes and
what it draws; orientation letters and pixels on "stamp" volumes whose patient sides differ."""

import numpy as np
import pytest
from PySide6 import QtCore

from medview.core.geometry import affine_from_plane
from medview.core.series import PatientInfo
from medview.core.volume import Volume, VolumeMetadata
from medview.core.windowing import CT_PRESETS, Window
from medview.ui.slice_view import GREY, GREY_INVERTED, SliceView
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ui.qt_input import drag, grab_rgb, shown, view_to_widget, wheel

Qt = QtCore.Qt
SHAPE = (20, 30, 40)
AFFINE = affine_from_plane((-12, -15, 40), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))
SIZE = 400


def ramp_volume() -> Volume:
    s, r, c = np.indices(SHAPE)
    array = (s * 1000 + r * 30 + c).astype(np.int32)
    md = VolumeMetadata(
        modality="CT",
        units="HU",
        series_description="ramp",
        patient=PatientInfo(name="Test^Patient", id="T1"),
    )
    return Volume(array, AFFINE.copy(), md)


def show(qtbot, state: ViewerState, plane: Plane) -> SliceView:
    return shown(qtbot, SliceView(state, plane), SIZE, SIZE)


@pytest.fixture
def empty_state():
    """States come from fixtures, so they (and the views subscribed to them) live until
    pytest-qt has closed and deleted the views: a view kept only by a reference cycle with
    its state could be collected mid-paint, and PySide deletes it then (segfault)."""
    return ViewerState()


@pytest.fixture
def state(empty_state):
    empty_state.set_volume(ramp_volume())
    return empty_state


@pytest.fixture
def axial(qtbot, state):
    return show(qtbot, state, Plane.AXIAL)


def centre(view):
    return QtCore.QPoint(view.viewport().width() // 2, view.viewport().height() // 2)


def pixel_on_screen(view, row, col) -> QtCore.QPoint:
    p = view.pixel_to_mm(row, col)
    return view_to_widget(view, view.vb, p.x(), p.y())


# -- wheel


def test_wheel_moves_the_slice_and_the_drawn_image(axial, state):
    start = state.slice_index(Plane.AXIAL)
    wheel(axial.viewport(), centre(axial), -1)  # towards the user: next slice
    assert state.slice_index(Plane.AXIAL) == start + 1
    wheel(axial.viewport(), centre(axial), +1)
    wheel(axial.viewport(), centre(axial), +1)
    assert state.slice_index(Plane.AXIAL) == start - 1
    expected = axial.plane_map.image(state.volume.array, start - 1)
    assert np.array_equal(axial.image_item.image, expected)


def test_ctrl_wheel_zooms_without_changing_the_slice(axial, state):
    start, zoom = state.slice_index(Plane.AXIAL), axial.zoom()
    wheel(axial.viewport(), centre(axial), +1, Qt.KeyboardModifier.ControlModifier)
    assert axial.zoom() == pytest.approx(zoom / 0.9, rel=1e-3)
    wheel(axial.viewport(), centre(axial), -2, Qt.KeyboardModifier.ControlModifier)
    assert axial.zoom() == pytest.approx(zoom * 0.9, rel=1e-3)  # two notches, two steps
    assert state.slice_index(Plane.AXIAL) == start


def test_wheel_counts_notches_and_adds_up_touchpad_deltas(axial, state):
    start, vp = state.slice_index(Plane.AXIAL), axial.viewport()
    wheel(vp, centre(axial), -3)  # three notches coalesced into one event
    assert state.slice_index(Plane.AXIAL) == start + 3
    for _ in range(3):
        wheel(vp, centre(axial), 0.25)  # a touchpad: 30 units at a time
    assert state.slice_index(Plane.AXIAL) == start + 3
    wheel(vp, centre(axial), 0.25)
    assert state.slice_index(Plane.AXIAL) == start + 2


# -- drags


def test_left_drag_right_widens_and_down_raises_the_level(axial, state):
    w0 = state.window
    c = centre(axial)
    drag(axial.viewport(), c, c + QtCore.QPoint(60, 0))
    w1 = state.window
    assert w1.width > w0.width + 50 and w1.center == pytest.approx(w0.center)
    drag(axial.viewport(), c, c + QtCore.QPoint(0, 60))
    w2 = state.window
    assert w2.center > w1.center + 50 and w2.width == pytest.approx(w1.width)
    assert axial.image_item.levels.tolist() == pytest.approx(list(w2.bounds))
    drag(axial.viewport(), c, c - QtCore.QPoint(60, 60))  # back: narrower and lower
    assert state.window.width < w2.width and state.window.center < w2.center


def test_right_drag_zooms_and_middle_drag_pans(axial, state):
    c, zoom = centre(axial), axial.zoom()
    drag(axial.viewport(), c, c - QtCore.QPoint(0, 80), Qt.MouseButton.RightButton)
    zoomed = axial.zoom()
    assert zoomed > zoom * 1.5  # drag up = zoom in
    (x0, _), (y0, _) = axial.vb.viewRange()
    mm_per_px = axial.vb.viewPixelSize()[0]
    drag(axial.viewport(), c, c + QtCore.QPoint(50, 30), Qt.MouseButton.MiddleButton)
    (x1, _), (y1, _) = axial.vb.viewRange()
    # the image follows the mouse: the visible range moves the other way by as many mm
    assert x1 - x0 == pytest.approx(-50 * mm_per_px, rel=0.1)
    assert y1 - y0 == pytest.approx(-30 * mm_per_px, rel=0.1)
    assert axial.zoom() == pytest.approx(zoomed)
    assert state.window == Window(40, 400, "Abdomen")  # neither drag touched W/L


# -- crosshair


def test_click_in_axial_moves_coronal_and_sagittal_to_the_point(qtbot, state, axial):
    coronal = show(qtbot, state, Plane.CORONAL)
    sagittal = show(qtbot, state, Plane.SAGITTAL)
    axial_slice = state.slice_index(Plane.AXIAL)
    row, col = 7, 31
    qtbot.mouseClick(
        axial.viewport(), Qt.MouseButton.LeftButton, pos=pixel_on_screen(axial, row, col)
    )
    ijk = axial.plane_map.to_index(axial_slice, row, col)
    assert state.slice_index(Plane.AXIAL) == axial_slice
    assert state.slice_index(Plane.CORONAL) == ijk[coronal.plane_map.normal_axis]
    assert state.slice_index(Plane.SAGITTAL) == ijk[sagittal.plane_map.normal_axis]
    for view in (coronal, sagittal):
        index = state.slice_index(view.plane)
        assert np.array_equal(
            view.image_item.image, view.plane_map.image(state.volume.array, index)
        )
    mm = axial.pixel_to_mm(row, col)
    assert (axial.v_line.value(), axial.h_line.value()) == pytest.approx((mm.x(), mm.y()))


def test_click_does_nothing_when_crosshair_unlinked(qtbot, state, axial):
    qtbot.keyClick(axial, Qt.Key.Key_C)
    assert not state.crosshair_linked and not axial.v_line.isVisible()
    before = state.cursor_ijk.copy()
    qtbot.mouseClick(axial.viewport(), Qt.MouseButton.LeftButton, pos=pixel_on_screen(axial, 3, 5))
    assert np.array_equal(state.cursor_ijk, before)


# -- keys


def test_slice_keys(qtbot, axial, state):
    n = SHAPE[0]
    start = state.slice_index(Plane.AXIAL)
    for key, expected in (
        (Qt.Key.Key_Down, start + 1),
        (Qt.Key.Key_Up, start),
        (Qt.Key.Key_PageDown, start + n // 10),
        (Qt.Key.Key_PageUp, start),
        (Qt.Key.Key_End, n - 1),
        (Qt.Key.Key_Down, n - 1),
        (Qt.Key.Key_Home, 0),
        (Qt.Key.Key_Up, 0),
    ):
        qtbot.keyClick(axial, key)
        assert state.slice_index(Plane.AXIAL) == expected, key


def test_number_keys_apply_ct_presets(qtbot, axial, state):
    for number, preset in enumerate(CT_PRESETS, start=1):
        qtbot.keyClick(axial, str(number))
        assert state.window == preset
        assert axial.image_item.levels.tolist() == pytest.approx(list(preset.bounds))
    qtbot.keyClick(axial, "9")
    assert state.window == CT_PRESETS[-1]


def test_r_resets_window_slice_invert_and_zoom(qtbot, axial, state):
    fitted = axial.zoom()
    qtbot.keyClick(axial, "3")
    qtbot.keyClick(axial, Qt.Key.Key_I)
    qtbot.keyClick(axial, Qt.Key.Key_Home)
    wheel(axial.viewport(), centre(axial), 3, Qt.KeyboardModifier.ControlModifier)
    assert axial.zoom() > fitted
    qtbot.keyClick(axial, Qt.Key.Key_R)
    assert state.window == Window(40, 400, "Abdomen") and not state.invert
    assert np.array_equal(state.cursor_ijk, np.round((np.array(SHAPE) - 1) / 2))
    assert axial.zoom() == pytest.approx(fitted)


def test_i_inverts_the_lookup_table(qtbot, axial, state):
    assert np.array_equal(axial.image_item.lut, GREY)
    qtbot.keyClick(axial, Qt.Key.Key_I)
    assert state.invert and np.array_equal(axial.image_item.lut, GREY_INVERTED)
    qtbot.keyClick(axial, Qt.Key.Key_I)
    assert not state.invert and np.array_equal(axial.image_item.lut, GREY)


def test_space_starts_and_stops_cine(qtbot, axial, state):
    axial.cine_fps = 60
    start = state.slice_index(Plane.AXIAL)
    qtbot.keyClick(axial, Qt.Key.Key_Space)
    assert axial.cine_running
    qtbot.waitUntil(lambda: state.slice_index(Plane.AXIAL) >= start + 2, timeout=2000)
    qtbot.keyClick(axial, Qt.Key.Key_Space)
    assert not axial.cine_running
    stopped = state.slice_index(Plane.AXIAL)
    qtbot.wait(100)
    assert state.slice_index(Plane.AXIAL) == stopped


def test_f_fits_after_zoom_and_pan(qtbot, axial):
    fitted = axial.vb.viewRange()
    wheel(axial.viewport(), centre(axial), 2, Qt.KeyboardModifier.ControlModifier)
    drag(
        axial.viewport(),
        centre(axial),
        centre(axial) + QtCore.QPoint(40, 0),
        Qt.MouseButton.MiddleButton,
    )
    assert np.abs(np.subtract(axial.vb.viewRange(), fitted)).max() > 1
    qtbot.keyClick(axial, Qt.Key.Key_F)
    assert np.allclose(axial.vb.viewRange(), fitted)
    rows, cols = SHAPE[1], SHAPE[2]
    # anisotropic pixels: the fitted view shows the whole 24 x 24 mm image, square on screen
    assert (rows * 0.8, cols * 0.6) == pytest.approx((24.0, 24.0))
    assert fitted[0][1] - fitted[0][0] == pytest.approx(24.0)


def yellowish(rgb: np.ndarray) -> int:
    """Pixels in the overlay text / crosshair colours (the image itself is grey)."""
    r, b = rgb[..., 0].astype(int), rgb[..., 2].astype(int)
    return int(((r > 150) & (r - b > 40)).sum())


def test_o_hides_corner_text_letters_and_crosshair(qtbot, axial, state):
    assert yellowish(grab_rgb(axial)) > 200
    qtbot.keyClick(axial, Qt.Key.Key_O)
    assert not state.show_overlays
    assert yellowish(grab_rgb(axial)) == 0
    qtbot.keyClick(axial, Qt.Key.Key_O)
    assert yellowish(grab_rgb(axial)) > 200


def test_hover_reports_value_and_lps_position(qtbot, axial, state):
    row, col = 11, 26
    pos = pixel_on_screen(axial, row, col)
    with qtbot.waitSignal(axial.hovered, timeout=1000) as blocker:
        qtbot.mouseMove(axial.viewport(), pos)
    ijk = axial.plane_map.to_index(state.slice_index(Plane.AXIAL), row, col)
    value = state.volume.array[tuple(ijk.astype(int))]
    x, y, z = state.volume.index_to_lps(ijk)
    text = blocker.args[0]
    assert text.startswith(f"{value} HU")
    assert f"({x:.1f}, {y:.1f}, {z:.1f}) mm LPS" in text
    assert f"voxel ({col}, {row}, {int(ijk[0])})" in text


def test_hover_outside_the_image_clears_the_text(qtbot, state, axial):
    wheel(axial.viewport(), centre(axial), -4, Qt.KeyboardModifier.ControlModifier)
    with qtbot.waitSignal(axial.hovered, timeout=1000) as blocker:
        qtbot.mouseMove(axial.viewport(), QtCore.QPoint(3, 3))
    assert blocker.args == [""]


# -- orientation: letters from the affine, pixels where the letters say

# stamp brightness per patient side: left 1000, anterior 400, superior 200 (separable, so
# each screen direction can be checked on its own)
SIDE_SIGN = {"L": 1, "R": -1, "A": 1, "P": -1, "S": 1, "I": -1}
STAMP_SHAPE = (12, 16, 20)


def stamp_volume(affine: np.ndarray) -> Volume:
    ijk = np.stack(np.indices(STAMP_SHAPE), -1).reshape(-1, 3)
    lps = ijk @ affine[:3, :3].T
    mid = (np.array(STAMP_SHAPE) - 1) / 2 @ affine[:3, :3].T
    d = lps - mid
    value = 1000 * (d[:, 0] > 0) + 400 * (d[:, 1] < 0) + 200 * (d[:, 2] > 0)
    return Volume(
        value.reshape(STAMP_SHAPE).astype(np.int16), affine, VolumeMetadata(modality="CT")
    )


def _rotated_axial(deg: float) -> np.ndarray:
    t = np.radians(deg)
    return affine_from_plane(
        (0, 0, 0), (np.cos(t), np.sin(t), 0), (-np.sin(t), np.cos(t), 0), (0.7, 0.9), (0, 0, 1.5)
    )


ORIENTATIONS = {
    "axial": affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (0.7, 0.9), (0, 0, 1.5)),
    "axial_flipped_feet_first": affine_from_plane(
        (0, 0, 0), (-1, 0, 0), (0, -1, 0), (0.7, 0.9), (0, 0, -1.5)
    ),
    "coronal": affine_from_plane((0, 0, 0), (1, 0, 0), (0, 0, -1), (0.7, 0.9), (0, 1.5, 0)),
    "sagittal": affine_from_plane((0, 0, 0), (0, 1, 0), (0, 0, -1), (0.7, 0.9), (-1.5, 0, 0)),
    "oblique_axial": _rotated_axial(30),
}
ALIGNED_LETTERS = {
    Plane.AXIAL: ("A", "P", "R", "L"),
    Plane.CORONAL: ("S", "I", "R", "L"),
    Plane.SAGITTAL: ("S", "I", "A", "P"),
}


def image_rect_on_screen(view) -> QtCore.QRect:
    item = view.image_item
    return view.mapFromScene(item.mapRectToScene(item.boundingRect())).boundingRect()


def check_halves(img: np.ndarray, letters) -> None:
    """The half of the image next to each edge is brighter when its letter is L, A or S."""
    top, bottom, left, right = letters
    grey = img.astype(float)
    rows, cols = grey.shape[:2]
    dx = grey[:, cols // 2 :].mean() - grey[:, : cols // 2].mean()
    dy = grey[: rows // 2].mean() - grey[rows // 2 :].mean()
    assert np.sign(dx) == SIDE_SIGN[right[0]] == -SIDE_SIGN[left[0]], letters
    assert np.sign(dy) == SIDE_SIGN[top[0]] == -SIDE_SIGN[bottom[0]], letters


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_orientation_letters_and_pixels_agree(qtbot, empty_state, name):
    state = empty_state
    state.set_volume(stamp_volume(ORIENTATIONS[name]))
    state.set_window(800, 1600)  # 0..1600: every stamp value on a distinct grey
    state.toggle_overlays()  # letters and text off the grabbed pixels
    for plane in Plane:
        view = show(qtbot, state, plane)
        letters = view.plane_map.edge_letters
        if name == "oblique_axial" and plane is Plane.AXIAL:
            assert letters == ("AL", "PR", "RA", "LP")
        elif not name.startswith("oblique"):
            assert letters == ALIGNED_LETTERS[plane]
        check_halves(view.image_item.image, letters)
        rect = image_rect_on_screen(view).adjusted(2, 2, -2, -2)
        shot = grab_rgb(view)[rect.top() : rect.bottom(), rect.left() : rect.right(), 0]
        check_halves(shot, letters)
        view.close()

"""Oblique planes driven by the mouse: dragging the axial view's crosshair handle round by
30° turns the coronal and sagittal planes about the axial normal (double oblique after a turn
in the coronal view too); their corner text and crosshair lines follow; a ruler drawn in the
turned coronal view measures true millimetres on a volume with anisotropic spacing."""

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from medview.viewer.annotations import corner_lines
from medview.viewer.oblique import ObliqueMap, plane_axes
from medview.viewer.planes import Plane
from tests.ui.qt_input import drag, view_to_widget
from tests.ui.test_measure_tools import Reader

Qt = QtCore.Qt


@pytest.fixture
def reader(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return Reader(qtbot)


def turn_handle(view, degrees: float) -> None:
    """Drag the view's handle round the crosshair's centre by `degrees` (on screen)."""
    centre = view.pixel_to_mm(*view.plane_map.from_index(view.state.cursor_ijk)[1:])
    hx, hy = view.handle.getData()[0][0], view.handle.getData()[1][0]
    t = np.radians(degrees)
    dx, dy = hx - centre.x(), hy - centre.y()
    end = (
        centre.x() + dx * np.cos(t) - dy * np.sin(t),
        centre.y() + dx * np.sin(t) + dy * np.cos(t),
    )
    drag(
        view.viewport(),
        view_to_widget(view, view.vb, hx, hy),
        view_to_widget(view, view.vb, *end),
        steps=8,
    )


def tilt(state, plane) -> float:
    normal = plane_axes(state.maps[plane], state.volume.affine)[2]
    return float(np.degrees(np.arccos(abs(state.view_map(plane).normal @ normal))))


def test_turning_the_axial_handle_reslices_the_other_planes(qtbot, reader):
    state, axial, coronal = reader.state, reader.views[Plane.AXIAL], reader.views[Plane.CORONAL]
    before = axial.image_item.image.copy()
    turn_handle(axial, 30)
    assert state.oblique
    assert isinstance(state.view_map(Plane.CORONAL), ObliqueMap)
    assert state.view_map(Plane.AXIAL) is state.maps[Plane.AXIAL]  # its own plane stays
    assert tilt(state, Plane.CORONAL) == pytest.approx(30, abs=3)
    assert tilt(state, Plane.SAGITTAL) == pytest.approx(30, abs=3)
    assert np.array_equal(axial.image_item.image, before)
    assert axial.h_line.angle == pytest.approx(30, abs=3)  # the coronal plane's trace
    # the coronal view now shows the resampled plane, its corner text says so
    assert coronal.image_item.image.shape == state.view_map(Plane.CORONAL).screen_shape
    assert any(
        ln.startswith("Oblique 30°") or ln.startswith("Oblique 29°") or ln.startswith("Oblique 31°")
        for ln in corner_lines(state, Plane.CORONAL, 1.0)["bl"]
    )
    # double oblique: a turn in the (turned) coronal view tilts the axial plane too
    turn_handle(coronal, 20)
    assert isinstance(state.view_map(Plane.AXIAL), ObliqueMap)
    assert tilt(state, Plane.AXIAL) == pytest.approx(20, abs=3)
    # R: back to the orthogonal planes
    coronal.setFocus()
    qtbot.keyClick(coronal, Qt.Key.Key_R)
    assert not state.oblique and state.view_map(Plane.CORONAL) is state.maps[Plane.CORONAL]


def test_ruler_in_a_turned_plane_measures_true_millimetres(qtbot, reader):
    state, axial, coronal = reader.state, reader.views[Plane.AXIAL], reader.views[Plane.CORONAL]
    turn_handle(axial, 35)
    om = state.view_map(Plane.CORONAL)
    reader.pick(qtbot, "ruler")
    c = (om.size - 1) / 2
    a, b = (c - 12, c - 15), (c + 10, c + 14)  # screen (row, col) of the oblique plane
    wa, wb = reader.screen(Plane.CORONAL, *a), reader.screen(Plane.CORONAL, *b)
    drag(coronal.viewport(), wa, wb)
    m, values = reader.only()
    # the points where the mouse really was, in the oblique plane's millimetres
    pa, pb = (coronal.vb.mapSceneToView(coronal.mapToScene(w)) for w in (wa, wb))
    on_screen = float(np.hypot(pb.x() - pa.x(), pb.y() - pa.y()))
    assert values.length_mm == pytest.approx(on_screen, abs=0.1)
    # and in the patient: the ends lie in the oblique plane, that far apart in LPS
    ends = np.asarray(m.points_lps)
    assert float(np.linalg.norm(ends[1] - ends[0])) == pytest.approx(on_screen, abs=0.1)
    assert abs((ends[1] - ends[0]) @ om.normal) < 0.05
    assert on_screen == pytest.approx(np.hypot(22, 29) * om.pixel, rel=0.03)
    # kept on the orthogonal coronal slice nearest its centre: valid when saved and reread
    assert 0 <= m.slice_index < state.maps[Plane.CORONAL].n_slices
    tools = next(t for t in reader.panel.tools if t.view is coronal)
    assert tools.items[m.id].roi.isVisible()  # drawn where its points lie
    coronal.setFocus()
    qtbot.keyClick(coronal, Qt.Key.Key_R)  # orthogonal again: on its stored slice
    state.set_slice(Plane.CORONAL, m.slice_index)
    assert tools.items[m.id].roi.isVisible()


def test_brush_in_a_turned_plane_paints_a_disc_in_that_plane(qtbot):
    """On the anisotropic volume of the painting tests (2.5 x 0.8 x 0.6 mm), a brush drag
    in the turned coronal view paints the voxels that plane cuts within the brush's mm of
    the path: every pixel the view shows along the path is painted, nothing lies off the
    plane, one undo step takes it back."""
    from tests.ui.test_paint_tools import Painter

    painter = Painter(qtbot)
    state, coronal = painter.state, painter.views[Plane.CORONAL]
    turn_handle(painter.views[Plane.AXIAL], 30)
    om = state.view_map(Plane.CORONAL)
    assert isinstance(om, ObliqueMap) and tilt(state, Plane.CORONAL) == pytest.approx(30, abs=3)
    radius = 3.0
    painter.editor.set_tool(radius_mm=radius)
    index = state.slice_index(Plane.CORONAL)
    c = (om.size - 1) / 2
    wa, wb = (
        painter.screen(Plane.CORONAL, c - 20, c - 25),
        painter.screen(Plane.CORONAL, c + 15, c + 20),
    )
    drag(coronal.viewport(), wa, wb, steps=4)
    # the path where the mouse really was, in the patient
    ends = [
        om.to_lps(index, *coronal.mm_to_pixel(coronal.vb.mapSceneToView(coronal.mapToScene(w))))
        for w in (wa, wb)
    ]
    painted = np.argwhere(painter.labels == 1)
    assert len(painted)
    axes = state.volume.affine[:3, :3]
    lps = painted @ axes.T + state.volume.affine[:3, 3]
    half_thick = 0.5 * np.abs(om.normal @ axes).sum()
    along = (lps - ends[0]) @ om.normal
    assert np.abs(along).max() <= half_thick + 1e-6  # nothing off the plane
    flat = lps - np.outer(along, om.normal)  # in the plane
    seg = ends[1] - ends[0]
    t = np.clip(((flat - ends[0]) @ seg) / (seg @ seg), 0, 1)
    reach = np.linalg.norm(flat - (ends[0] + np.outer(t, seg)), axis=1)
    assert reach.max() <= radius + 1e-6  # within the brush's mm of the path
    # every pixel the view shows along the path is painted, no gaps, and 1.5 mm beside it
    # (a voxel holding such a point has its centre within 1.5 + 1.35 mm, its box's reach
    # in this plane: 1.25 mm of the 2.5 mm slice and half a 0.6-0.8 mm pixel)
    for s in np.linspace(0, 1, 200):
        for side in (-1.5, 0.0, 1.5):
            p = ends[0] + s * seg + side * np.cross(om.normal, seg / np.linalg.norm(seg))
            ijk = tuple(np.rint(state.volume.lps_to_index(p)).astype(int))
            assert painter.labels[ijk] == 1
    qtbot.wait(40)  # the next frame shows it in the turned view
    shown = np.asarray(coronal.overlay_items[0].image)
    rows, cols = (np.linspace(a, b, 60) for a, b in ((c - 20, c + 15), (c - 25, c + 20)))
    assert (shown[np.rint(rows).astype(int), np.rint(cols).astype(int)] == 1).mean() > 0.95
    painter.key(Plane.CORONAL, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert painter.labels.sum() == 0


GRADIENT = np.array([2.0, -1.5, 3.0])  # HU per LPS mm: trilinear resampling keeps it exact


def linear_volume():
    """The ruler test's anisotropic grid, its value a linear function of LPS position."""
    from medview.core.volume import Volume, VolumeMetadata
    from tests.ui.test_measure_tools import AFFINE, SHAPE

    ijk = np.stack(np.indices(SHAPE), axis=-1).reshape(-1, 3)
    lps = ijk @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    array = (lps @ GRADIENT + 100.0).reshape(SHAPE).astype(np.float32)
    return Volume(array, AFFINE.copy(), VolumeMetadata(modality="CT", units="HU"))


def test_ellipse_in_a_turned_plane_measures_its_area_and_hu_in_that_plane(
    qtbot, tmp_path, monkeypatch
):
    """An ellipse drawn in the 35° turned coronal view: its area is pi/4 x its box's sides
    in that plane (mm from the LPS corners), its mean the values at the plane's pixel
    centres inside it; the same after R and when the series is opened again."""
    from medview.viewer.measurements import roi_mask
    from tests.ui.test_measure_tools import Reader

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))  # the measurements file
    reader = Reader(qtbot, linear_volume())
    state, coronal = reader.state, reader.views[Plane.CORONAL]
    turn_handle(reader.views[Plane.AXIAL], 35)
    om = state.view_map(Plane.CORONAL)
    reader.pick(qtbot, "ellipse")
    c = (om.size - 1) / 2
    drag(
        coronal.viewport(),
        reader.screen(Plane.CORONAL, c - 5, c - 7),
        reader.screen(Plane.CORONAL, c + 6, c + 4),
    )
    m, values = reader.only()
    assert m.axes_lps is not None
    down, right = m.axes_lps
    assert np.allclose(down, om.down) and np.allclose(right, om.right)
    d = m.points_lps[1] - m.points_lps[0]
    assert abs(d @ om.normal) < 1e-6  # both corners in the turned plane
    assert values.area_mm2 == pytest.approx(np.pi / 4 * abs(d @ down) * abs(d @ right), rel=1e-6)
    # the pixel centres inside (the module's rule, rebuilt here: the plane's pixels at the
    # finest spacing on a grid with the ROI's centre on a pixel centre) and the value there
    centre = m.points_lps.mean(axis=0)
    corners = [
        ((p - centre) @ down / om.pixel + 50, (p - centre) @ right / om.pixel + 50)
        for p in m.points_lps
    ]
    window, mask = roi_mask("ellipse", np.array(corners), (101, 101))
    rr, cc = np.nonzero(mask)
    rows, cols = (rr + window[0].start - 50) * om.pixel, (cc + window[1].start - 50) * om.pixel
    points = centre + np.outer(rows, down) + np.outer(cols, right)
    expected = points @ GRADIENT + 100.0
    assert values.pixels == len(expected)
    assert values.mean == pytest.approx(expected.mean(), abs=0.02)
    assert values.minimum == pytest.approx(expected.min(), abs=0.02)
    assert values.maximum == pytest.approx(expected.max(), abs=0.02)
    coronal.setFocus()
    qtbot.keyClick(coronal, Qt.Key.Key_R)  # the views straighten: the ROI keeps its plane
    assert not state.oblique and reader.store.values(m.id) == values
    again = Reader(qtbot, linear_volume())  # opened again: read back from the file
    assert np.allclose(again.store.measurements[m.id].axes_lps, m.axes_lps)
    assert again.store.values(m.id) == values


def test_slab_in_a_turned_view_reduces_its_resampled_planes(qtbot, reader):
    """M in the 30° turned coronal view: MIP, then MinIP, of the planes a pixel apart across
    10 mm, each against scipy's trilinear map_coordinates of the same positions; the
    unturned axial view keeps its orthogonal slab."""
    from scipy.ndimage import map_coordinates

    state, axial, coronal = reader.state, reader.views[Plane.AXIAL], reader.views[Plane.CORONAL]
    turn_handle(axial, 30)
    om = state.view_map(Plane.CORONAL)
    idx = state.slice_index(Plane.CORONAL)
    n = round(10.0 / om.pixel)
    rr, cc = np.mgrid[0 : om.size, 0 : om.size]
    array = state.volume.array.astype(np.float64)
    planes = []
    for k in range(idx - (n - 1) // 2, idx - (n - 1) // 2 + n):
        start = om.to_index(k, 0, 0)
        d_row, d_col = om.to_index(k, 1, 0) - start, om.to_index(k, 0, 1) - start
        coords = start[:, None, None] + d_row[:, None, None] * rr + d_col[:, None, None] * cc
        planes.append(map_coordinates(array, coords, order=1, cval=np.nan))
    planes = np.array(planes)
    inside = np.isfinite(planes).all(axis=0)
    assert inside.sum() > 500  # the volume is 14 mm deep along the turned normal
    coronal.setFocus()
    for key_mode, reduce in (("MIP", np.max), ("MinIP", np.min)):
        QTest.keyClick(coronal, Qt.Key.Key_M)
        assert state.slab.label() == f"{key_mode} 10 mm"
        shown = np.asarray(coronal.image_item.image, float)
        assert np.abs(shown[inside] - reduce(planes, axis=0)[inside]).max() <= 1.0  # int16
    single = planes[(n - 1) // 2]
    assert (np.abs(shown[inside] - single[inside]) > 50).mean() > 0.5  # a slab, not a plane
    axial_shown = np.asarray(axial.image_item.image)
    assert axial_shown.shape == state.maps[Plane.AXIAL].screen_shape  # orthogonal still

"""The label tools' geometry on synthetic volumes with known answers: brush sizes in mm on
anisotropic grids, gap-free strokes, threshold, region grow stopping at edges, polygon
areas, interpolation between slices, islands, smoothing, AI finding regions, and plane
pixels mapped to the right voxels in every plane."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from medview.core.geometry import affine_from_plane
from medview.viewer import label_tools as lt
from medview.viewer.planes import Plane, plane_map

SPACING = (2.0, 0.8, 0.7)  # (slice, row, col) mm


@pytest.mark.parametrize("radius", [6.0, 10.0])
def test_sphere_voxel_count_matches_its_volume_on_an_anisotropic_grid(radius):
    offs = lt.ball_offsets(SPACING, radius, None)
    expected = 4 / 3 * math.pi * radius**3 / np.prod(SPACING)
    assert len(offs) == pytest.approx(expected, rel=0.04)
    # extent along each axis is the radius in that axis' voxels
    assert tuple(np.abs(offs).max(axis=0)) == tuple(int(radius // s) for s in SPACING)


def test_disc_lies_in_its_plane_and_matches_its_area():
    offs = lt.ball_offsets(SPACING, 10.0, 0)
    assert (offs[:, 0] == 0).all()
    assert len(offs) == pytest.approx(math.pi * 100 / (0.8 * 0.7), rel=0.03)
    # a brush smaller than a voxel still paints the voxel under it
    assert len(lt.ball_offsets(SPACING, 0.1, 0)) == 1


def test_fast_drag_leaves_no_gap():
    a, b = np.array([5.0, 10, 3]), np.array([5.0, 10, 90])
    pts = lt.stroke_points(a, b, SPACING, 1.0)
    flat = lt.brush_indices(np.vstack([a, pts]), (10, 20, 100), SPACING, 1.0, 0)
    mask = np.zeros((10, 20, 100), bool)
    mask.reshape(-1)[flat] = True
    assert mask[5, 10, 3:91].all()
    assert not mask[4].any() and not mask[6].any()


def test_brush_clipped_at_the_volume_edge():
    flat = lt.brush_indices(np.array([[0.0, 0, 0]]), (4, 4, 4), (1.0, 1.0, 1.0), 1.0, None)
    assert len(flat) == 4  # centre and its three inside neighbours


def test_threshold_keeps_only_values_in_range():
    image = np.arange(100, dtype=np.int16).reshape(1, 10, 10)
    flat = np.arange(100)
    kept = lt.in_range(image, flat, 20, 29)
    assert kept.tolist() == list(range(20, 30))


def test_region_grow_stops_at_the_edge_in_plane_and_in_3d():
    image = np.zeros((10, 40, 40), np.int16)
    image[2:8, 5:15, 5:15] = 100
    image[2:8, 20:30, 20:30] = 100  # same values, not connected
    flat2d = lt.region_grow(image, (4, 8, 8), 10, normal_axis=0)
    assert len(flat2d) == 100
    assert set(np.unravel_index(flat2d, image.shape)[0]) == {4}
    flat3d = lt.region_grow(image, (4, 8, 8), 10)
    assert len(flat3d) == 600
    assert len(lt.region_grow(image, (4, 8, 8), 150)) == image.size  # everything
    assert len(lt.region_grow(image, (99, 0, 0), 10)) == 0  # outside


def test_region_grow_box_grows_past_its_start():
    image = np.zeros((4, 300, 300), np.int16)
    image[:, 1:299, 1:299] = 7
    flat = lt.region_grow(image, (1, 150, 150), 0, normal_axis=0, start_reach=8)
    assert len(flat) == 298 * 298


def test_polygon_area_and_concave_shapes():
    rows, _cols = lt.polygon_pixels([(10, 10), (10, 30), (30, 30), (30, 10)], (64, 64))
    assert len(rows) == pytest.approx(20 * 20, rel=0.06)
    tri_r, _ = lt.polygon_pixels([(0, 0), (0, 60), (60, 0)], (64, 64))
    assert len(tri_r) == pytest.approx(60 * 60 / 2, rel=0.05)
    # a U shape: the notch stays empty
    u = [(0, 0), (0, 30), (30, 30), (30, 20), (10, 20), (10, 10), (30, 10), (30, 0)]
    r, c = lt.polygon_pixels(u, (64, 64))
    mask = np.zeros((64, 64), bool)
    mask[r, c] = True
    assert mask[5, 15] and not mask[20, 15] and mask[20, 5] and mask[20, 25]
    # clipped to the image, and fewer than three points fill nothing
    r, _ = lt.polygon_pixels([(-10, -10), (-10, 100), (100, 100), (100, -10)], (16, 16))
    assert len(r) == 256
    assert len(lt.polygon_pixels([(0, 0), (5, 5)], (16, 16))[0]) == 0


@pytest.mark.parametrize("plane", list(Plane))
def test_screen_pixels_map_to_the_voxels_plane_maps_name(plane):
    # an oblique-free but flipped stack: slices go inferior, rows go anterior
    affine = affine_from_plane((0, 0, 0), (1, 0, 0), (0, -1, 0), (0.8, 0.7), (0, 0, -2.0))
    shape = (6, 9, 11)
    pm = plane_map(affine, shape, plane)
    rows, cols = np.meshgrid(
        np.arange(pm.screen_shape[0]), np.arange(pm.screen_shape[1]), indexing="ij"
    )
    ijk = lt.screen_to_ijk(pm, 2, rows, cols)
    expected = np.array(
        [pm.to_index(2, r, c) for r, c in zip(rows.ravel(), cols.ravel(), strict=True)]
    )
    assert np.array_equal(ijk, expected)
    # and the screen image of a volume numbered by flat index shows those voxels
    numbered = np.arange(np.prod(shape)).reshape(shape)
    flat = lt.flat_indices(ijk, shape)
    assert np.array_equal(flat, pm.image(numbered, 2).ravel())


def test_interpolation_fills_the_slices_between_drawn_ones():
    labels = np.zeros((12, 40, 40), np.uint8)
    yy, xx = np.mgrid[:40, :40]
    disc = (yy - 20) ** 2 + (xx - 20) ** 2 <= 64
    labels[2][disc] = 3
    labels[8][disc] = 3
    labels[5, 0:3, 0:3] = 1  # another segment: left alone
    flat = lt.interpolated(labels, 3, axis=0)
    out = labels.copy()
    out.reshape(-1)[flat] = 3
    for k in range(3, 8):
        assert np.array_equal(out[k] == 3, disc)
    # a shape that grows grows through the slices between
    labels[8][(yy - 20) ** 2 + (xx - 20) ** 2 <= 225] = 3
    grown = lt.interpolated(labels, 3, axis=0, spacing_mm=(2.0, 1.0, 1.0))
    out = labels.copy()
    out.reshape(-1)[grown] = 3
    areas = [(out[k] == 3).sum() for k in range(2, 9)]
    assert areas == sorted(areas) and areas[0] < areas[3] < areas[-1]
    assert (out[:2] == 0).all() and (out[9:] == 0).all()
    assert (out[5, 0:3, 0:3] == 1).all()
    assert len(lt.interpolated(labels, 9)) == 0  # no such segment


def test_small_islands_go_large_pieces_stay():
    labels = np.zeros((10, 30, 30), np.uint8)
    labels[2:8, 5:15, 5:15] = 2
    labels[1, 25, 25] = 2
    labels[8:10, 25:27, 25:27] = 2  # 8 voxels
    flat = lt.small_islands(labels, 2, 10)
    assert len(flat) == 9
    labels.reshape(-1)[flat] = 0
    assert (labels == 2).sum() == 600


def test_smoothing_removes_a_spike_and_fills_a_hole():
    labels = np.zeros((20, 40, 40), np.uint8)
    labels[5:15, 10:30, 10:30] = 1
    labels[10, 5:10, 20] = 1  # a thin spike out of the block
    labels[10, 20, 20] = 0  # a one-voxel hole
    labels[0, 0, 0] = 2  # another segment
    add, remove = lt.smoothed(labels, 1, 2.0, (1.0, 1.0, 1.0))
    out = labels.copy()
    out.reshape(-1)[add] = 1
    out.reshape(-1)[remove] = 0
    assert (out[10, 5:10, 20] == 0).all() and out[10, 20, 20] == 1
    assert out[0, 0, 0] == 2
    assert (out[7:13, 13:27, 13:27] == 1).all()  # the body stays


def test_finding_indices_pick_the_findings_own_region():
    mask = np.zeros((10, 30, 30), np.uint8)
    mask[2:6, 2:12, 2:4] = 1  # the finding: an L of 144 voxels ...
    mask[2:6, 10:12, 2:12] = 1
    mask[3, 4:6, 7:9] = 1  # ... and another region of its label inside its box
    mask[4, 5, 5] = 2  # and another label
    finding = SimpleNamespace(bbox_index=((2, 2, 2), (5, 11, 11)), label_value=1, voxel_count=144)
    flat = lt.finding_indices(mask, finding)
    got = np.zeros_like(mask)
    got.reshape(-1)[flat] = 1
    assert len(flat) == 144 and got[3, 4:6, 7:9].sum() == 0 and got[4, 5, 5] == 0
    assert got[2:6, 10:12, 2:12].all()

"""Measurement maths without Qt, on a volume with known anisotropic spacing (slices 2.5 mm,
rows 0.6 mm, columns 0.9 mm) and on an oblique one: lengths and angles from LPS points, ROI
voxels and statistics against a mask rebuilt here from the documented rule, areas, the
screen <-> LPS round trip and the record's JSON form."""

import math

import numpy as np
import pytest

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.viewer.measurements import (
    ANGLE,
    ELLIPSE,
    RECTANGLE,
    RULER,
    Measurement,
    angle_deg,
    lps_to_screen,
    measure,
    roi_mask,
    screen_to_lps,
    value_lines,
)
from medview.viewer.planes import Plane, plane_map

SHAPE = (12, 24, 32)
AXIAL = affine_from_plane((-10, 20, -30), (1, 0, 0), (0, 1, 0), (0.6, 0.9), (0, 0, 2.5))
c, s = math.cos(0.4), math.sin(0.4)
OBLIQUE = affine_from_plane(
    (5, -3, 2),
    (c, s, 0),
    (-s * 0.8, c * 0.8, 0.6),
    (0.6, 0.9),
    np.cross((c, s, 0), (-s * 0.8, c * 0.8, 0.6)) * 2.5,
)
# (row, col) spacing on screen of each plane of AXIAL
PIXEL_MM = {Plane.AXIAL: (0.6, 0.9), Plane.CORONAL: (2.5, 0.9), Plane.SAGITTAL: (2.5, 0.6)}


def volume(affine=AXIAL, units="HU") -> Volume:
    array = np.random.default_rng(3).integers(-1000, 2000, SHAPE).astype(np.int16)
    return Volume(array, affine.copy(), VolumeMetadata(modality="CT", units=units))


def make(kind, vol, plane, index, rows_cols) -> Measurement:
    pm = plane_map(vol.affine, vol.shape, plane)
    return Measurement(kind, plane, index, screen_to_lps(vol, pm, index, np.array(rows_cols)))


def values(m, vol):
    return measure(m, vol, plane_map(vol.affine, vol.shape, m.plane))


@pytest.mark.parametrize("plane", list(Plane))
@pytest.mark.parametrize(("a", "b"), [((1, 2), (1, 20)), ((0, 5), (11, 5)), ((2, 3), (9, 17))])
def test_ruler_length_uses_each_axis_spacing(plane, a, b):
    vol = volume()
    m = make(RULER, vol, plane, 5, [a, b])
    dr, dc = PIXEL_MM[plane]
    expected = math.hypot((b[0] - a[0]) * dr, (b[1] - a[1]) * dc)
    assert values(m, vol).length_mm == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("affine", [AXIAL, OBLIQUE], ids=["axial", "oblique"])
@pytest.mark.parametrize("plane", list(Plane))
def test_screen_and_lps_round_trip(affine, plane):
    vol = volume(affine)
    pm = plane_map(vol.affine, vol.shape, plane)
    rc = np.array([[0.0, 0.0], [3.25, 7.5], [10.7, 1.2]])
    lps = screen_to_lps(vol, pm, 4, rc)
    assert np.allclose(lps_to_screen(vol, pm, lps), rc, atol=1e-9)
    ijk = vol.lps_to_index(lps)
    assert np.allclose(ijk[:, pm.normal_axis], 4)  # on the slice it was drawn on


def test_angle_between_arms_in_millimetres_not_pixels():
    vol = volume()
    # axial: one arm along a row, the other 10 rows down and 10 columns across; with
    # 0.6 x 0.9 mm pixels that is atan(9 / 6), not 45 degrees
    m = make(ANGLE, vol, Plane.AXIAL, 3, [(5, 20), (5, 5), (15, 15)])
    assert values(m, vol).angle_deg == pytest.approx(math.degrees(math.atan2(6, 9)), abs=1e-9)
    m = make(ANGLE, vol, Plane.CORONAL, 3, [(0, 5), (5, 5), (5, 20)])
    assert values(m, vol).angle_deg == pytest.approx(90, abs=1e-9)
    assert angle_deg(np.zeros(3), np.zeros(3), np.ones(3)) == 0.0  # a point arm: no angle


def rule_mask(kind, corners, shape):
    """The module docstring's rule, written out over the whole image."""
    (r0, c0), (r1, c1) = np.sort(np.asarray(corners, float), axis=0)
    rr, cc = np.indices(shape)
    if kind == RECTANGLE:
        return (rr >= r0 - 1e-6) & (rr <= r1 + 1e-6) & (cc >= c0 - 1e-6) & (cc <= c1 + 1e-6)
    ar, ac = (r1 - r0) / 2, (c1 - c0) / 2
    return ((rr - (r0 + r1) / 2) / ar) ** 2 + ((cc - (c0 + c1) / 2) / ac) ** 2 <= 1 + 1e-6


@pytest.mark.parametrize("kind", [ELLIPSE, RECTANGLE])
@pytest.mark.parametrize("plane", list(Plane))
@pytest.mark.parametrize("seed", range(4))
def test_roi_statistics_equal_numpy_on_the_same_voxels(kind, plane, seed):
    vol = volume()
    pm = plane_map(vol.affine, vol.shape, plane)
    rows, cols = pm.screen_shape
    rng = np.random.default_rng(seed)
    corners = rng.uniform(-2, [rows + 1, cols + 1], (2, 2))
    corners[1] = corners[0] + np.maximum(np.abs(corners[1] - corners[0]), 1.5)
    m = make(kind, vol, plane, 2, corners)
    v = values(m, vol)
    image = pm.image(vol.array, 2)
    mask = rule_mask(kind, corners, image.shape)
    assert v.pixels == mask.sum()
    if not mask.any():
        assert v.mean is None
        return
    inside = image[mask]
    assert v.mean == pytest.approx(np.mean(inside), abs=1e-6)
    assert v.sd == pytest.approx(np.std(inside), abs=1e-6)
    assert (v.minimum, v.maximum) == (inside.min(), inside.max())
    dr, dc = PIXEL_MM[plane]
    (h, w) = np.abs(corners[1] - corners[0]) * (dr, dc)
    assert v.area_mm2 == pytest.approx(w * h * (math.pi / 4 if kind == ELLIPSE else 1))
    assert v.unit == "HU"


def test_voxel_centres_on_the_edge_count_and_between_centres_nothing_does():
    vol = volume()
    m = make(RECTANGLE, vol, Plane.AXIAL, 0, [(2, 3), (4, 6)])  # centres on every edge
    assert values(m, vol).pixels == 3 * 4
    m = make(ELLIPSE, vol, Plane.AXIAL, 0, [(2, 3), (6, 9)])  # its 4 extreme points too
    _, mask = roi_mask(ELLIPSE, np.array([(2, 3), (6, 9)]), (24, 32))
    assert mask[0, 3] and mask[4, 3] and mask[2, 0] and mask[2, 6]  # top, bottom, sides
    assert values(m, vol).pixels == mask.sum()
    m = make(RECTANGLE, vol, Plane.AXIAL, 0, [(2.2, 3.2), (2.8, 3.8)])
    v = values(m, vol)
    assert v.pixels == 0 and v.mean is None and v.area_mm2 == pytest.approx(0.36 * 0.54)


def test_roi_outside_the_image_holds_nothing_and_a_flat_ellipse_nothing():
    vol = volume()
    assert values(make(RECTANGLE, vol, Plane.AXIAL, 0, [(-9, -9), (-3, -2)]), vol).pixels == 0
    assert values(make(ELLIPSE, vol, Plane.AXIAL, 0, [(5, 2), (5, 9)]), vol).pixels == 0


def test_oblique_roi_area_follows_the_affine():
    vol = volume(OBLIQUE)
    pm = plane_map(vol.affine, vol.shape, Plane.AXIAL)
    m = make(RECTANGLE, vol, pm.plane, 1, [(2, 2), (12, 22)])
    row_vec = vol.affine[:3, pm.row_axis] * 10
    col_vec = vol.affine[:3, pm.col_axis] * 20
    assert values(m, vol).area_mm2 == pytest.approx(np.linalg.norm(np.cross(row_vec, col_vec)))


def test_colour_images_have_area_but_no_statistics():
    vol = volume()
    vol = Volume(np.zeros((*SHAPE, 3), np.uint8), vol.affine, vol.metadata)
    v = values(make(ELLIPSE, vol, Plane.AXIAL, 0, [(2, 2), (10, 12)]), vol)
    assert v.pixels > 0 and v.mean is None and v.area_mm2 > 0
    assert value_lines(make(ELLIPSE, vol, Plane.AXIAL, 0, [(2, 2), (10, 12)]), v) == [
        f"area {v.area_mm2:.1f} mm²  ({v.pixels} px)"
    ]


def test_value_lines():
    vol = volume()
    ruler = make(RULER, vol, Plane.AXIAL, 0, [(0, 0), (0, 10)])
    assert value_lines(ruler, values(ruler, vol)) == ["9.0 mm"]
    angle = make(ANGLE, vol, Plane.CORONAL, 0, [(0, 5), (5, 5), (5, 20)])
    assert value_lines(angle, values(angle, vol)) == ["90.0°"]
    roi = make(RECTANGLE, vol, Plane.AXIAL, 0, [(2, 3), (4, 6)])
    v = values(roi, vol)
    assert value_lines(roi, v)[0] == f"mean {v.mean:.1f} HU  SD {v.sd:.1f}"
    assert value_lines(roi, v)[1] == f"min {v.minimum:.0f}  max {v.maximum:.0f}"


def test_record_round_trips_through_json_form():
    vol = volume()
    m = make(ANGLE, vol, Plane.SAGITTAL, 7, [(1, 2), (3, 4), (5, 1)])
    m.number, m.label = 3, "carina"
    back = Measurement.from_dict(m.to_dict())
    assert (back.kind, back.plane, back.slice_index, back.number, back.label, back.id) == (
        ANGLE,
        Plane.SAGITTAL,
        7,
        3,
        "carina",
        m.id,
    )
    assert np.allclose(back.points_lps, m.points_lps, atol=1e-6)
    assert (
        back.name == "carina"
        and Measurement(RULER, Plane.AXIAL, 0, np.zeros((2, 3)), number=2).name == "Ruler 2"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "protractor"}, "unknown kind"),
        ({"plane": "oblique"}, "unknown plane"),
        ({"slice_index": "3"}, "integers"),
        ({"id": ""}, "text"),
        ({"points_lps": [[0, 0, 0]]}, "needs 3 finite"),
        ({"points_lps": [[0, 0, "x"]] * 3}, "not a list of numbers"),
        ({"points_lps": [[0, 0, float("nan")]] * 3}, "finite"),
    ],
)
def test_bad_records_are_refused_with_a_reason(change, reason):
    d = make(ANGLE, volume(), Plane.AXIAL, 0, [(1, 2), (3, 4), (5, 1)]).to_dict()
    d.update(change)
    with pytest.raises(ValueError, match=reason):
        Measurement.from_dict(d)
    with pytest.raises(ValueError, match="not an object"):
        Measurement.from_dict([1, 2])

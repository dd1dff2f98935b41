"""Oblique planes on a volume with known anisotropic spacing (slices 2.5 mm, rows 0.8 mm,
columns 0.6 mm) and a tilted affine: a ruler drawn between two known points measures their
known distance to 0.1 mm; pixels agree with scipy's trilinear map_coordinates; orientation
letters follow the rotation."""

import numpy as np
import pytest
from scipy import ndimage

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.viewer.measurements import RULER, Measurement, measure, screen_to_lps
from medview.viewer.oblique import ObliqueMap, rotation
from medview.viewer.planes import Plane

SHAPE = (24, 40, 50)
AFFINE = affine_from_plane((-12, -15, 40), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))


@pytest.fixture
def volume():
    rng = np.random.default_rng(5)
    return Volume(
        rng.integers(-1000, 1000, SHAPE).astype(np.int16),
        AFFINE.copy(),
        VolumeMetadata(modality="CT"),
    )


def double_oblique(volume, centre):
    rot = rotation((0, 0, 1), 30) @ rotation((1, 0, 0), 20)  # about S, then about L
    return ObliqueMap.through(volume.affine, volume.shape, centre, rot @ [0, 1, 0], rot @ [1, 0, 0])


def test_ruler_in_a_double_oblique_plane_measures_the_known_distance(volume):
    a_idx, b_idx = np.array([6.0, 10.0, 12.0]), np.array([14.0, 31.0, 40.0])
    a, b = volume.index_to_lps(a_idx), volume.index_to_lps(b_idx)
    known = float(np.linalg.norm(b - a))  # 8 slices, 21 rows, 28 columns apart
    assert known == pytest.approx(np.linalg.norm([28 * 0.6, 21 * 0.8, 8 * 2.5]))
    # the plane through both points, its rows along a -> b
    pm = ObliqueMap.through(volume.affine, volume.shape, a, b - a, np.cross(b - a, [0.3, 1, 0.2]))
    k, ra, ca = pm.from_index(a_idx)
    k2, rb, cb = pm.from_index(b_idx)
    assert k2 == pytest.approx(k)  # both in the plane
    ends = screen_to_lps(volume, pm, round(k), np.array([[ra, ca], [rb, cb]]))
    ruler = Measurement(RULER, Plane.AXIAL, round(k), ends)  # plane: which view drew it
    assert measure(ruler, volume, pm).length_mm == pytest.approx(known, abs=0.1)
    # on screen it is as long as the pixels say: pixels are square, at the finest spacing
    assert np.hypot(rb - ra, cb - ca) * pm.pixel == pytest.approx(known, abs=0.1)


def test_pixels_equal_scipy_trilinear(volume):
    centre = volume.index_to_lps(np.array([11.0, 19.0, 23.0]))
    pm = double_oblique(volume, centre)
    k = pm.n_slices // 2
    got = pm.image(volume.array, k)
    rows, cols = np.mgrid[0 : pm.size, 0 : pm.size]
    idx = np.array(
        [pm.to_index(k, r, c) for r, c in zip(rows.ravel(), cols.ravel(), strict=True)]
    ).T
    ref = ndimage.map_coordinates(
        volume.array.astype(np.float64), idx, order=1, mode="constant", cval=np.nan
    ).reshape(pm.size, pm.size)
    inside = np.all((idx >= 0) & (idx <= np.array(SHAPE)[:, None] - 1), axis=0)
    inside = inside.reshape(pm.size, pm.size)
    assert inside.sum() > 500
    assert np.abs(got[inside] - np.rint(ref[inside])).max() <= 1  # float32 weights
    assert (got[~inside] == -1024).all()


def test_round_trip_and_labels_by_nearest(volume):
    centre = volume.index_to_lps(np.array([11.0, 19.0, 23.0]))
    pm = double_oblique(volume, centre)
    ijk = np.array([9.3, 22.1, 30.7])
    assert np.allclose(pm.to_index(*pm.from_index(ijk)), ijk)
    labels = np.zeros(SHAPE, np.uint8)
    labels[11, 19, 23] = 4
    k, r, c = pm.from_index(np.array([11.0, 19.0, 23.0]))
    img = pm.image(labels, round(k))
    assert img[round(r), round(c)] == 4 and set(np.unique(img)) == {0, 4}


def test_letters_follow_the_rotation(volume):
    centre = volume.index_to_lps(np.array([11.0, 19.0, 23.0]))
    straight = ObliqueMap.through(volume.affine, volume.shape, centre, [0, 1, 0], [1, 0, 0])
    assert straight.edge_letters == ("A", "P", "R", "L")
    tilted = ObliqueMap.through(
        volume.affine,
        volume.shape,
        centre,
        rotation((0, 0, 1), 30) @ [0, 1, 0],
        rotation((0, 0, 1), 30) @ [1, 0, 0],
    )
    assert tilted.edge_letters[1] in ("PR", "RP") and tilted.edge_letters[3] in ("LP", "PL")

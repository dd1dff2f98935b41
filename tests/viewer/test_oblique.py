"""Oblique planes on a volume with known anisotropic spacing (slices 2.5 mm, rows 0.8 mm,
columns 0.6 mm) and a tilted affine: a ruler drawn between two known points measures their
known distance to 0.1 mm; pixels agree with scipy's trilinear map_coordinates; orientation
letters follow the rotation. The reslice itself (only the pixels inside, float32, buffers kept
between frames) against map_coordinates in float64 for planes that leave the volume on any
side, run backwards, lie along the axes, miss it, cut a single image or a volume of more than
2**24 voxels; a frame does not change an earlier one; threads do not share buffers."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import ndimage

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.viewer.measurements import RULER, Measurement, measure, screen_to_lps
from medview.viewer.oblique import ObliqueMap, reslice, rotation
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


def reference(array, start, d_row, d_col, shape, eps=1e-6):
    """map_coordinates in float64 of every pixel, which pixels are inside (on a face
    included) and which are a rounding outside (either fill or the face's value is right)."""
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    idx = np.array([start[a] + r * d_row[a] + c * d_col[a] for a in range(3)])
    ref = ndimage.map_coordinates(array.astype(np.float64), idx, order=1, mode="nearest")
    hi = np.array(array.shape, float)[:, None, None] - 1
    inside = np.all((idx >= 0) & (idx <= hi), axis=0)
    near = np.all((idx >= -eps) & (idx <= hi + eps), axis=0) & ~inside
    return ref, inside, near


def assert_matches(array, start, d_row, d_col, shape, tol):
    args = (np.array(start, float), np.array(d_row, float), np.array(d_col, float), shape)
    got = reslice(array, *args)
    ref, inside, near = reference(array, *args)
    fill = -1024 if array.dtype == np.int16 else 0
    assert got.dtype == array.dtype and got.shape == shape
    assert np.abs(got[inside] - ref[inside]).max(initial=0) <= tol
    assert (got[~inside & ~near] == fill).all()
    assert ((got[near] == fill) | (np.abs(got[near] - ref[near]) <= tol)).all()
    return inside.sum()


ROT = rotation((0, 0, 1), 30) @ rotation((1, 0, 0), 20)
MIDDLE = (np.array(SHAPE) - 1) / 2


def centred(centre, d_row, d_col, shape):
    """start, d_row, d_col, shape of the plane whose middle pixel is at index `centre`."""
    d_row, d_col = np.asarray(d_row, float), np.asarray(d_col, float)
    start = np.asarray(centre, float) - (shape[0] - 1) / 2 * d_row - (shape[1] - 1) / 2 * d_col
    return start, d_row, d_col, shape


PLANES = {
    # leaving the volume on every side of the canvas; no column step along the slices
    "double oblique": centred(MIDDLE, ROT[:, 1] * 0.9, ROT[:, 0] * 0.9, (90, 100)),
    # rows and columns running backwards
    "backwards": centred(MIDDLE + 1.3, -ROT[:, 2] * 0.7, -ROT[:, 0] * 0.8, (80, 90)),
    # along the axes (a column step of 0 on two axes), rows and columns off both ends
    "axial": ((7.0, -3.5, -4.25), (0, 1, 0), (0, 0, 1), (48, 60)),
    # in the volume's face plane of columns
    "face": ((-2.0, -3.0, 0.0), (0.5, 0, 0), (0, 0.5, 0), (60, 90)),
    # pixels exactly on faces that a division puts a rounding outside
    "through faces": ((2.3, -3.0, 1.5), (0.1, 0.8, 0.3), (0.2, -0.3, 0.9), (60, 70)),
}


@pytest.mark.parametrize("name", PLANES)
def test_reslice_equals_float64_trilinear(volume, name):
    start, d_row, d_col, shape = PLANES[name]
    # int16 is rounded to the nearest unit: 1 with float32 weights
    assert assert_matches(volume.array, start, d_row, d_col, shape, 1) > 300
    values = volume.array.astype(np.float32) / 7
    assert assert_matches(values, start, d_row, d_col, shape, 1e-3) > 300
    mr = (volume.array + 1000).astype(np.uint16)  # MR-like, unsigned
    assert assert_matches(mr, start, d_row, d_col, shape, 1) > 300


def test_reslice_of_a_plane_missing_the_volume_or_on_its_last_slice(volume):
    a = volume.array
    missed = reslice(
        a, np.array([-5.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0]), (9, 9)
    )
    assert (missed == -1024).all()
    last = reslice(
        a, np.array([23.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0]), (40, 50)
    )
    assert np.array_equal(last, a[23])  # interpolated from below with weight 1


def test_reslice_of_a_single_image():
    image = np.random.default_rng(2).integers(-500, 500, (1, 30, 40)).astype(np.int16)
    d = np.array([0, np.cos(0.4), np.sin(0.4)])
    n = np.array([0, -np.sin(0.4), np.cos(0.4)])
    assert assert_matches(image, (0, 5.0, -8.0), d * 0.8, n * 0.8, (50, 50), 1) > 300


def test_reslice_of_more_than_2_24_voxels_with_uneven_strides():
    """Flat indices above 2**24 from strides that are no power of two: exact in integers,
    not in float32."""
    big = np.random.default_rng(3).integers(-1000, 1000, (90, 515, 471)).astype(np.int16)
    d_row, d_col = ROT[:, 1], ROT[:, 0]
    start = np.array([80.0, 400.0, 300.0]) - 40 * d_row - 40 * d_col
    assert assert_matches(big, start, d_row, d_col, (81, 81), 1) > 2000


def test_a_frame_leaves_earlier_frames_alone_and_threads_their_own(volume):
    start, d_row, d_col, shape = PLANES["double oblique"]
    a = volume.array
    first = reslice(a, start, d_row, d_col, shape)
    kept = first.copy()
    small = reslice(a, np.array([5.0, 5, 5]), d_row, d_col, (7, 7))
    again = reslice(a, start, d_row, d_col, shape)
    assert np.array_equal(first, kept) and np.array_equal(again, kept)
    planes = [(start + k * ROT[:, 2], shape) for k in range(-4, 5)]
    alone = [reslice(a, s, d_row, d_col, sh) for s, sh in planes]
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda p: reslice(a, p[0], d_row, d_col, p[1]), planes * 4))
    assert all(np.array_equal(x, alone[i % len(planes)]) for i, x in enumerate(both))
    assert small.shape == (7, 7)

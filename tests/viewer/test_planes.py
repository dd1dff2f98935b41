"""Planes on an orientation stamp: each screen edge must show the patient side it faces."""

import numpy as np
import pytest

from medview.core.geometry import affine_from_plane
from medview.viewer.planes import Plane, native_plane, plane_map

AXIAL = affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (0.5, 0.7), (0, 0, 2.0))
SAGITTAL = affine_from_plane((0, 0, 0), (0, 1, 0), (0, 0, -1), (0.5, 0.7), (2.0, 0, 0))
CORONAL = affine_from_plane((0, 0, 0), (1, 0, 0), (0, 0, -1), (0.5, 0.7), (0, 2.0, 0))


def marker_volume(shape=(6, 8, 10)):
    """Distinct value at every voxel: 100*slice + 10*row... encoded uniquely."""
    s, r, c = np.indices(shape)
    return (s * 10000 + r * 100 + c).astype(np.int32)


def lps_of_screen(affine, shape, plane, index, row, col):
    pm = plane_map(affine, shape, plane)
    ijk = pm.to_index(index, row, col)
    return affine[:3, :3] @ ijk + affine[:3, 3]


@pytest.mark.parametrize("affine", [AXIAL, SAGITTAL, CORONAL], ids=["ax", "sag", "cor"])
@pytest.mark.parametrize("plane", list(Plane))
def test_screen_directions_follow_radiology_conventions(affine, plane):
    shape = (6, 8, 10)
    pm = plane_map(affine, shape, plane)
    rows, cols = pm.image(marker_volume(shape), 0).shape
    p0 = lps_of_screen(affine, shape, plane, 0, 0, 0)
    down = lps_of_screen(affine, shape, plane, 0, rows - 1, 0) - p0
    right = lps_of_screen(affine, shape, plane, 0, 0, cols - 1) - p0
    if plane is Plane.AXIAL:
        assert down[1] > 0 and right[0] > 0  # anterior up, patient right on screen left
        assert pm.edge_letters == ("A", "P", "R", "L")
    elif plane is Plane.CORONAL:
        assert down[2] < 0 and right[0] > 0
        assert pm.edge_letters == ("S", "I", "R", "L")
    else:
        assert down[2] < 0 and right[1] > 0  # anterior on screen left
        assert pm.edge_letters == ("S", "I", "A", "P")


@pytest.mark.parametrize("affine", [AXIAL, SAGITTAL, CORONAL], ids=["ax", "sag", "cor"])
@pytest.mark.parametrize("plane", list(Plane))
def test_image_pixels_and_index_mapping_agree(affine, plane):
    shape = (6, 8, 10)
    vol = marker_volume(shape)
    pm = plane_map(affine, shape, plane)
    img = pm.image(vol, 2)
    assert np.shares_memory(img, vol)  # a view, not a copy
    for row, col in ((0, 0), (img.shape[0] - 1, 1), (1, img.shape[1] - 1)):
        ijk = pm.to_index(2, row, col).astype(int)
        assert img[row, col] == vol[tuple(ijk)]
        assert pm.from_index(ijk) == (2.0, row, col)


def test_pixel_spacing_and_native_plane():
    assert native_plane(AXIAL) is Plane.AXIAL
    assert native_plane(SAGITTAL) is Plane.SAGITTAL
    assert native_plane(CORONAL) is Plane.CORONAL
    pm = plane_map(AXIAL, (6, 8, 10), Plane.CORONAL)
    assert pm.pixel_mm == (2.0, 0.7) and pm.n_slices == 8


def test_oblique_plane_has_mixed_letters():
    t = np.radians(30)
    obl = affine_from_plane(
        (0, 0, 0), (np.cos(t), np.sin(t), 0), (-np.sin(t), np.cos(t), 0), (1, 1), (0, 0, 1)
    )
    pm = plane_map(obl, (4, 5, 6), Plane.AXIAL)
    assert pm.edge_letters[3] == "LP" and pm.edge_letters[1] == "PR"

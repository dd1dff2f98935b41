import numpy as np
import pytest

from medview.core import geometry


def test_affine_maps_indices_to_the_positions_dicom_describes():
    # sagittal plane: rows run down (-S), columns run posterior (+P), slices step left (+L)
    row_cos, col_cos = (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)
    affine = geometry.affine_from_plane(
        (10.0, -20.0, 30.0), row_cos, col_cos, (0.5, 0.8), (2.0, 0.0, 0.0)
    )
    # voxel (slice 3, row 4, col 5): 3 slices * 2 mm L, 4 rows * 0.5 mm I, 5 cols * 0.8 mm P
    p = geometry.index_to_lps(affine, [3, 4, 5])
    assert np.allclose(p, [10 + 6.0, -20 + 4.0, 30 - 2.0])
    assert np.allclose(geometry.lps_to_index(affine, p), [3, 4, 5])
    assert geometry.spacing_from_affine(affine) == pytest.approx((2.0, 0.5, 0.8))


def test_slice_normal_is_row_cross_column():
    assert np.allclose(geometry.slice_normal((1, 0, 0), (0, 1, 0)), [0, 0, 1])
    with pytest.raises(ValueError):
        geometry.slice_normal((1, 0, 0), (2, 0, 0))


def test_shear_angle_measures_gantry_tilt():
    tilt = np.radians(15)
    step = (0.0, np.sin(tilt) * 2.0, np.cos(tilt) * 2.0)
    affine = geometry.affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1), step)
    assert geometry.shear_angle_deg(affine) == pytest.approx(15.0, abs=1e-6)
    straight = geometry.affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1), (0, 0, 2))
    assert geometry.shear_angle_deg(straight) == pytest.approx(0.0, abs=1e-6)


def test_ras_conversion_flips_x_and_y_only():
    affine = geometry.affine_from_plane((1, 2, 3), (1, 0, 0), (0, 1, 0), (1, 1), (0, 0, 1))
    ras = geometry.lps_affine_to_ras(affine)
    assert np.allclose(ras[:3, 3], [-1, -2, 3])


@pytest.mark.parametrize(
    ("direction", "letters"),
    [
        ((1, 0, 0), "L"),
        ((-1, 0, 0), "R"),
        ((0, 1, 0), "P"),
        ((0, 0, -1), "I"),
        ((0.9, 0.4, 0.0), "LP"),
        ((0.99, 0.05, 0.0), "L"),
    ],
)
def test_orientation_letters(direction, letters):
    assert geometry.orientation_letter(direction) == letters

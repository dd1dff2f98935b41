"""An asymmetric "orientation stamp" volume goes write -> read through every format, and
DICOM -> MedView's reader -> NIfTI -> read, and must come back identical: any flip,
transpose or swapped axis in the RAS<->LPS and (slice, row, col)<->(x, y, z) conversions
changes either its values or its affine."""

from __future__ import annotations

from pathlib import Path

import dicom_factory as F
import nibabel as nib
import numpy as np
import pytest

from medview.core import geometry
from medview.core.volume import Volume
from medview.io.dicom.index import scan
from medview.io.dicom.volume import load_series
from medview.io.image_files import SUPPORTED_READ_SUFFIXES, read_image, write_volume

# An oblique plane whose cosines are exact decimals, so DICOM's decimal strings hold them
# exactly: row x column = normal = (0.64, -0.48, 0.6).
ROW_COS = (0.6, 0.8, 0.0)
COL_COS = (-0.48, 0.36, 0.8)
SPACING_RC = (0.75, 0.5)
THICKNESS = 2.5
ORIGIN = (-100.25, 20.5, 33.75)
SHAPE = (5, 7, 9)


def stamp_volume() -> Volume:
    """5 x 7 x 9 int16 HU: every voxel has its own value (so any flip or transpose shows),
    the three first-index faces carry distinct markers, and values go negative like CT."""
    hu = (np.arange(np.prod(SHAPE)).reshape(SHAPE) * 7 - 1000).astype(np.int16)
    hu[0, 0, :] = 3000  # first slice, first row
    hu[0, :, 0] = 2000  # first slice, first column
    hu[:, 0, 0] = 1500  # first row and column of every slice
    step = geometry.slice_normal(ROW_COS, COL_COS) * THICKNESS
    affine = geometry.affine_from_plane(ORIGIN, ROW_COS, COL_COS, SPACING_RC, step)
    return Volume(hu, affine)


def _assert_identical(got: Volume, want: Volume) -> None:
    assert got.array.dtype == want.array.dtype == np.int16
    np.testing.assert_array_equal(got.array, want.array)
    np.testing.assert_allclose(got.affine, want.affine, atol=1e-5, rtol=0)


def test_stamp_is_asymmetric() -> None:
    arr = stamp_volume().array
    for axes in ([0], [1], [2], [0, 1], [1, 2], [0, 2]):
        assert not np.array_equal(np.flip(arr, axes), arr)
    assert np.unique(arr[1:, 1:, 1:]).size == arr[1:, 1:, 1:].size


@pytest.mark.parametrize("suffix", SUPPORTED_READ_SUFFIXES)
def test_stamp_round_trip(tmp_path: Path, suffix: str) -> None:
    stamp = stamp_volume()
    assert write_volume(stamp, tmp_path / f"stamp{suffix}") == []
    _assert_identical(read_image(tmp_path / f"stamp{suffix}"), stamp)


def test_stamp_npy(tmp_path: Path) -> None:
    stamp = stamp_volume()
    write_volume(stamp, tmp_path / "stamp.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "stamp.npy"), stamp.array)


def test_stamp_nifti_seen_by_nibabel(tmp_path: Path) -> None:
    """nibabel (x, y, z) = our (col, row, slice); its RAS world = LPS with x, y negated."""
    stamp = stamp_volume()
    write_volume(stamp, tmp_path / "stamp.nii.gz")
    img = nib.load(tmp_path / "stamp.nii.gz")
    data = np.asanyarray(img.dataobj)
    assert data[0, 0, 0] == 1500 and data[1, 0, 0] == 3000 and data[0, 1, 0] == 2000
    # The voxel at the last (slice, row, col) is at the same world point in both.
    last = np.array(SHAPE) - 1
    want_ras = geometry.LPS_TO_RAS[:3, :3] @ stamp.index_to_lps(last)
    np.testing.assert_allclose(img.affine @ [*last[::-1], 1], [*want_ras, 1], atol=1e-4)
    assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(
        geometry.LPS_TO_RAS @ stamp.affine[:, [2, 1, 0, 3]]
    )


def write_stamp_series(folder: Path) -> F.Written:
    """The stamp as a CT series: one file per slice, stored = HU + 1024, intercept -1024."""
    stamp = stamp_volume()
    return F.write_ct_series(
        folder,
        n=SHAPE[0],
        rows=SHAPE[1],
        cols=SHAPE[2],
        spacing=SPACING_RC,
        thickness=THICKNESS,
        orientation=(*ROW_COS, *COL_COS),
        origin=ORIGIN,
        intercept=-1024.0,
        pixel_fn=lambda k, rows, cols: stamp.array[k].astype(np.int32) + 1024,
        label="orientation-stamp",
        shuffle=True,
    )


def test_stamp_dicom_to_nifti_and_back(tmp_path: Path) -> None:
    stamp = stamp_volume()
    written = write_stamp_series(tmp_path / "dicom")
    # the factory computes what a reader must produce from DICOM's formulas, not ours
    np.testing.assert_array_equal(written.expected_array, stamp.array)
    np.testing.assert_allclose(written.expected_affine, stamp.affine, atol=1e-9)

    (series,) = scan([tmp_path / "dicom"]).series
    loaded = load_series(series)
    _assert_identical(loaded, stamp)
    assert loaded.metadata.modality == "CT"

    for suffix in (".nii.gz", ".nrrd", ".mha"):
        warnings = write_volume(loaded, tmp_path / f"from_dicom{suffix}")
        assert [w.code for w in warnings] == ["metadata_not_saved"]
        _assert_identical(read_image(tmp_path / f"from_dicom{suffix}"), stamp)

"""NIfTI / NRRD / MetaImage / .npy import and export: round trips, an independent reader
(nibabel) for the RAS<->LPS boundary, the gantry-tilt resampling path and every bad input."""

from __future__ import annotations

import gzip
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from medview.core import geometry
from medview.core.errors import InvalidInputError, ResourceLimitError, UnsupportedInputError
from medview.core.series import PatientInfo
from medview.core.volume import Volume, VolumeMetadata
from medview.io.image_files import (
    SUPPORTED_READ_SUFFIXES,
    SUPPORTED_WRITE_SUFFIXES,
    is_image_file,
    read_image,
    write_volume,
)
from tests.unprivileged import run_unprivileged, unprivileged_folder

ITK_SUFFIXES = SUPPORTED_READ_SUFFIXES
NIFTI = (".nii", ".nii.gz")


def _rotation(a: float, b: float, c: float) -> np.ndarray:
    """A proper rotation from three angles (radians), for oblique planes."""
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rx = np.array([[1, 0, 0], [0, math.cos(c), -math.sin(c)], [0, math.sin(c), math.cos(c)]])
    return rz @ ry @ rx


def _affine(row_cos, col_cos, spacing_rc=(0.7, 0.9), step=2.5, origin=(-101.3, 27.9, 55.1)):
    """Orthogonal affine: slices step along +normal by `step` mm (negative: left-handed)."""
    normal = geometry.slice_normal(row_cos, col_cos)
    return geometry.affine_from_plane(origin, row_cos, col_cos, spacing_rc, normal * step)


_R = _rotation(0.4, -0.3, 0.25)
AFFINES = {
    "oblique": _affine(_R[:, 0], _R[:, 1]),
    "sagittal": _affine((0, 1, 0), (0, 0, -1), (0.5, 0.6), 1.25, (12.0, -80.5, 90.25)),
    "axial_left_handed": _affine((1, 0, 0), (0, 1, 0), (0.8, 0.8), -3.0),
}


def _tilted_affine(tilt_deg: float, step_mm: float = 2.0) -> np.ndarray:
    """Axial stack with gantry tilt: each slice shifts along y as it steps along z."""
    t = math.radians(tilt_deg)
    step = np.array([0.0, math.tan(t), 1.0]) * step_mm
    return geometry.affine_from_plane((-40.0, -30.0, 10.0), (1, 0, 0), (0, 1, 0), (0.8, 0.8), step)


def _values(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Values unique per voxel (so any flip or transpose shows), in range for `dtype`."""
    n = int(np.prod(shape))
    if dtype == "uint8":
        return (np.arange(n) % 251).astype(np.uint8).reshape(shape)
    if np.dtype(dtype).kind == "f":
        return (np.arange(n) * 0.37 - 50.5).astype(dtype).reshape(shape)
    lo = np.iinfo(dtype).min if np.dtype(dtype).kind == "i" else 0
    return (np.arange(n) * 3 + max(lo, -1024)).astype(dtype).reshape(shape)


def _volume(dtype: str = "int16", shape=(4, 5, 6), affine_name: str = "oblique") -> Volume:
    return Volume(_values(shape, dtype), AFFINES[affine_name].copy())


def _assert_same(got: Volume, want: Volume, atol: float = 1e-5) -> None:
    assert got.array.dtype == want.array.dtype
    assert got.array.shape == want.array.shape
    np.testing.assert_array_equal(got.array, want.array)
    np.testing.assert_allclose(got.affine, want.affine, atol=atol, rtol=0)


def _nib_lps_affine(img: nib.Nifti1Image) -> np.ndarray:
    """nibabel's (x, y, z) -> RAS affine expressed as our (slice, row, col) -> LPS one."""
    return geometry.LPS_TO_RAS @ img.affine[:, [2, 1, 0, 3]]


def _no_temp_left(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]


# --- module shape --------------------------------------------------------------------------


def test_import_does_not_load_simpleitk() -> None:
    code = "import sys, medview.io.image_files; sys.exit('SimpleITK' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.nii", True),
        ("A.NII.GZ", True),
        ("dir.v2/b.nrrd", True),
        ("c.NHDR", True),
        ("d.mha", True),
        ("e.mhd", True),
        ("f.npy", False),
        ("g.dcm", False),
        ("h.gz", False),
        ("nii", False),
        ("i.nii.bak", False),
    ],
)
def test_is_image_file_by_suffix(name: str, expected: bool) -> None:
    assert is_image_file(name) is expected
    assert is_image_file(Path(name)) is expected


def test_suffix_tuples() -> None:
    assert set(SUPPORTED_READ_SUFFIXES) == {".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"}
    assert set(SUPPORTED_WRITE_SUFFIXES) == {*SUPPORTED_READ_SUFFIXES, ".npy"}


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int16", "uint8", "uint16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ITK_SUFFIXES)
def test_round_trip_keeps_dtype_values_and_affine(tmp_path: Path, suffix: str, dtype: str) -> None:
    vol = _volume(dtype)
    path = tmp_path / f"v{suffix}"
    assert write_volume(vol, path) == []
    got = read_image(path)
    _assert_same(got, vol)
    assert got.metadata.source == str(path)
    assert got.metadata.modality == ""
    assert got.metadata.warnings == []
    _no_temp_left(tmp_path)


@pytest.mark.parametrize("affine_name", sorted(AFFINES))
@pytest.mark.parametrize("suffix", ITK_SUFFIXES)
def test_orientations_preserved(tmp_path: Path, suffix: str, affine_name: str) -> None:
    vol = _volume(affine_name=affine_name)
    write_volume(vol, tmp_path / f"v{suffix}")
    _assert_same(read_image(tmp_path / f"v{suffix}"), vol)


@pytest.mark.parametrize("suffix", ITK_SUFFIXES)
def test_rgb_round_trip(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(1)
    vol = Volume(rng.integers(0, 256, (3, 4, 5, 3), dtype=np.uint8), AFFINES["oblique"].copy())
    write_volume(vol, tmp_path / f"c{suffix}")
    got = read_image(tmp_path / f"c{suffix}")
    assert got.is_colour
    assert got.metadata.photometric == "RGB"
    _assert_same(got, vol)


@pytest.mark.parametrize(
    ("suffix", "colour"),
    [(s, False) for s in ITK_SUFFIXES] + [(s, True) for s in ITK_SUFFIXES if s not in NIFTI],
)
def test_single_slice_round_trip(tmp_path: Path, suffix: str, colour: bool) -> None:
    shape = (1, 6, 7, 3) if colour else (1, 6, 7)
    vol = Volume(_values(shape, "uint8"), AFFINES["sagittal"].copy())
    write_volume(vol, tmp_path / f"s{suffix}")
    _assert_same(read_image(tmp_path / f"s{suffix}"), vol)


@pytest.mark.parametrize("suffix", NIFTI)
def test_single_colour_slice_nifti_refused(tmp_path: Path, suffix: str) -> None:
    """SimpleITK reads a one-slice vector NIfTI as 2D: where the slice lies is lost (and a
    sagittal one does not load at all). Refuse both ways rather than misplace it."""
    vol = Volume(_values((1, 6, 7, 3), "uint8"), AFFINES["oblique"].copy())
    with pytest.raises(UnsupportedInputError, match=r"\.nrrd"):
        write_volume(vol, tmp_path / f"c{suffix}")
    assert list(tmp_path.iterdir()) == []
    image = sitk.GetImageFromArray(vol.array, isVector=True)
    sitk.WriteImage(image, str(tmp_path / f"itk{suffix}"))
    with pytest.raises(UnsupportedInputError, match="single-slice colour"):
        read_image(tmp_path / f"itk{suffix}")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_reads_a_2d_file_as_one_slice(tmp_path: Path, suffix: str) -> None:
    pixels = _values((6, 7), "int16")
    image = sitk.GetImageFromArray(pixels)
    image.SetSpacing((0.5, 0.75))
    image.SetOrigin((10.0, -20.0))
    image.SetDirection((0.0, 1.0, 1.0, 0.0))
    sitk.WriteImage(image, str(tmp_path / f"flat{suffix}"))
    got = read_image(tmp_path / f"flat{suffix}")
    np.testing.assert_array_equal(got.array, pixels[np.newaxis])
    # (row, col) index -> LPS: rows step along x by 0.75, columns along y by 0.5.
    np.testing.assert_allclose(got.index_to_lps([0, 2, 3]), [10 + 1.5, -20 + 1.5, 0], atol=1e-6)


def test_upper_case_suffix_written_in_that_format(tmp_path: Path) -> None:
    vol = _volume()
    path = tmp_path / "UPPER.NII.GZ"
    write_volume(vol, path)
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    _assert_same(read_image(path), vol)


def test_non_contiguous_array_written_as_seen(tmp_path: Path) -> None:
    base = _values((4, 5, 6), "int16")
    vol = Volume(base[::-1, :, ::2], AFFINES["oblique"].copy())
    write_volume(vol, tmp_path / "v.nrrd")
    np.testing.assert_array_equal(read_image(tmp_path / "v.nrrd").array, vol.array)


@pytest.mark.parametrize("suffix", [".mhd", ".nhdr"])
def test_detached_header_names_its_data_file(tmp_path: Path, suffix: str) -> None:
    vol = _volume()
    write_volume(vol, tmp_path / f"scan{suffix}")
    names = {p.name for p in tmp_path.iterdir()}
    assert len(names) == 2 and f"scan{suffix}" in names
    (data_name,) = names - {f"scan{suffix}"}
    assert data_name.startswith("scan.")
    assert data_name in (tmp_path / f"scan{suffix}").read_text(errors="replace")
    _assert_same(read_image(tmp_path / f"scan{suffix}"), vol)


def test_overwrites_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "v.nii.gz"
    write_volume(_volume("uint8"), path)
    vol = _volume("float32")
    write_volume(vol, path)
    _assert_same(read_image(path), vol)
    _no_temp_left(tmp_path)


def test_npy_holds_exactly_the_array(tmp_path: Path) -> None:
    vol = _volume("int16")
    warnings = write_volume(vol, tmp_path / "v.npy")
    saved = np.load(tmp_path / "v.npy")
    assert saved.dtype == np.int16
    np.testing.assert_array_equal(saved, vol.array)
    assert [w.code for w in warnings] == ["geometry_not_saved"]
    _no_temp_left(tmp_path)


def test_warns_about_metadata_the_format_drops(tmp_path: Path) -> None:
    vol = _volume()
    vol.metadata = VolumeMetadata(
        modality="CT", patient=PatientInfo(name="DOE^JANE"), windows=[(40.0, 400.0)]
    )
    (warning,) = write_volume(vol, tmp_path / "v.nrrd")
    assert warning.code == "metadata_not_saved"
    assert "modality" in warning.message and "patient" in warning.message
    assert "DOE" not in warning.message  # names never go into messages


# --- an independent reader: nibabel --------------------------------------------------------


@pytest.mark.parametrize("affine_name", sorted(AFFINES))
@pytest.mark.parametrize("suffix", NIFTI)
def test_nifti_written_has_ras_affine_and_values(
    tmp_path: Path, suffix: str, affine_name: str
) -> None:
    vol = _volume("int16", affine_name=affine_name)
    write_volume(vol, tmp_path / f"v{suffix}")
    img = nib.load(tmp_path / f"v{suffix}")
    want_ras = geometry.LPS_TO_RAS @ vol.affine[:, [2, 1, 0, 3]]
    np.testing.assert_allclose(img.affine, want_ras, atol=1e-5)
    np.testing.assert_allclose(img.header.get_qform(), want_ras, atol=1e-5)
    data = np.asanyarray(img.dataobj)
    assert data.dtype == np.int16
    np.testing.assert_array_equal(data, vol.array.transpose(2, 1, 0))
    # The same world point for the same voxel, seen by both readers.
    ijk = np.array([3, 2, 1])  # (col, row, slice) for nibabel
    np.testing.assert_allclose(
        geometry.lps_affine_to_ras(vol.affine) @ [1, 2, 3, 1], img.affine @ [*ijk, 1], atol=1e-4
    )


@pytest.mark.parametrize("affine_name", sorted(AFFINES))
def test_reads_nifti_written_by_nibabel(tmp_path: Path, affine_name: str) -> None:
    want = _volume("float32", affine_name=affine_name)
    ras = geometry.LPS_TO_RAS @ want.affine[:, [2, 1, 0, 3]]
    nib.save(nib.Nifti1Image(want.array.transpose(2, 1, 0), ras), tmp_path / "n.nii.gz")
    got = read_image(tmp_path / "n.nii.gz")
    _assert_same(got, want)
    np.testing.assert_allclose(got.affine, _nib_lps_affine(nib.load(tmp_path / "n.nii.gz")))


@pytest.mark.parametrize("suffix", NIFTI)
def test_nifti2_refused_with_a_way_out(tmp_path: Path, suffix: str) -> None:
    # SimpleITK 2.5 has no NIfTI-2 reader; say so instead of "not a NIfTI file".
    want = _volume("int16")
    nib.save(nib.Nifti2Image(want.array.transpose(2, 1, 0), np.eye(4)), tmp_path / f"n2{suffix}")
    with pytest.raises(UnsupportedInputError, match="NIfTI-2") as e:
        read_image(tmp_path / f"n2{suffix}")
    _one_sentence(e, tmp_path / f"n2{suffix}")


def test_integral_nifti_rescale_stays_integer(tmp_path: Path) -> None:
    # dcm2niix style: raw stored values plus scl_inter -1024 must come back as int16 HU.
    raw = np.arange(60, dtype=np.int16).reshape(5, 4, 3) * 40
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(1, -1024)
    nib.save(img, tmp_path / "hu.nii")
    got = read_image(tmp_path / "hu.nii")
    assert got.array.dtype == np.int16
    np.testing.assert_array_equal(got.array, raw.transpose(2, 1, 0) - 1024)


def test_fractional_nifti_rescale_is_float32(tmp_path: Path) -> None:
    raw = np.arange(60, dtype=np.int16).reshape(5, 4, 3)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(0.5, -10)
    nib.save(img, tmp_path / "f.nii")
    got = read_image(tmp_path / "f.nii")
    assert got.array.dtype == np.float32
    np.testing.assert_array_equal(got.array, raw.transpose(2, 1, 0) * 0.5 - 10)


def test_4d_nifti_loads_first_time_point_with_warning(tmp_path: Path) -> None:
    series = np.arange(6 * 5 * 4 * 3, dtype=np.int16).reshape(6, 5, 4, 3)
    nib.save(nib.Nifti1Image(series, np.diag([2.0, 3.0, 4.0, 1.0])), tmp_path / "t.nii.gz")
    got = read_image(tmp_path / "t.nii.gz")
    np.testing.assert_array_equal(got.array, series[..., 0].transpose(2, 1, 0))
    assert [w.code for w in got.metadata.warnings] == ["first_time_point"]
    assert "3 volumes" in got.metadata.warnings[0].message
    np.testing.assert_allclose(got.spacing_mm, (4.0, 3.0, 2.0))


def test_4d_nifti_with_one_time_point_has_no_warning(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.uint8).reshape(4, 3, 2, 1)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "t1.nii")
    got = read_image(tmp_path / "t1.nii")
    assert got.shape == (2, 3, 4)
    assert got.metadata.warnings == []


# --- sheared (gantry-tilted) grids -----------------------------------------------------------


def test_simpleitk_nifti_writer_coerces_shear(tmp_path: Path) -> None:
    """Why NIfTI needs resampling: ITK silently rotates a sheared direction matrix (moving
    every voxel), while NRRD and MetaImage keep it. If this starts failing, revisit the
    resampling decision in image_files."""
    image = sitk.Image(4, 4, 4, sitk.sitkInt16)
    direction = np.column_stack([(1, 0, 0), (0, 1, 0), (0, math.sin(0.26), math.cos(0.26))])
    image.SetDirection(direction.ravel().tolist())
    for suffix, kept in [(".nii.gz", False), (".nrrd", True), (".mha", True)]:
        sitk.WriteImage(image, str(tmp_path / f"d{suffix}"))
        back = np.array(sitk.ReadImage(str(tmp_path / f"d{suffix}")).GetDirection())
        assert np.allclose(back, direction.ravel(), atol=1e-6) is kept, suffix


@pytest.mark.parametrize("suffix", [".nrrd", ".nhdr", ".mha", ".mhd"])
def test_shear_kept_exactly_where_the_format_can(tmp_path: Path, suffix: str) -> None:
    vol = Volume(_values((6, 5, 4), "int16"), _tilted_affine(15.0))
    assert write_volume(vol, tmp_path / f"t{suffix}") == []
    got = read_image(tmp_path / f"t{suffix}")
    _assert_same(got, vol, atol=1e-9)
    assert geometry.shear_angle_deg(got.affine) == pytest.approx(15.0)


@pytest.mark.parametrize("tilt", [15.0, -25.0])
def test_shear_resampled_for_nifti_keeps_world_positions(tmp_path: Path, tilt: float) -> None:
    shape = (20, 30, 24)
    for marker in [(3, 5, 7), (12, 20, 4), (19, 29, 23)]:
        arr = np.full(shape, -1024, np.int16)
        arr[marker] = 3000
        vol = Volume(arr, _tilted_affine(tilt))
        warnings = write_volume(vol, tmp_path / "t.nii.gz")
        assert [w.code for w in warnings] == ["resampled_shear"]
        assert f"{abs(tilt):.1f}°" in warnings[0].message
        got = read_image(tmp_path / "t.nii.gz")

        assert got.array.dtype == np.int16
        assert geometry.shear_angle_deg(got.affine) < 1e-4
        assert got.array.min() == -1024  # outside the tilted stack = the volume's minimum
        peak = np.unravel_index(np.argmax(got.array), got.shape)
        half_voxel = 0.5 * float(np.linalg.norm(got.spacing_mm))
        assert np.linalg.norm(got.index_to_lps(peak) - vol.index_to_lps(marker)) <= half_voxel
        # every voxel centre of the tilted stack lies inside the new grid
        corners = np.array([[s, r, c] for s in (0, 19) for r in (0, 29) for c in (0, 23)])
        idx = got.lps_to_index(vol.index_to_lps(corners))
        assert (idx > -1e-3).all() and (idx < np.array(got.shape) - 1 + 1e-3).all()


def test_shear_resample_of_colour_and_float(tmp_path: Path) -> None:
    colour = Volume(np.full((6, 5, 4, 3), 200, np.uint8), _tilted_affine(20.0))
    assert write_volume(colour, tmp_path / "c.nii")[0].code == "resampled_shear"
    got = read_image(tmp_path / "c.nii")
    assert got.is_colour and got.array.dtype == np.uint8 and got.array.max() == 200
    scalar = Volume(np.full((6, 5, 4), 2.5, np.float32), _tilted_affine(20.0))
    write_volume(scalar, tmp_path / "f.nii")
    assert read_image(tmp_path / "f.nii").array.dtype == np.float32


def test_orthogonal_affine_written_without_resampling(tmp_path: Path) -> None:
    vol = _volume("float32")
    vol.affine[:3, 0] += 1e-9  # rounding noise is not a tilt
    assert write_volume(vol, tmp_path / "v.nii") == []
    _assert_same(read_image(tmp_path / "v.nii"), vol)


def test_single_tilted_slice_needs_no_resampling(tmp_path: Path) -> None:
    vol = Volume(_values((1, 5, 4), "int16"), _tilted_affine(30.0))
    assert write_volume(vol, tmp_path / "one.nii.gz") == []
    got = read_image(tmp_path / "one.nii.gz")
    np.testing.assert_array_equal(got.array, vol.array)
    np.testing.assert_allclose(got.affine[:, 1:], vol.affine[:, 1:], atol=1e-5)


def test_sheared_nifti_sform_is_honoured(tmp_path: Path) -> None:
    """dcm2niix leaves an uncorrected tilted stack with a sheared sform (and a rigid qform,
    which ITK would use, misplacing voxels by mm); MedView places voxels by the sform."""
    want = Volume(_values((8, 5, 4), "int16"), _tilted_affine(20.0))
    ras = geometry.LPS_TO_RAS @ want.affine[:, [2, 1, 0, 3]]
    img = nib.Nifti1Image(want.array.transpose(2, 1, 0), ras)
    img.set_qform(ras, code=1)  # nibabel strips the shear from the qform, as dcm2niix does
    img.set_sform(ras, code=1)
    nib.save(img, tmp_path / "tilt.nii.gz")
    got = read_image(tmp_path / "tilt.nii.gz")
    _assert_same(got, want, atol=1e-4)
    (warning,) = got.metadata.warnings
    assert warning.code == "sheared_sform" and "20.0°" in warning.message


def test_degenerate_nifti_sform_is_ignored(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), np.diag([2.0, 3.0, 4.0, 1.0]))
    img.set_qform(img.affine, code=1)
    img.set_sform(np.zeros((4, 4)), code=1)  # nonsense: ITK's qform geometry stands
    nib.save(img, tmp_path / "zero_sform.nii")
    got = read_image(tmp_path / "zero_sform.nii")
    np.testing.assert_allclose(got.spacing_mm, (4.0, 3.0, 2.0))
    assert got.metadata.warnings == []


def test_sheared_nifti_without_qform_refused_clearly(tmp_path: Path) -> None:
    # ITK cannot read a NIfTI whose only orientation is a sheared sform
    ras = geometry.LPS_TO_RAS @ _tilted_affine(20.0)[:, [2, 1, 0, 3]]
    img = nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), ras)
    img.set_qform(None, code=0)
    nib.save(img, tmp_path / "no_qform.nii")
    with pytest.raises(InvalidInputError, match="orthonormal") as e:
        read_image(tmp_path / "no_qform.nii")
    _one_sentence(e, tmp_path / "no_qform.nii")
    assert "ITK ERROR" not in str(e.value)


def test_huge_resample_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol = Volume(np.zeros((40, 4, 4), np.int16), _tilted_affine(60.0))
    monkeypatch.setenv("MEDVIEW_MAX_VOLUME_BYTES", str(40 * 4 * 4 * 2 * 2))
    with pytest.raises(ResourceLimitError, match="nrrd"):
        write_volume(vol, tmp_path / "t.nii.gz")
    _no_temp_left(tmp_path)
    assert not (tmp_path / "t.nii.gz").exists()


# --- bad inputs ------------------------------------------------------------------------------


def _one_sentence(error: pytest.ExceptionInfo, path: Path) -> None:
    text = str(error.value)
    assert str(path) in text
    assert "\n" not in text
    assert "0x" not in text and ".cxx" not in text


def _written(tmp_path: Path, suffix: str, shape=(40, 40, 40)) -> Path:
    path = tmp_path / f"good{suffix}"
    write_volume(Volume(_values(shape, "int16"), AFFINES["oblique"].copy()), path)
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist") as e:
        read_image(tmp_path / "nothing.nii")
    _one_sentence(e, tmp_path / "nothing.nii")


def test_folder_named_like_an_image(tmp_path: Path) -> None:
    (tmp_path / "dir.nrrd").mkdir()
    with pytest.raises(InvalidInputError, match="folder"):
        read_image(tmp_path / "dir.nrrd")


@pytest.mark.parametrize("suffix", ITK_SUFFIXES)
def test_zero_byte_file(tmp_path: Path, suffix: str) -> None:
    (tmp_path / f"empty{suffix}").touch()
    with pytest.raises(InvalidInputError, match="empty") as e:
        read_image(tmp_path / f"empty{suffix}")
    _one_sentence(e, tmp_path / f"empty{suffix}")


@pytest.mark.parametrize("suffix", ITK_SUFFIXES)
def test_text_file_with_image_suffix(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"notes{suffix}"
    path.write_text("these are not voxels\n" * 40)
    with pytest.raises(InvalidInputError) as e:
        read_image(path)
    _one_sentence(e, path)


def test_png_renamed_nii_is_not_read_as_png(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(np.zeros((8, 8), np.uint8))
    sitk.WriteImage(image, str(tmp_path / "pic.png"))
    (tmp_path / "pic.png").rename(tmp_path / "pic.nii")
    with pytest.raises(InvalidInputError, match="NIfTI"):
        read_image(tmp_path / "pic.nii")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("keep", [0.1, 0.6, 0.999])
def test_truncated_file(tmp_path: Path, suffix: str, keep: float) -> None:
    path = _written(tmp_path, suffix)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InvalidInputError) as e:
        read_image(path)
    _one_sentence(e, path)


def test_multi_member_gzip_nifti_is_accepted(tmp_path: Path) -> None:
    # bgzip-style files have several gzip members; the trailer then holds only the last
    # member's size, so the completeness check must fall back to counting.
    path = _written(tmp_path, ".nii")
    raw = path.read_bytes()
    half = len(raw) // 2
    multi = tmp_path / "multi.nii.gz"
    multi.write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]))
    np.testing.assert_array_equal(read_image(multi).array, read_image(path).array)


def test_detached_data_file_missing(tmp_path: Path) -> None:
    path = _written(tmp_path, ".mhd", (3, 4, 5))
    for p in tmp_path.iterdir():
        if p != path:
            p.unlink()
    with pytest.raises(InvalidInputError) as e:
        read_image(path)
    _one_sentence(e, path)


def test_huge_nifti_header_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), path)
    header = bytearray(path.read_bytes())
    struct.pack_into("<8h", header, 40, 3, 30000, 30000, 30000, 1, 1, 1, 1)
    path.write_bytes(header)
    with pytest.raises(ResourceLimitError, match="30000 x 30000 x 30000") as e:
        read_image(path)
    _one_sentence(e, path)


def test_huge_nrrd_header_refused_before_reading(tmp_path: Path) -> None:
    (tmp_path / "huge.raw").write_bytes(b"\0" * 16)
    path = tmp_path / "huge.nhdr"
    path.write_text(
        "NRRD0004\ntype: float\ndimension: 3\nsizes: 100000 100000 100000\n"
        "encoding: raw\nendian: little\ndata file: huge.raw\n\n"
    )
    with pytest.raises(ResourceLimitError, match="more than the"):
        read_image(path)


@pytest.mark.parametrize("suffix", ITK_SUFFIXES)
def test_limit_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str):
    path = _written(tmp_path, suffix, (4, 5, 6))
    monkeypatch.setenv("MEDVIEW_MAX_VOLUME_BYTES", str(4 * 5 * 6 * 2 - 1))
    with pytest.raises(ResourceLimitError):
        read_image(path)
    monkeypatch.setenv("MEDVIEW_MAX_VOLUME_BYTES", str(4 * 5 * 6 * 2))
    assert read_image(path).shape == (4, 5, 6)


def test_vector_image_refused(tmp_path: Path) -> None:
    field = sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.float32), isVector=True)
    sitk.WriteImage(field, str(tmp_path / "field.mha"))
    with pytest.raises(UnsupportedInputError, match="'vector of 32-bit float' voxels") as e:
        read_image(tmp_path / "field.mha")
    _one_sentence(e, tmp_path / "field.mha")


@pytest.mark.parametrize("name", ["scan.dcm", "scan.png", "scan", "scan.nii.bak"])
def test_unsupported_suffix(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(UnsupportedInputError) as e:
        read_image(tmp_path / name)
    _one_sentence(e, tmp_path / name)
    with pytest.raises(UnsupportedInputError):
        write_volume(_volume(), tmp_path / name)


def test_write_into_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "v.nii.gz"
    with pytest.raises(InvalidInputError, match="another folder") as e:
        write_volume(_volume(), path)
    _one_sentence(e, path)


def test_write_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InvalidInputError):
        write_volume(_volume(), tmp_path / "plain" / "v.nrrd")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_write_into_read_only_folder() -> None:
    code = """if True:
        import sys
        from pathlib import Path
        import numpy as np
        from medview.core.errors import InvalidInputError
        from medview.core.volume import Volume
        from medview.io.image_files import write_volume
        folder = Path(sys.argv[1]) / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        try:
            write_volume(Volume(np.zeros((4, 5, 6), np.int16), np.eye(4)), folder / "v.nii.gz")
        except InvalidInputError as exc:
            print("refused:", exc)
        """
    with unprivileged_folder() as folder:
        done = run_unprivileged(code, folder)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("refused: ") and "another folder" in done.stdout
        assert list((folder / "ro").iterdir()) == []


@pytest.mark.parametrize("suffix", [".nii.gz", ".mhd", ".npy"])
def test_failed_write_leaves_nothing_behind(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"taken{suffix}"
    target.mkdir()  # the final rename onto a folder fails
    with pytest.raises(InvalidInputError) as e:
        write_volume(_volume(), target)
    _one_sentence(e, target)
    _no_temp_left(tmp_path)
    assert list(target.iterdir()) == []

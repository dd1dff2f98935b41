"""dicom_volume.load_series on the synthetic corpus: exact modality values for every
transfer syntax, voxels at the positions the files state (sagittal, tilted, with gaps),
per-slice and per-frame rescale, colour, MONOCHROME1, and the dtype rules."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import dicom_factory as F
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from medview.core.errors import ResourceLimitError
from medview.core.jobs import CancelToken, JobCancelled
from medview.core.volume import Volume
from medview.io.dicom import index as dicom_index
from medview.io.dicom import volume as dicom_volume

TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
]


def load(*paths: Path, **scan_kwargs: object) -> Volume:
    result = dicom_index.scan(list(paths), **scan_kwargs)
    assert len(result.series) == 1, ([s.key for s in result.series], result.skipped)
    return dicom_volume.load_series(result.series[0])


def assert_values(vol: Volume, written: F.Written, dtype: type) -> None:
    """Exact modality values, in the promised dtype, on the promised grid; blank slices
    (where the writer left one out) only need to be uniform."""
    assert vol.array.dtype == np.dtype(dtype)
    assert vol.array.shape == written.expected_array.shape
    keep = [i for i in range(vol.array.shape[0]) if i not in written.missing]
    np.testing.assert_array_equal(vol.array[keep], written.expected_array[keep])
    for i in written.missing:
        assert np.ptp(vol.array[i]) == 0, f"blank slice {i} is not uniform"
    np.testing.assert_allclose(vol.affine, written.expected_affine, atol=1e-4)


def voxel_positions_from_dicom(
    position: np.ndarray, orientation: tuple, spacing: tuple, rows: int, cols: int
) -> np.ndarray:
    """Centres of every pixel of one slice by DICOM's equation C.7.6.2.1-1, as (r, c, 3)."""
    r, c = np.mgrid[0:rows, 0:cols]
    return (
        position
        + r[..., None] * spacing[0] * np.asarray(orientation[3:])
        + c[..., None] * spacing[1] * np.asarray(orientation[:3])
    )


def test_factory_matches_pydicom(tmp_path: Path) -> None:
    """The corpus itself is checked with an independent reader, so a failure below is the
    reader's and not the factory's."""
    w = F.write_ct_series(
        tmp_path,
        transfer_syntax=ExplicitVRBigEndian,
        shuffle=True,
        per_slice_rescale=[(0.5 + k % 2, -1000.5 + k) for k in range(12)],
    )
    got = []
    for p in w.paths:
        ds = pydicom.dcmread(p)
        got.append(apply_modality_lut(ds.pixel_array, ds))
    np.testing.assert_array_equal(np.stack(got), w.expected_array)


@pytest.mark.parametrize("ts", TRANSFER_SYNTAXES, ids=lambda ts: ts.name)
def test_every_transfer_syntax_gives_exact_hu(tmp_path: Path, ts: str) -> None:
    # OpenJPEG refuses to encode images smaller than 32 x 32 with its default 6 levels
    size = {"rows": 32, "cols": 40} if ts == JPEG2000Lossless else {}
    w = F.write_ct_series(tmp_path, transfer_syntax=ts, shuffle=True, **size)
    vol = load(tmp_path)
    assert_values(vol, w, np.int16)
    assert vol.metadata.modality == "CT" and vol.metadata.units == "HU"
    assert vol.metadata.series_instance_uid == w.series_uid


@pytest.mark.parametrize(
    "twin",
    [
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
)
def test_pydicom_twins_agree(tmp_path: Path, twin: str) -> None:
    """Twins from pydicom's test data (the same image in another transfer syntax): an
    outside reference for the big-endian and compressed paths."""
    for name in ("MR_small.dcm", twin):
        shutil.copy(get_testdata_file(name), tmp_path / name)
    reference = load(tmp_path / "MR_small.dcm").array
    np.testing.assert_array_equal(load(tmp_path / twin).array, reference)
    ds = pydicom.dcmread(tmp_path / "MR_small.dcm")
    np.testing.assert_array_equal(reference[0], apply_modality_lut(ds.pixel_array, ds))


def test_sagittal_mr_voxels_sit_where_the_files_say(tmp_path: Path) -> None:
    w = F.write_ct_series(
        tmp_path,
        modality="MR",
        orientation=F.SAGITTAL,
        intercept=0.0,
        label="sag",
        shuffle=True,
        signed=False,
    )
    vol = load(tmp_path)
    np.testing.assert_array_equal(vol.array, w.expected_array)
    assert vol.array.dtype in (np.int16, np.uint16)
    for s in (0, 5, 11):
        want = voxel_positions_from_dicom(w.positions[s], F.SAGITTAL, (0.7, 0.8), 24, 32)
        r, c = np.mgrid[0:24, 0:32]
        idx = np.stack([np.full_like(r, s), r, c], axis=-1)
        np.testing.assert_allclose(vol.index_to_lps(idx), want, atol=1e-4)


def test_tilted_stack_keeps_every_slice_position(tmp_path: Path) -> None:
    step = (0.0, 2.5 * math.tan(math.radians(15)), 2.5)
    w = F.write_ct_series(tmp_path, step=step, label="tilt")
    vol = load(tmp_path)
    assert_values(vol, w, np.int16)
    centres = vol.index_to_lps([(k, 0, 0) for k in range(12)])
    np.testing.assert_allclose(centres, w.positions, atol=1e-3)
    assert "gantry_tilt" in {x.code for x in vol.metadata.warnings}


def test_missing_slice_is_blank_and_the_rest_stay_in_place(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path, drop=[6], shuffle=True)
    vol = load(tmp_path)
    assert_values(vol, w, np.int16)
    real = [k for k in range(12) if k != 6]
    np.testing.assert_allclose(
        vol.index_to_lps([(k, 0, 0) for k in real]), w.positions[real], atol=1e-3
    )


def test_integral_per_slice_rescale_stays_int16(tmp_path: Path) -> None:
    w = F.write_ct_series(
        tmp_path, per_slice_rescale=[(1.0 + k % 2, -1024.0 + 7 * k) for k in range(12)]
    )
    assert_values(load(tmp_path), w, np.int16)


def test_non_integral_rescale_is_exact_float32(tmp_path: Path) -> None:
    w = F.write_ct_series(
        tmp_path, per_slice_rescale=[(0.5 if k % 2 else 1.0, -1024.5) for k in range(12)]
    )
    assert_values(load(tmp_path), w, np.float32)


def test_integral_rescale_beyond_int16_does_not_wrap(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path, slope=10.0, intercept=0.0)
    vol = load(tmp_path)
    assert w.expected_array.max() > np.iinfo(np.int16).max
    assert vol.array.dtype in (np.int32, np.float32)
    np.testing.assert_array_equal(vol.array, w.expected_array)


def test_signed_16_bit_ct_with_intercept_stays_int16(tmp_path: Path) -> None:
    # the GE layout: signed 16-bit storage, intercept -1024. The header range could leave
    # int16, the real values do not, so the volume keeps 2 bytes a voxel.
    w = F.write_ct_series(
        tmp_path, intercept=-1024.0, signed=True, extra={"BitsStored": 16, "HighBit": 15}
    )
    assert_values(load(tmp_path), w, np.int16)


def test_a_slice_beyond_int16_widens_the_volume_exactly(tmp_path: Path) -> None:
    def padded(k: int, rows: int, cols: int) -> np.ndarray:
        a = F.stamp(k, rows, cols)
        if k == 7:
            a[0, 0] = -32768  # pixel padding: -32768 - 1024 is below int16
        return a

    w = F.write_ct_series(
        tmp_path, intercept=-1024.0, pixel_fn=padded, extra={"BitsStored": 16, "HighBit": 15}
    )
    vol = load(tmp_path)
    assert vol.array.dtype == np.int32
    np.testing.assert_array_equal(vol.array, w.expected_array)


def test_enhanced_multiframe_sorted_with_per_frame_rescale(tmp_path: Path) -> None:
    w = F.write_enhanced_mf(tmp_path / "enhanced.dcm", n_frames=8, shuffled=True)
    assert_values(load(tmp_path), w, np.float32)


def test_enhanced_multiframe_integral_rescale_is_int16(tmp_path: Path) -> None:
    w = F.write_enhanced_mf(
        tmp_path / "enhanced.dcm", n_frames=6, per_frame_rescale=False, transfer_syntax=RLELossless
    )
    assert_values(load(tmp_path), w, np.int16)


# pydicom's RLE encoder and decoder disagree on planar configuration 1, so compressed
# colour is written interleaved only.
COLOUR_CASES = [
    (0, ExplicitVRLittleEndian),
    (1, ExplicitVRLittleEndian),
    (1, ExplicitVRBigEndian),
    (1, DeflatedExplicitVRLittleEndian),
    (0, RLELossless),
    (0, JPEGLSLossless),
]


@pytest.mark.parametrize(
    ("planar", "ts"), COLOUR_CASES, ids=[f"planar{p}-{ts.name}" for p, ts in COLOUR_CASES]
)
def test_rgb_is_slice_row_col_3_uint8(tmp_path: Path, planar: int, ts: str) -> None:
    w = F.write_rgb_series(tmp_path, planar=planar, transfer_syntax=ts)
    vol = load(tmp_path)
    assert vol.is_colour
    assert_values(vol, w, np.uint8)


@pytest.mark.parametrize(
    "ts", [ExplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless], ids=lambda ts: ts.name
)
def test_palette_colour_becomes_rgb(tmp_path: Path, ts: str) -> None:
    w = F.write_palette_image(tmp_path / "palette.dcm", transfer_syntax=ts)
    assert_values(load(tmp_path), w, np.uint8)


def test_monochrome1_keeps_values_and_flags_inversion(tmp_path: Path) -> None:
    w = F.write_monochrome1(tmp_path / "cr.dcm")
    vol = load(tmp_path)
    np.testing.assert_array_equal(vol.array, w.expected_array)
    assert vol.array.dtype in (np.int16, np.uint16)
    assert vol.metadata.invert_display and vol.metadata.photometric == "MONOCHROME1"


def test_ultrasound_cine_frames_in_order(tmp_path: Path) -> None:
    w = F.write_us_multiframe(tmp_path / "us.dcm")
    vol = load(tmp_path)
    np.testing.assert_array_equal(vol.array, w.expected_array)
    assert vol.array.dtype in (np.uint8, np.int16)


@pytest.mark.parametrize("container", ["dicomdir", "zip"])
def test_loads_from_dicomdir_and_zip(tmp_path: Path, container: str) -> None:
    w = F.write_ct_series(tmp_path / "plain", shuffle=True, transfer_syntax=RLELossless)
    if container == "dicomdir":
        source = F.write_dicomdir(tmp_path / "set", w.paths)
    else:
        source = F.zip_folder(tmp_path / "plain", tmp_path / "study.zip")
    assert_values(load(source), w, np.int16)


def test_refuses_a_volume_over_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    F.write_ct_series(tmp_path)  # 12 x 24 x 32 int16 = 18 KiB
    series = dicom_index.scan([tmp_path]).series[0]
    monkeypatch.setenv("MEDVIEW_MAX_VOLUME_BYTES", "4096")
    with pytest.raises(ResourceLimitError):
        dicom_volume.load_series(series)


def test_cancelled_load_stops(tmp_path: Path) -> None:
    F.write_ct_series(tmp_path)
    series = dicom_index.scan([tmp_path]).series[0]
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        dicom_volume.load_series(series, cancel=token)


def test_load_reports_progress(tmp_path: Path) -> None:
    F.write_ct_series(tmp_path)
    series = dicom_index.scan([tmp_path]).series[0]
    seen: list[float] = []
    dicom_volume.load_series(series, progress=lambda p: seen.append(p.fraction))
    assert seen and seen[-1] == pytest.approx(1.0)

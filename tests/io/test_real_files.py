"""MedView's DICOM reader against independent readers, on every real file that pydicom and
pydicom-data ship (vendor files, every transfer syntax, odd and broken files).

Synthetic files only test what their writer thought of; these files were made by scanners,
toolkits and bug reports. Each one must load and equal the reader established as right for it
— SimpleITK (GDCM) by default, pydicom where GDCM is known wrong (real_files_expectations.py
says which and why) — in voxels and in geometry, or end in a one-sentence reason. Twins (one
image stored in several transfer syntaxes) must load identically when lossless and within a
few grey levels when lossy: twins settle disagreements better than a second reader, because
GDCM and pydicom's plugins share OpenJPEG and CharLS (docs/development.md)."""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest

from medview.core.errors import InvalidInputError, MedviewError, UnsupportedInputError
from medview.core.series import SeriesInfo
from medview.core.volume import Volume
from medview.io.dicom.index import scan
from medview.io.dicom.volume import load_series
from tests.io.real_files_expectations import DEFAULT, EXPECTED

_DATA_STORE = importlib.util.find_spec("data_store")
if _DATA_STORE is None or not _DATA_STORE.submodule_search_locations:
    pytest.skip("pydicom-data is not installed (pip install pydicom-data)", allow_module_level=True)

_PYDICOM_DATA = Path(pydicom.data.__file__).parent
# Where the files live, by the key prefix used in real_files_expectations.py. Listed from
# disk rather than through pydicom.data.get_testdata_files(), which downloads what is missing.
COLLECTIONS = {
    "pydicom": _PYDICOM_DATA / "test_files",
    "charset": _PYDICOM_DATA / "charset_files",
    "palettes": _PYDICOM_DATA / "palettes",
    "pydicom-data": Path(next(iter(_DATA_STORE.submodule_search_locations))) / "data",
}
FILES: dict[str, Path] = {
    f"{prefix}/{p.relative_to(root).as_posix()}": p
    for prefix, root in COLLECTIONS.items()
    for p in sorted(root.rglob("*"))
    if p.is_file() and "__pycache__" not in p.parts
}

# Transfer syntaxes that lose nothing; any other compressed one may be lossy.
LOSSLESS = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
}
# Lossy JPEG decoders differ by up to 5 grey levels (docs/development.md).
LOSSY_TOLERANCE = 5.0
# float32 voxels against a float64 reference: a few float32 steps of the largest value.
FLOAT_RTOL = 4e-7
GEOMETRY_TOLERANCE_MM = 1e-3


@dataclass
class MedviewRead:
    """Everything MedView said about one file: volumes, load errors and scan reasons."""

    volumes: list[tuple[SeriesInfo, Volume]] = field(default_factory=list)
    errors: list[MedviewError] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    non_image: list[str] = field(default_factory=list)


@contextmanager
def _quiet() -> Iterator[None]:
    """The files are odd on purpose; their warnings would drown the test report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def read_medview(path: Path) -> MedviewRead:
    """scan() + load_series() of one file; any exception but MedviewError fails the test."""
    result = scan([path])
    out = MedviewRead(
        skipped=[s.reason for s in result.skipped],
        non_image=[o.sop_class_name for o in result.non_image_objects],
    )
    for series in result.series:
        try:
            out.volumes.append((series, load_series(series)))
        except MedviewError as exc:
            out.errors.append(exc)
    return out


def _frames_first(arr: np.ndarray, colour: bool) -> np.ndarray:
    """Give a reader's array a leading frame axis: (frames, rows, cols[, 3])."""
    return arr[None] if arr.ndim == (3 if colour else 2) else arr


def read_pydicom(path: Path) -> np.ndarray | None:
    """Modality values (or RGB) per frame by pydicom alone, or None if it cannot decode.

    Rescale comes from the per-frame functional groups when present, which
    apply_modality_lut ignores (docs/development.md); MONOCHROME1 is left as stored, as
    DICOM means."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    with _quiet():
        try:
            ds = pydicom.dcmread(path, force=True)
            if not ds.file_meta.get("TransferSyntaxUID"):
                implicit, little = ds.original_encoding
                ds.file_meta.TransferSyntaxUID = (
                    "1.2.840.10008.1.2"
                    if implicit
                    else "1.2.840.10008.1.2.1"
                    if little
                    else "1.2.840.10008.1.2.2"
                )
            arr = ds.pixel_array
        except Exception:  # pydicom cannot decode it: no reference from pydicom
            return None
        if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
            return _frames_first(apply_color_lut(arr, ds), True)
        if ds.get("SamplesPerPixel") == 3:
            return _frames_first(arr, True)
        arr = _frames_first(arr, False)
        per_frame = ds.get("PerFrameFunctionalGroupsSequence")
        if per_frame is None or len(per_frame) != len(arr):
            return np.asarray(apply_modality_lut(arr, ds), np.float64)
        shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
        out = np.empty(arr.shape, np.float64)
        for i, item in enumerate(per_frame):
            groups = [
                g
                for g in (item, shared)
                if g is not None and "PixelValueTransformationSequence" in g
            ]
            if groups:
                t = groups[0].PixelValueTransformationSequence[0]
                out[i] = arr[i] * float(t.RescaleSlope) + float(t.RescaleIntercept)
            else:
                out[i] = apply_modality_lut(arr[i], ds)
        return out


@dataclass
class SitkImage:
    """SimpleITK's reading of one file: voxels (frames first) and its geometry."""

    array: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray  # 3x3, columns: the (col, row, slice) index axes in LPS


def read_sitk(path: Path) -> SitkImage | None:
    """SimpleITK (GDCM) reading, or None where it refuses the file."""
    import SimpleITK as sitk

    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM's complaints about odd files
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError:
        return None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)
    dim = img.GetDimension()
    direction = np.eye(3)
    direction[:dim, :dim] = np.reshape(img.GetDirection(), (dim, dim))
    origin, spacing = np.zeros(3), np.ones(3)
    origin[:dim], spacing[:dim] = img.GetOrigin(), img.GetSpacing()
    colour = img.GetNumberOfComponentsPerPixel() == 3
    return SitkImage(_frames_first(sitk.GetArrayFromImage(img), colour), origin, spacing, direction)


def _palette_to_uint8(ref: np.ndarray, path: Path) -> np.ndarray:
    """MedView looks palette colour up into 8-bit RGB (RGB itself keeps its stored 8, 16 or
    32 bits): scale a wider palette reference by the LUT's entry depth the same way."""
    with _quiet():
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    desc = ds.get("RedPaletteColorLookupTableDescriptor")
    depth = int(desc[2]) if desc else 8
    if ref.dtype.itemsize == 1 or ref.dtype.kind not in "ui" or depth <= 8:
        return ref
    return ref >> (depth - 8)


def _tolerance(series: SeriesInfo, volume: Volume, ref: np.ndarray) -> float:
    lossy = any(ts not in LOSSLESS for ts in series.transfer_syntaxes)
    tol = LOSSY_TOLERANCE if lossy else 0.0
    if volume.array.dtype.kind == "f":
        tol = max(tol, FLOAT_RTOL * max(1.0, float(np.max(np.abs(ref)))))
    return tol


def assert_voxels_equal(
    series: SeriesInfo, volume: Volume, ref: np.ndarray, path: Path, reader: str
) -> None:
    """Each loaded slice equals the reference frame it came from (MedView sorts slices along
    the normal; the reference keeps file order), compared in float64."""
    if volume.is_colour and series.frames[0].pixel.photometric == "PALETTE COLOR":
        ref = _palette_to_uint8(ref, path)
    elif volume.is_colour:  # RGB keeps its stored values, 16- and 32-bit included
        assert volume.array.dtype == ref.dtype, f"{reader} {ref.dtype} != {volume.array.dtype}"
    assert ref.shape[1:] == volume.array.shape[1:], (
        f"{reader} frame shape {ref.shape[1:]} != MedView {volume.array.shape[1:]}"
    )
    tol = _tolerance(series, volume, ref)
    for k, fr in enumerate(series.slices):
        if fr is None:
            continue
        diff = np.abs(volume.array[k].astype(np.float64) - ref[fr.frame_index].astype(np.float64))
        worst = float(diff.max()) if diff.size else 0.0
        assert worst <= tol, (
            f"frame {fr.frame_index}: MedView differs from {reader} by "
            f"{worst:g} (tolerance {tol:g})"
        )


def assert_geometry_equal(series: SeriesInfo, volume: Volume, ref: SitkImage) -> None:
    """Origin (first frame in file order), in-plane steps and the step to the next frame in
    file order agree with SimpleITK, in LPS mm."""
    index_of = {fr.frame_index: k for k, fr in enumerate(series.slices) if fr is not None}
    affine = volume.affine

    def position(frame: int) -> np.ndarray:
        return affine[:3, 3] + affine[:3, 0] * index_of[frame]

    steps = ref.direction * ref.spacing  # columns: one step along col, row, slice index
    checks = {
        "origin": (position(min(index_of)), ref.origin),
        "column step": (affine[:3, 2], steps[:, 0]),
        "row step": (affine[:3, 1], steps[:, 1]),
    }
    if 0 in index_of and 1 in index_of:
        checks["frame step"] = (position(1) - position(0), steps[:, 2])
    for what, (got, want) in checks.items():
        np.testing.assert_allclose(
            got, want, atol=GEOMETRY_TOLERANCE_MM, err_msg=f"{what} differs from SimpleITK"
        )


def _one_sentence(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text and "Traceback" not in text and len(text) < 400


def _outcome(read: MedviewRead) -> str:
    if read.volumes:
        return "image"
    if read.errors:
        return "error"
    return "non_image" if read.non_image else "skipped"


@pytest.mark.parametrize("key", sorted(FILES))
def test_real_file_matches_the_right_reader(key: str) -> None:
    path, expect = FILES[key], EXPECTED.get(key, DEFAULT)
    with _quiet():
        read = read_medview(path)
    messages = [str(e) for e in read.errors] + read.skipped
    assert all(_one_sentence(m) for m in messages), messages
    assert read.volumes or read.errors or read.skipped or read.non_image, (
        "MedView neither loaded this file nor said why"
    )
    for exc in read.errors:
        assert isinstance(exc, (InvalidInputError, UnsupportedInputError)), exc

    if expect.outcome == "dicomdir":
        assert read.volumes and not read.errors, messages
        return
    if expect.outcome != "image":
        assert _outcome(read) == expect.outcome, (expect.reason, messages, read.non_image)
        return
    if not read.volumes:
        pydicom_decodes = read_pydicom(path) is not None
        assert not pydicom_decodes, f"pydicom decodes this file but MedView did not: {messages}"
        return

    assert len(read.volumes) == 1 and not read.errors, "one file should load as one series"
    series, volume = read.volumes[0]
    sitk_image = read_sitk(path)
    if expect.reference == "sitk":
        assert sitk_image is not None, "SimpleITK cannot read this file: name another reader"
        assert_voxels_equal(series, volume, sitk_image.array, path, "SimpleITK")
    elif expect.reference == "pydicom":
        ref = read_pydicom(path)
        assert ref is not None, "pydicom cannot decode this file: name another reader"
        assert_voxels_equal(series, volume, ref, path, "pydicom")
    if sitk_image is not None:
        assert_geometry_equal(series, volume, sitk_image)
    assert volume.metadata.invert_display == (series.photometric == "MONOCHROME1")


# ---------------------------------------------------------------------------------------
# Twins: the same image in several transfer syntaxes


# Name parts that only say how a twin is stored. J2KR/UNCR and J2KI/UNCI are two different
# images (reversible and irreversible source), so the R/I letter stays in the stem.
_STORAGE_SUFFIX = re.compile(
    r"_(RLE|rle|expb|big_endian|bigendian|big|implicit|jpeg_ls_lossless|jp2klossless|"
    r"jpeg_2k_lossless|padded|1frame|2frame|16bit|32bit)$"
)


def _stem(path: Path) -> str:
    stem = re.sub(r"_(J2K|UNC)([RI])$", r"_\2", path.name.split(".")[0])
    while (shorter := _STORAGE_SUFFIX.sub("", stem)) != stem:
        stem = shorter
    return stem


def _twin_groups() -> dict[str, list[str]]:
    """Image files that share a SOP Instance UID or a name stem, and an image size.

    Files expected not to load as one image (non-image objects, DICOMDIRs, files without
    pixel data) are left out; their own test covers them."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    sizes: dict[str, tuple] = {}
    for key, path in FILES.items():
        if EXPECTED.get(key, DEFAULT).outcome != "image" or path.suffix not in ("", ".dcm"):
            continue
        with _quiet():
            try:
                ds = pydicom.dcmread(path, defer_size=1024, force=True)
                size = (int(ds.Rows), int(ds.Columns))
                sop = str(ds.get("SOPInstanceUID") or "")
            except Exception:  # not an image header: not a twin
                continue
        if "PixelData" not in ds:  # header-only test files and truncated ones
            continue
        sizes[key] = size
        parent[find(key)] = find(f"stem:{_stem(path)}")
        if sop:
            parent[find(key)] = find(f"sop:{sop}")
    groups: dict[tuple, list[str]] = defaultdict(list)
    for key, size in sizes.items():
        groups[(find(key), size)].append(key)
    return {members[0]: members for members in groups.values() if len(members) > 1}


TWINS = _twin_groups()


def _frames_by_index(read: MedviewRead) -> tuple[dict[int, np.ndarray], SeriesInfo]:
    assert len(read.volumes) == 1 and not read.errors, [str(e) for e in read.errors]
    series, volume = read.volumes[0]
    return (
        {fr.frame_index: volume.array[k] for k, fr in enumerate(series.slices) if fr is not None},
        series,
    )


@pytest.mark.parametrize("first", sorted(TWINS))
def test_twins_load_alike(first: str) -> None:
    """Lossless twins are identical; a lossy twin stays within LOSSY_TOLERANCE of the others.
    Twins with fewer frames are compared on the frames they share."""
    loaded = {}
    with _quiet():
        for key in TWINS[first]:
            read = read_medview(FILES[key])
            if read.volumes:  # a file that does not load has its own test saying why
                loaded[key] = _frames_by_index(read)
    assert len(loaded) > 1, f"fewer than two of {TWINS[first]} load"
    (base_key, (base, base_series)), *others = loaded.items()
    for key, (frames, series) in others:
        lossy = any(
            ts not in LOSSLESS for ts in series.transfer_syntaxes + base_series.transfer_syntaxes
        )
        tol = LOSSY_TOLERANCE if lossy else 0.0
        shared = sorted(set(frames) & set(base))
        assert shared, f"{key} and {base_key} share no frame"
        for i in shared:
            worst = float(np.max(np.abs(_twin_scale(frames[i]) - _twin_scale(base[i]))))
            assert worst <= tol, f"{key} frame {i} differs from {base_key} by {worst:g}"


def _twin_scale(frame: np.ndarray) -> np.ndarray:
    """Grey as it is; RGB on the 8-bit scale, since RGB keeps its stored depth and the 8-,
    16- and 32-bit twins are one image at three depths (128 = 32896 = 2155905152)."""
    if frame.ndim != 3 or frame.dtype == np.uint8:
        return frame.astype(np.float64)
    return frame.astype(np.float64) * (255.0 / np.iinfo(frame.dtype).max)


def test_twin_groups_cover_the_known_families() -> None:
    """Guard the grouping rule itself: it must keep finding the families that
    docs/development.md names."""
    grouped = {k for members in TWINS.values() for k in members}
    for key in (
        "pydicom/MR_small_RLE.dcm",
        "pydicom/MR_small_jpeg_ls_lossless.dcm",
        "pydicom/SC_rgb_rle_16bit.dcm",
        "pydicom-data/US1_J2KI.dcm",
        "pydicom-data/OBXXXX1A_expb.dcm",
        "pydicom-data/emri_small_RLE.dcm",
        "pydicom/rtdose_expb.dcm",
        "pydicom-data/RG1_J2KR.dcm",
    ):
        assert key in grouped, key
    assert sum(len(m) for m in TWINS.values()) >= 60


def test_dicomdir_variants_load_what_the_dicomdir_loads() -> None:
    """Byte-order, VR and record-order variants of one DICOMDIR lead to the same series."""

    def summary(key: str) -> list[tuple[str, tuple, int]]:
        read = read_medview(FILES[key])
        return sorted(
            (s.key, v.array.shape, int(v.array.astype(np.int64).sum())) for s, v in read.volumes
        )

    with _quiet():
        expected = summary("pydicom/dicomdirtests/DICOMDIR")
        assert len(expected) > 1
        for key, expect in EXPECTED.items():
            if expect.outcome == "dicomdir":
                assert summary(key) == expected, key

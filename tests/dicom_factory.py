"""Builders for a small synthetic DICOM corpus, written with pydicom as real Part 10 files.

Every builder returns what a correct reader must produce (the array in modality values,
in order along the slice normal, and the index -> LPS affine), computed here from the DICOM
formulas and not from MedView's code, so a test compares the reader with the standard and
not with itself. Pixel values depend uniquely on (slice, row, col): a flip, transpose or
wrong slice order changes the array. Everything is deterministic: UIDs are hashed from a
label, shuffles use a fixed seed. Hostile inputs live in tests/hostile_factory.py.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)

ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
# SOP class, modality and a readable name for each non-image object the scan must list.
NON_IMAGE_KINDS = {
    "basic_text_sr": ("1.2.840.10008.5.1.4.1.1.88.11", "SR"),
    "rt_plan": ("1.2.840.10008.5.1.4.1.1.481.5", "RTPLAN"),
    "rt_struct": ("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT"),
    "ecg_12_lead": ("1.2.840.10008.5.1.4.1.1.9.1.1", "ECG"),
    "gsps": ("1.2.840.10008.5.1.4.1.1.11.1", "PR"),
}

Names = str | Callable[[int], str]


def uid_for(*keys: object) -> str:
    """A valid UID that is the same every run for the same keys."""
    return str(generate_uid(entropy_srcs=[repr(k) for k in keys]))


@dataclass
class Written:
    """What was written and what a correct reader must make of it.

    `expected_array` and `positions` are in ascending order along the slice normal (the
    order MedView promises), including blank slices where `missing` says one was left out;
    `paths` are in that order too, without the missing ones."""

    paths: list[Path]
    expected_array: np.ndarray
    expected_affine: np.ndarray
    positions: np.ndarray | None = None
    missing: list[int] = field(default_factory=list)
    study_uid: str = ""
    series_uid: str = ""


def stamp(k: int, rows: int, cols: int, signed: bool = True) -> np.ndarray:
    """Stored values of slice k: unique per (slice, row, col) and, when signed, partly
    negative so a reader that ignores PixelRepresentation is caught."""
    base = k * rows * cols + np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    return base - 1000 if signed else base


def base_dataset(
    sop_class: str,
    modality: str,
    *,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    instance: int = 1,
    series_number: int = 1,
) -> Dataset:
    """The patient/study/series/instance attributes every object needs (also the ones
    pydicom's FileSet wants for DICOMDIR records)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20240131", "101500", "1"
    ds.AccessionNumber = "ACC1"
    ds.Modality = modality
    ds.PatientName, ds.PatientID = "Synthetic^Patient", "SYN001"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance
    ds.FrameOfReferenceUID = uid_for(study_uid, "frame of reference")
    return ds


def set_pixels(
    ds: Dataset,
    stored: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits: int = 16,
    signed: bool = True,
) -> None:
    """Image Pixel module for `stored` ((rows, cols), (frames, rows, cols) or with a last
    axis of 3 samples), stored little endian; `save` converts for other syntaxes."""
    samples = 3 if photometric in ("RGB", "YBR_FULL") else 1
    frames = stored.shape[0] if stored.ndim == 3 + (samples == 3) else 1
    ds.Rows, ds.Columns = stored.shape[-2 - (samples == 3) :][:2]
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    if frames > 1 or "NumberOfFrames" in ds:
        ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = int(signed)
    dtype = {8: np.uint8, 16: np.int16 if signed else np.uint16}[bits]
    ds.PixelData = stored.astype(dtype).tobytes()


def save(ds: Dataset, path: Path, transfer_syntax: str = ExplicitVRLittleEndian) -> Path:
    """Write `ds` (native little-endian pixels) as a Part 10 file in `transfer_syntax`.

    Compressed syntaxes go through pydicom's encoders without a new SOP Instance UID
    (pydicom would otherwise make one, docs/development.md). pydicom writes OW bytes as they are, so
    for big endian the 16-bit words of 16-bit pixels and of palette LUTs are swapped here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = UID(transfer_syntax)
    if ts.is_compressed:
        ds.compress(ts, generate_instance_uid=False)
    else:
        if ts == ExplicitVRBigEndian:
            words = [
                e
                for e in ds
                if e.VR == "OW" or (e.keyword == "PixelData" and ds.BitsAllocated == 16)
            ]
            for elem in words:
                elem.value = np.frombuffer(elem.value, "<u2").astype(">u2").tobytes()
        ds.file_meta.TransferSyntaxUID = ts
    ds.save_as(path, enforce_file_format=True)
    return path


def _name(names: Names, i: int) -> str:
    return names(i) if callable(names) else names.format(i=i)


def expected_affine(
    origin: Sequence[float],
    orientation: Sequence[float],
    spacing: Sequence[float],
    step: Sequence[float],
) -> np.ndarray:
    """Index (slice, row, col) -> LPS from DICOM's equation C.7.6.2.1-1: a row step moves
    along the column cosine by PixelSpacing[0], a column step along the row cosine by
    PixelSpacing[1]."""
    a = np.eye(4)
    a[:3, 0] = step
    a[:3, 1] = np.asarray(orientation[3:], float) * spacing[0]
    a[:3, 2] = np.asarray(orientation[:3], float) * spacing[1]
    a[:3, 3] = origin
    return a


def write_ct_series(
    folder: Path,
    *,
    n: int = 12,
    rows: int = 24,
    cols: int = 32,
    spacing: tuple[float, float] = (0.7, 0.8),
    thickness: float = 2.5,
    orientation: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-12.0, -9.0, 40.0),
    step: Sequence[float] | None = None,
    slope: float = 1.0,
    intercept: float = -1024.0,
    per_slice_rescale: Sequence[tuple[float, float]] | None = None,
    modality: str = "CT",
    label: str = "ct",
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    names: Names = "IM{i:04d}.dcm",
    shuffle: bool = False,
    transfer_syntax: str = ExplicitVRLittleEndian,
    pixel_fn: Callable[[int, int, int], np.ndarray] | None = None,
    drop: Sequence[int] = (),
    signed: bool = True,
    extra: dict[str, Any] | None = None,
) -> Written:
    """A single-frame stack: slice k at origin + k * step (default: normal * thickness).

    `shuffle` permutes file names and InstanceNumbers, so only sorting by position gives
    the right order; `drop` leaves slices out (a gap the reader must fill with blanks);
    `per_slice_rescale` gives (slope, intercept) per slice k; `extra` sets attributes on
    every file (e.g. to make a file hostile)."""
    row_cos, col_cos = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row_cos, col_cos)
    step_v = normal * thickness if step is None else np.asarray(step, float)
    study_uid = study_uid or uid_for("study")
    series_uid = series_uid or uid_for(label, "series")
    sop_class = MR_IMAGE if modality == "MR" else CTImageStorage
    perm = list(range(n))
    if shuffle:
        random.Random(f"{label}-shuffle").shuffle(perm)
    stored = np.stack(
        [pixel_fn(k, rows, cols) if pixel_fn else stamp(k, rows, cols, signed) for k in range(n)]
    )
    rescale = list(per_slice_rescale) if per_slice_rescale else [(slope, intercept)] * n
    values = np.stack([stored[k] * rescale[k][0] + rescale[k][1] for k in range(n)])
    positions = np.asarray(origin, float) + np.outer(np.arange(n), step_v)
    paths: dict[int, Path] = {}
    for k in range(n):
        if k in drop:
            continue
        ds = base_dataset(
            sop_class,
            modality,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=uid_for(label, series_uid, k),
            instance=perm[k] + 1,
            series_number=series_number,
        )
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [round(float(v), 6) for v in positions[k]]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.PixelSpacing = list(spacing)
        ds.SliceThickness = thickness
        ds.SliceLocation = round(float(positions[k] @ normal), 6)
        if modality == "CT" or per_slice_rescale or (slope, intercept) != (1.0, 0.0):
            ds.RescaleSlope, ds.RescaleIntercept = rescale[k]
            ds.RescaleType = "HU" if modality == "CT" else "US"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        set_pixels(ds, stored[k], signed=signed)
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        paths[k] = save(ds, folder / _name(names, perm[k]), transfer_syntax)
    order = list(range(n))
    if step_v @ normal < 0:  # written head-first: the reader shows them the other way round
        order.reverse()
        step_v = -step_v
    return Written(
        paths=[paths[k] for k in order if k in paths],
        expected_array=values[order],
        expected_affine=expected_affine(positions[order[0]], orientation, spacing, step_v),
        positions=positions[order],
        missing=[i for i, k in enumerate(order) if k in drop],
        study_uid=study_uid,
        series_uid=series_uid,
    )


def write_enhanced_mf(
    path: Path,
    n_frames: int = 8,
    *,
    shuffled: bool = True,
    per_frame_rescale: bool = True,
    rows: int = 24,
    cols: int = 32,
    spacing: tuple[float, float] = (0.6, 0.9),
    thickness: float = 3.0,
    orientation: Sequence[float] = AXIAL,
    origin: Sequence[float] = (5.0, -7.0, -30.0),
    label: str = "enhanced",
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Written:
    """Enhanced CT with geometry and rescale only in functional groups (shared: pixel
    measures and orientation; per frame: position and rescale) and frames stored out of
    order, so the reader must sort frames by position and rescale each one separately.
    Per-frame slopes of 1, 1.25 and 1.5 make the result non-integral (float32)."""
    row_cos, col_cos = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    step = np.cross(row_cos, col_cos) * thickness
    series_uid = uid_for(label, "series")
    ds = base_dataset(
        ENHANCED_CT,
        "CT",
        study_uid=uid_for("study"),
        series_uid=series_uid,
        sop_uid=uid_for(series_uid, 0),
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    order = list(range(n_frames))
    if shuffled:
        random.Random(f"{label}-frames").shuffle(order)
    rescale = [
        ((1.0 + 0.25 * (k % 3), -1024.0 + 3 * k) if per_frame_rescale else (1.0, -1024.0))
        for k in range(n_frames)
    ]
    stored = np.stack([stamp(k, rows, cols) for k in range(n_frames)])
    positions = np.asarray(origin, float) + np.outer(np.arange(n_frames), step)
    shared = Dataset()
    measures, plane = Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = list(spacing), thickness
    plane.ImageOrientationPatient = [float(v) for v in orientation]
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([plane])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for k in order:
        fg, pos, pvt, content = Dataset(), Dataset(), Dataset(), Dataset()
        pos.ImagePositionPatient = [float(v) for v in positions[k]]
        pvt.RescaleSlope, pvt.RescaleIntercept = rescale[k]
        pvt.RescaleType = "HU"
        content.InStackPositionNumber = k + 1
        content.StackID = "1"
        fg.PlanePositionSequence = DicomSequence([pos])
        fg.PixelValueTransformationSequence = DicomSequence([pvt])
        fg.FrameContentSequence = DicomSequence([content])
        per_frame.append(fg)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.NumberOfFrames = n_frames
    set_pixels(ds, stored[order])
    save(ds, path, transfer_syntax)
    values = np.stack([stored[k] * rescale[k][0] + rescale[k][1] for k in range(n_frames)])
    return Written(
        [path],
        values,
        expected_affine(positions[0], orientation, spacing, step),
        positions=positions,
        series_uid=series_uid,
        study_uid=ds.StudyInstanceUID,
    )


def _plain_image(sop_class: str, modality: str, label: str, k: int = 0) -> Dataset:
    series_uid = uid_for(label, "series")
    return base_dataset(
        sop_class,
        modality,
        study_uid=uid_for("study"),
        series_uid=series_uid,
        sop_uid=uid_for(series_uid, k),
        instance=k + 1,
        series_number=9,
    )


def _axial_geometry(ds: Dataset, k: int, spacing: tuple[float, float] = (1.0, 1.0)) -> None:
    ds.ImagePositionPatient = [0.0, 0.0, 2.0 * k]
    ds.ImageOrientationPatient = list(AXIAL)
    ds.PixelSpacing = list(spacing)


def write_rgb_series(
    folder: Path,
    n: int = 3,
    rows: int = 16,
    cols: int = 20,
    *,
    planar: int = 0,
    label: str = "rgb",
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Written:
    """Secondary-capture RGB slices (with geometry so they stack); `planar=1` stores
    RRR..GGG..BBB, which a reader that assumes interleaved samples garbles."""
    r, c = np.mgrid[0:rows, 0:cols]
    rgb = np.stack(
        [
            np.stack([(r * 7 + k) % 256, (c * 11 + 2 * k) % 256, (r * c + 40 * k) % 256], axis=-1)
            for k in range(n)
        ]
    )
    rgb = rgb.astype(np.uint8)
    paths = []
    for k in range(n):
        ds = _plain_image(SECONDARY_CAPTURE, "OT", label, k)
        _axial_geometry(ds, k)
        set_pixels(ds, rgb[k], photometric="RGB", bits=8, signed=False)
        if planar:
            ds.PlanarConfiguration = 1
            ds.PixelData = np.ascontiguousarray(rgb[k].transpose(2, 0, 1)).tobytes()
        paths.append(save(ds, folder / f"rgb{k}.dcm", transfer_syntax))
    return Written(paths, rgb, expected_affine((0, 0, 0), AXIAL, (1, 1), (0, 0, 2)))


def write_palette_image(
    path: Path, rows: int = 16, cols: int = 20, transfer_syntax: str = ExplicitVRLittleEndian
) -> Written:
    """PALETTE COLOR with 16-bit LUT entries v * 257 + 1 for 8-bit v <= 254: every usual
    16 -> 8 bit mapping (v >> 8, v // 257, round(v / 257)) gives v, yet the two bytes of
    each entry differ, so a byte-swapped LUT (pydicom 3.0 with big endian,
    docs/development.md) shows."""
    idx = ((np.arange(rows)[:, None] * 3 + np.arange(cols)[None, :] * 5) % 256).astype(np.uint8)
    ramp = np.arange(256)
    lut = np.stack([ramp % 255, 254 - ramp % 255, (ramp * 3) % 255], -1)
    ds = _plain_image(SECONDARY_CAPTURE, "OT", "palette")
    _axial_geometry(ds, 0)
    set_pixels(ds, idx, photometric="PALETTE COLOR", bits=8, signed=False)
    for i, colour in enumerate(("Red", "Green", "Blue")):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(
            ds,
            f"{colour}PaletteColorLookupTableData",
            (lut[:, i].astype("<u2") * 257 + 1).tobytes(),
        )
    save(ds, path, transfer_syntax)
    return Written(
        [path],
        lut.astype(np.uint8)[idx][None],
        expected_affine((0, 0, 0), AXIAL, (1, 1), (0, 0, 1)),
    )


def write_monochrome1(path: Path, rows: int = 20, cols: int = 16) -> Written:
    """A CR image in MONOCHROME1 (low values bright): the reader keeps the stored values
    and flags the display as inverted."""
    stored = stamp(0, rows, cols, signed=False) % 4096
    ds = _plain_image(CR_IMAGE, "CR", "mono1")
    ds.PixelSpacing = [0.2, 0.25]
    set_pixels(ds, stored, photometric="MONOCHROME1", signed=False)
    ds.BitsStored, ds.HighBit = 12, 11
    save(ds, path)
    return Written([path], stored[None], np.eye(4))


def write_us_multiframe(path: Path, n_frames: int = 6, rows: int = 16, cols: int = 24) -> Written:
    """An 8-bit ultrasound cine without patient geometry, frames in acquisition order."""
    frames = np.stack([stamp(k, rows, cols, signed=False) % 256 for k in range(n_frames)])
    ds = _plain_image(US_MULTIFRAME, "US", "us")
    ds.NumberOfFrames = n_frames
    ds.FrameTime = 33.3
    ds.FrameIncrementPointer = 0x00181063
    set_pixels(ds, frames.astype(np.uint8), bits=8, signed=False)
    save(ds, path)
    return Written([path], frames, np.eye(4))


def write_non_image(folder: Path, kind: str, label: str = "non-image") -> Path:
    """A minimal but well-formed header of a non-image object (no pixel data)."""
    sop_class, modality = NON_IMAGE_KINDS[kind]
    ds = _plain_image(sop_class, modality, f"{label}-{kind}")
    if kind == "basic_text_sr":
        ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
        item = Dataset()
        item.RelationshipType, item.ValueType, item.TextValue = "CONTAINS", "TEXT", "No finding."
        ds.ContentSequence = DicomSequence([item])
    elif kind == "rt_plan":
        ds.RTPlanLabel, ds.RTPlanGeometry = "PLAN1", "PATIENT"
    elif kind == "rt_struct":
        roi = Dataset()
        roi.ROINumber, roi.ROIName = 1, "GTV"
        roi.ReferencedFrameOfReferenceUID = ds.FrameOfReferenceUID
        ds.StructureSetLabel, ds.StructureSetROISequence = "SS1", DicomSequence([roi])
    elif kind == "ecg_12_lead":
        wave = Dataset()
        wave.NumberOfWaveformChannels, wave.NumberOfWaveformSamples = 12, 10
        wave.SamplingFrequency, wave.WaveformBitsAllocated = 500, 16
        wave.WaveformSampleInterpretation = "SS"
        wave.WaveformData = np.zeros(120, "<i2").tobytes()
        ds.WaveformSequence = DicomSequence([wave])
    elif kind == "gsps":
        ds.ContentLabel, ds.PresentationCreationDate = "GSPS", "20240131"
    path = folder / f"{kind}.dcm"
    save(ds, path)
    return path


def copy_with(src: Path, dst: Path, **changes: Any) -> Path:
    """A copy of `src` with some attributes changed (e.g. a new SOPInstanceUID for a
    'different image at the same position'); without changes, an identical byte copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not changes:
        shutil.copyfile(src, dst)
        return dst
    ds = pydicom.dcmread(src)
    for key, value in changes.items():
        setattr(ds, key, value)
    if "SOPInstanceUID" in changes:
        ds.file_meta.MediaStorageSOPInstanceUID = changes["SOPInstanceUID"]
    ds.save_as(dst, enforce_file_format=True)
    return dst


def write_dicomdir(folder: Path, sources: Sequence[Path]) -> Path:
    """A DICOMDIR file set in `folder` holding copies of `sources` (pydicom names them
    PT*/ST*/SE*/IM*); returns the DICOMDIR's path."""
    fs = FileSet()
    for src in sources:
        fs.add(src)
    fs.write(folder)
    return folder / "DICOMDIR"


def zip_folder(folder: Path, zip_path: Path, *, prefix: str = "") -> Path:
    """A zip of every file under `folder`, names relative to it (optionally under `prefix`)."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
    return zip_path


# ---------------------------------------------------------------------------------------
# Watching file access: a process-wide audit hook (hooks cannot be removed, so one hook
# serves every FileAccessLog that is active) sees each open() by the reader, in any thread.


@dataclass
class FileAccessLog:
    """Paths opened for reading and for writing while the log was active."""

    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)

    def reads_under(self, folder: Path) -> list[str]:
        root = str(folder)
        return [p for p in self.reads if p.startswith(root)]

    def writes_outside(self, folder: Path) -> list[str]:
        root = str(folder)
        return [p for p in self.writes if not p.startswith(root)]


_ACTIVE_LOGS: list[FileAccessLog] = []
_HOOK_LOCK = threading.Lock()
_HOOK_INSTALLED = False
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND


def _audit(event: str, args: tuple) -> None:
    if event != "open" or not _ACTIVE_LOGS:
        return
    path, mode, flags = args
    if isinstance(path, int) or path is None:
        return
    path = os.path.abspath(os.fsdecode(path))
    writing = bool(set(str(mode or "")) & set("wax+")) or bool((flags or 0) & _WRITE_FLAGS)
    for log in list(_ACTIVE_LOGS):
        (log.writes if writing else log.reads).append(path)


@contextmanager
def watch_files() -> Iterator[FileAccessLog]:
    """Record every file opened (by any thread of this process) inside the block."""
    global _HOOK_INSTALLED
    with _HOOK_LOCK:
        if not _HOOK_INSTALLED:
            sys.addaudithook(_audit)
            _HOOK_INSTALLED = True
    log = FileAccessLog()
    _ACTIVE_LOGS.append(log)
    try:
        yield log
    finally:
        _ACTIVE_LOGS.remove(log)

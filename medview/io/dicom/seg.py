"""Label maps to and from DICOM Segmentation objects (highdicom), for PACS and other viewers.

A SEG written here says which algorithm made it (highdicom's AlgorithmIdentificationSequence:
the model's name and version, family Artificial Intelligence), that it is AI assistance and
not a diagnosis (series and content description), and references the exact source images it
was computed on, so a PACS shows it on the right slices. Source files are only read (headers,
no pixels), never modified.

Segment i + 1 is the card's i-th label (BINARY, AUTOMATIC), whether or not it has voxels:
highdicom accepts empty segments (and an entirely empty map, then storing every frame), so
the segment table is the same for every study a model sees.

Slices the loader filled in to close a gap in the series (None in series.slices) have no
source image to reference; they are left out, and any labelled voxels on them are reported
in the returned notes. Series stored as multi-frame files are refused for now.

`write_segmentation` and `read_seg_frames` / `place_frames` are shared with io.label_seg (the
reader's own labels): one writer and one reader of SEG frames for AI and human labels.
Frames are placed on a series' grid by the source image they reference, else by where they
lie (position, orientation, spacing within SEG_TOLERANCE), so a SEG made elsewhere without
references (or for a copy of the series with new UIDs) still lands on the right slices."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medview import __version__
from medview.core.errors import InvalidInputError, UnsupportedInputError
from medview.core.series import SeriesInfo
from medview.io.workspace import atomic_write_bytes

_log = logging.getLogger(__name__)

DISCLAIMER = "AI assistance — not a diagnosis"
CONTENT_LABEL = "MEDVIEW_AI"
SERIES_NUMBER = 900
# Every label of a lesion model is an altered structure; the type code comes from the card.
CATEGORY = ("49755003", "SCT", "Morphologically Altered Structure")


class SegLabel(Protocol):
    value: int
    name: str
    colour: tuple[int, int, int]
    code: tuple[str, str, str]  # (scheme designator, code value, meaning)


class SegModel(Protocol):
    """What the SEG needs of a model card (medview.ai.models.cards.ModelCard fits; io does not
    import ai)."""

    name: str
    version: str
    labels: Sequence[SegLabel]


# Patient and study attributes a SEG copies from its sources; empty (type 2) when missing.
_TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def _source_headers(series: SeriesInfo) -> tuple[list[int], list[Any]]:
    """Indices of the slices that have a source image, and those images' headers."""
    import pydicom

    from medview.io.sources import SourceOpener

    frames = [(k, f) for k, f in enumerate(series.slices) if f is not None]
    if not frames:
        raise InvalidInputError(None, "the series has no source images to reference")
    if len({f.source for _, f in frames}) != len(frames) or any(
        f.pixel.n_frames != 1 for _, f in frames
    ):
        raise UnsupportedInputError(
            str(frames[0][1].source),
            "is a multi-frame image; DICOM SEG export supports single-frame series only",
        )
    headers = []
    with SourceOpener() as opener:
        for _, fr in frames:
            with opener.open(fr.source) as fh:
                try:
                    header = pydicom.dcmread(fh, stop_before_pixels=True)
                except Exception as exc:  # pydicom raises several kinds on broken files
                    raise InvalidInputError(
                        str(fr.source), f"cannot be read again ({exc})"
                    ) from exc
            for keyword in _TYPE2_COPIED:  # often missing; highdicom copies them (type 2)
                if keyword not in header:
                    setattr(header, keyword, "")
            headers.append(header)
    return [k for k, _ in frames], headers


def _descriptions(model: SegModel) -> list[Any]:
    import highdicom as hd
    from highdicom.sr.coding import CodedConcept
    from pydicom.sr.codedict import codes

    algorithm = hd.AlgorithmIdentificationSequence(
        name=model.name, version=model.version, family=codes.cid7162.ArtificialIntelligence
    )
    out = []
    for i, lab in enumerate(model.labels, 1):
        scheme, value, meaning = lab.code
        out.append(
            hd.seg.SegmentDescription(
                segment_number=i,
                segment_label=lab.name[:64],
                segmented_property_category=CodedConcept(*CATEGORY),
                segmented_property_type=CodedConcept(value, scheme, meaning),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
                display_color=hd.color.CIELabColor.from_rgb(*(int(c) for c in lab.colour)),
            )
        )
    return out


def write_seg(
    label_map: np.ndarray,
    series: SeriesInfo,
    model: SegModel,
    out_path: str | Path,
    source_datasets: Sequence[Any] | None = None,
) -> list[str]:
    """Write `label_map` (uint8 (slice, row, col) of the model's label values, on the
    series' grid) as a BINARY DICOM SEG at `out_path`, atomically. `source_datasets` are
    the headers of the slices that have a file, in order (read from series.slices when not
    given). Returns notes for the user (e.g. voxels on filled slices left out)."""
    lut = np.zeros(256, np.uint8)
    for i, lab in enumerate(model.labels, 1):
        lut[lab.value] = i
    unknown = sorted(set(np.unique(label_map).tolist()) - {0} - {lab.value for lab in model.labels})
    if unknown:
        raise ValueError(f"label map holds values {unknown} the model does not define")
    return write_segmentation(
        lut[label_map],
        series,
        _descriptions(model),
        out_path,
        source_datasets=source_datasets,
        content_label=CONTENT_LABEL,
        content_description=DISCLAIMER,
        series_description=f"{DISCLAIMER} ({model.name} {model.version})",
    )


def write_segmentation(
    numbers: np.ndarray,
    series: SeriesInfo,
    descriptions: list[Any],
    out_path: str | Path,
    *,
    content_label: str,
    content_description: str,
    series_description: str,
    series_number: int = SERIES_NUMBER,
    source_datasets: Sequence[Any] | None = None,
) -> list[str]:
    """Write `numbers` (uint8 (slice, row, col) of segment numbers, on the series' grid) as
    a BINARY SEG with `descriptions` (highdicom SegmentDescriptions), atomically."""
    import highdicom as hd

    if numbers.shape != (len(series.slices), series.rows, series.cols):
        raise ValueError(
            f"label map {numbers.shape} does not match the series grid "
            f"{(len(series.slices), series.rows, series.cols)}"
        )
    kept, headers = (
        _source_headers(series)
        if source_datasets is None
        else ([k for k, f in enumerate(series.slices) if f is not None], list(source_datasets))
    )
    notes = []
    dropped = int(np.count_nonzero(np.delete(numbers, kept, axis=0)))
    if dropped:
        notes.append(
            f"{dropped} labelled voxel(s) lie on slices that fill a gap in the "
            f"series and have no source image; the SEG leaves them out."
        )
    seg = hd.seg.Segmentation(
        source_images=headers,
        pixel_array=numbers[kept],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="MedView",
        manufacturer_model_name="MedView",
        software_versions=__version__,
        device_serial_number="0",
        content_label=content_label,
        content_description=content_description[:64],
        series_description=series_description[:64],
    )
    seg.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, for the em dash in the disclaimer
    buf = io.BytesIO()
    seg.save_as(buf)
    atomic_write_bytes(Path(out_path), buf.getvalue())
    return notes


@dataclass(frozen=True)
class SegContents:
    label_map: np.ndarray  # uint8 (slice, row, col) of segment numbers, on the series' grid
    segment_labels: dict[int, str]  # segment number -> label
    algorithm: tuple[str, str]  # (name, version) of the first segment's algorithm
    series_description: str
    content_label: str


def read_seg(path: str | Path, series: SeriesInfo) -> SegContents:
    """Read a SEG back onto `series`' grid (by referenced SOP Instance UID, else by where
    its frames lie; slices it does not cover stay 0)."""
    frames = read_seg_frames(path)
    placed = place_frames(
        frames,
        series.shape[:3],
        series.affine,
        [f.sop_instance_uid if f else None for f in series.slices],
    )
    if placed is None:
        raise InvalidInputError(str(path), "does not lie on this series' slices")
    labels = {int(d.SegmentNumber): str(d.SegmentLabel) for d in frames.segments}
    first = frames.segments[0].get("SegmentationAlgorithmIdentificationSequence", [None])[0]
    algorithm = (str(first.AlgorithmName), str(first.AlgorithmVersion)) if first else ("", "")
    return SegContents(
        placed.numbers, labels, algorithm, frames.series_description, frames.content_label
    )


# --- reading SEG frames, for AI output and for SEGs made elsewhere -----------------------
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABEL_MAP_SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
SEG_TOLERANCE_VOXELS = 0.05  # a frame lies on a slice when within this of it


@dataclass(frozen=True)
class SegFrames:
    masks: np.ndarray  # bool (frames, rows, cols): the frame's segment is present
    numbers: np.ndarray  # int (frames,): the segment each frame belongs to
    positions: np.ndarray | None  # (frames, 3) LPS mm of each frame's first pixel
    orientation: np.ndarray | None  # (6,) row and column cosines
    spacing: np.ndarray | None  # (2,) row, column spacing in mm
    sources: list[str | None]  # the SOP Instance UID each frame was derived from
    referenced_series: set[str]
    segments: list[Any]  # the SegmentSequence items
    series_description: str
    content_label: str
    notes: list[str]


def _item(ds: Any, group: Any, seq: str) -> Any:
    """The first item of functional group `seq` in a frame's group, else the shared one."""
    for g in (group, ds.get("SharedFunctionalGroupsSequence", [None])[0]):
        if g is not None and seq in g and len(g[seq].value):
            return g[seq].value[0]
    return None


def read_seg_frames(path: str | Path) -> SegFrames:
    """The frames of a BINARY, FRACTIONAL (kept where >= 0.5) or LABELMAP SEG with where
    each lies and which segment and source image it belongs to. InvalidInputError or
    UnsupportedInputError, naming the file, for anything else."""
    import pydicom

    where = str(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many kinds on a broken file
        _log.debug("reading %s as DICOM: %s", where, exc)
        raise InvalidInputError(
            where,
            "is not a DICOM file that can be read; choose a DICOM SEG "
            "(.dcm) or a NIfTI / NRRD label map",
        ) from exc
    if (
        ds.get("SOPClassUID") not in (SEG_STORAGE, LABEL_MAP_SEG_STORAGE)
        or "SegmentSequence" not in ds
    ):
        raise InvalidInputError(where, "is not a DICOM Segmentation (SEG) object")
    kind = str(ds.get("SegmentationType", ""))
    if kind not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise UnsupportedInputError(
            where, f"is a SEG of type {kind or 'unknown'}, which MedView cannot read"
        )
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # missing or undecodable pixel data
        raise InvalidInputError(where, f"holds no readable frames ({exc})") from exc
    pixels = pixels.reshape(-1, int(ds.Rows), int(ds.Columns))
    groups = list(ds.get("PerFrameFunctionalGroupsSequence", [])) or [None] * len(pixels)
    if len(groups) != len(pixels):
        raise InvalidInputError(
            where, f"has {len(pixels)} frames but {len(groups)} frame descriptions"
        )
    notes = []
    if kind == "FRACTIONAL":
        top = float(ds.get("MaximumFractionalValue", 255))
        masks = pixels.astype(np.float32) >= 0.5 * top
        notes.append(
            f"{Path(where).name} holds fractional segments; voxels of 0.5 or more were taken."
        )
    else:
        masks = pixels > 0
    numbers, sources, positions = [], [], []
    orientation = spacing = None
    for group in groups:
        ident = _item(ds, group, "SegmentIdentificationSequence")
        numbers.append(int(ident.ReferencedSegmentNumber) if ident is not None else 1)
        deriv = _item(ds, group, "DerivationImageSequence")
        src = (
            deriv.SourceImageSequence[0]
            if deriv is not None and deriv.get("SourceImageSequence")
            else None
        )
        sources.append(str(src.ReferencedSOPInstanceUID) if src is not None else None)
        pos = _item(ds, group, "PlanePositionSequence")
        positions.append(None if pos is None else [float(v) for v in pos.ImagePositionPatient])
        ori = _item(ds, group, "PlaneOrientationSequence")
        meas = _item(ds, group, "PixelMeasuresSequence")
        if ori is not None:
            orientation = np.array([float(v) for v in ori.ImageOrientationPatient])
        if meas is not None and "PixelSpacing" in meas:
            spacing = np.array([float(v) for v in meas.PixelSpacing])
    if kind == "LABELMAP":  # values are segment numbers: one mask per number present
        values = sorted(set(np.unique(pixels).tolist()) - {0})
        masks = np.concatenate([pixels == v for v in values]) if values else masks[:0]
        numbers = [v for v in values for _ in range(len(pixels))]
        sources, positions = sources * len(values), positions * len(values)
    referenced = {str(s.SeriesInstanceUID) for s in ds.get("ReferencedSeriesSequence", [])}
    return SegFrames(
        masks,
        np.array(numbers, int),
        None if any(p is None for p in positions) else np.array(positions, float).reshape(-1, 3),
        orientation,
        spacing,
        sources,
        referenced,
        list(ds.SegmentSequence),
        str(ds.get("SeriesDescription", "")),
        str(ds.get("ContentLabel", "")),
        notes,
    )


@dataclass(frozen=True)
class PlacedSeg:
    numbers: np.ndarray  # uint8 (slice, row, col) segment numbers
    overlap: int  # voxels claimed by more than one segment (the first listed keeps them)
    by_reference: bool


def _slices_by_geometry(
    frames: SegFrames, shape: tuple[int, ...], affine: np.ndarray
) -> np.ndarray | None:
    """The slice each frame lies on, or None when its geometry does not fit the grid."""
    if frames.positions is None or frames.orientation is None or frames.spacing is None:
        return None
    row_step = frames.orientation[3:] * frames.spacing[0]
    col_step = frames.orientation[:3] * frames.spacing[1]
    tol = 1e-3 * max(1.0, float(np.linalg.norm(affine[:3, 1])))
    if not (
        np.allclose(row_step, affine[:3, 1], atol=tol)
        and np.allclose(col_step, affine[:3, 2], atol=tol)
    ):
        return None
    ijk = (np.linalg.inv(affine) @ np.c_[frames.positions, np.ones(len(frames.positions))].T)[:3].T
    k = np.round(ijk[:, 0])
    if len(ijk) and (
        np.abs(ijk - np.c_[k, np.zeros((len(k), 2))]).max() > SEG_TOLERANCE_VOXELS
        or k.min() < 0
        or k.max() >= shape[0]
    ):
        return None
    return k.astype(int)


def place_frames(
    frames: SegFrames,
    shape: tuple[int, ...],
    affine: np.ndarray,
    sop_uids: Sequence[str | None] = (),
) -> PlacedSeg | None:
    """The SEG's segments on the grid `shape` / `affine` whose slices come from images
    `sop_uids` (None for a slice without a file): each frame by the image it references,
    else by where it lies. None when a frame fits neither (another series)."""
    if frames.masks.shape[1:] != tuple(shape[1:3]):
        return None
    slice_of = {u: k for k, u in enumerate(sop_uids) if u}
    by_ref = [slice_of.get(s) if s else None for s in frames.sources]
    by_geo = None
    if any(k is None for k in by_ref):
        by_geo = _slices_by_geometry(frames, shape, affine)
        if by_geo is None:
            return None
    out = np.zeros(tuple(shape[:3]), np.uint8)
    overlap = 0
    for f in np.argsort(frames.numbers, kind="stable"):
        k = by_ref[f] if by_ref[f] is not None else int(by_geo[f])  # type: ignore[index]
        plane, mask = out[k], frames.masks[f]
        overlap += int(np.count_nonzero(mask & (plane != 0) & (plane != frames.numbers[f])))
        plane[mask & (plane == 0)] = frames.numbers[f]
    return PlacedSeg(out, overlap, all(k is not None for k in by_ref))

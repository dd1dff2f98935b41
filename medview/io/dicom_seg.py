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
in the returned notes. Series stored as multi-frame files are refused for now."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medview import __version__
from medview.core.errors import InvalidInputError, UnsupportedInputError
from medview.core.series import SeriesInfo
from medview.io.workspace import atomic_write_bytes

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
    """What the SEG needs of a model card (medview.ai.cards.ModelCard fits; io does not
    import ai)."""

    name: str
    version: str
    labels: Sequence[SegLabel]


def _source_headers(series: SeriesInfo) -> tuple[list[int], list[Any]]:
    """Indices of the slices that have a source image, and those images' headers."""
    import pydicom

    from medview.io.sources import SourceOpener

    frames = [(k, f) for k, f in enumerate(series.slices) if f is not None]
    if not frames:
        raise InvalidInputError(None, "the series has no source images to reference")
    if len({f.source for _, f in frames}) != len(frames) or \
            any(f.pixel.n_frames != 1 for _, f in frames):
        raise UnsupportedInputError(str(frames[0][1].source), "is a multi-frame image; "
                                    "DICOM SEG export supports single-frame series only")
    headers = []
    with SourceOpener() as opener:
        for _, fr in frames:
            with opener.open(fr.source) as fh:
                try:
                    headers.append(pydicom.dcmread(fh, stop_before_pixels=True))
                except Exception as exc:  # pydicom raises several kinds on broken files
                    raise InvalidInputError(str(fr.source), f"cannot be read again ({exc})"
                                            ) from exc
    return [k for k, _ in frames], headers


def _descriptions(model: SegModel) -> list[Any]:
    import highdicom as hd
    from highdicom.sr.coding import CodedConcept
    from pydicom.sr.codedict import codes

    algorithm = hd.AlgorithmIdentificationSequence(
        name=model.name, version=model.version, family=codes.cid7162.ArtificialIntelligence)
    out = []
    for i, lab in enumerate(model.labels, 1):
        scheme, value, meaning = lab.code
        out.append(hd.seg.SegmentDescription(
            segment_number=i, segment_label=lab.name[:64],
            segmented_property_category=CodedConcept(*CATEGORY),
            segmented_property_type=CodedConcept(value, scheme, meaning),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_rgb(*(int(c) for c in lab.colour))))
    return out


def write_seg(label_map: np.ndarray, series: SeriesInfo, model: SegModel,
              out_path: str | Path, source_datasets: Sequence[Any] | None = None
              ) -> list[str]:
    """Write `label_map` (uint8 (slice, row, col) of the model's label values, on the
    series' grid) as a BINARY DICOM SEG at `out_path`, atomically. `source_datasets` are
    the headers of the slices that have a file, in order (read from series.slices when not
    given). Returns notes for the user (e.g. voxels on filled slices left out)."""
    import highdicom as hd

    if label_map.shape != (len(series.slices), series.rows, series.cols):
        raise ValueError(f"label map {label_map.shape} does not match the series grid "
                         f"{(len(series.slices), series.rows, series.cols)}")
    lut = np.zeros(256, np.uint8)
    for i, lab in enumerate(model.labels, 1):
        lut[lab.value] = i
    unknown = sorted(set(np.unique(label_map).tolist()) - {0} - {lab.value
                                                                for lab in model.labels})
    if unknown:
        raise ValueError(f"label map holds values {unknown} the model does not define")
    kept, headers = _source_headers(series) if source_datasets is None else (
        [k for k, f in enumerate(series.slices) if f is not None], list(source_datasets))
    notes = []
    dropped = int(np.count_nonzero(np.delete(label_map, kept, axis=0)))
    if dropped:
        notes.append(f"{dropped} labelled voxel(s) lie on slices that fill a gap in the "
                     f"series and have no source image; the SEG leaves them out.")
    seg = hd.seg.Segmentation(
        source_images=headers, pixel_array=lut[label_map[kept]],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_descriptions(model), series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="MedView", manufacturer_model_name="MedView",
        software_versions=__version__, device_serial_number="0",
        content_label=CONTENT_LABEL, content_description=DISCLAIMER,
        series_description=f"{DISCLAIMER} ({model.name} {model.version})"[:64])
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
    """Read a BINARY SEG back onto `series`' grid (by referenced SOP Instance UID; slices it
    does not reference stay 0). Segments must not overlap."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:  # pydicom / highdicom raise many kinds on a bad file
        raise InvalidInputError(str(path), f"is not a readable DICOM SEG ({exc})") from exc
    out = np.zeros((len(series.slices), series.rows, series.cols), np.uint8)
    uids = {f.sop_instance_uid: k for k, f in enumerate(series.slices) if f is not None}
    in_seg = {ref[2] for ref in seg.get_source_image_uids()}
    referenced = [u for u in uids if u in in_seg]
    if referenced:
        pixels = seg.get_pixels_by_source_instance(
            referenced, combine_segments=True, assert_missing_frames_are_empty=True)
        for uid, plane in zip(referenced, pixels, strict=True):
            out[uids[uid]] = plane
    labels = {int(d.SegmentNumber): str(d.SegmentLabel) for d in seg.SegmentSequence}
    first = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    return SegContents(out, labels, (str(first.AlgorithmName), str(first.AlgorithmVersion)),
                       str(seg.SeriesDescription), str(seg.ContentLabel))

"""The reader's label map to and from DICOM SEG, so it opens in every PACS and viewer.

Export: one segment per Segment of the table, with its SNOMED CT category and type codes and
colour; a segment the reader drew is MANUAL, one accepted from AI output is SEMIAUTOMATIC and
names the model and version that made it (AlgorithmIdentificationSequence, family
Artificial Intelligence), so an export always says which model made what. The SEG
references the exact source images (io.dicom_seg.write_segmentation, shared with AI export).

Import: a SEG made elsewhere (highdicom, 3D Slicer, OHIF, MedView) is put on the open series
it references (ReferencedSeriesSequence, then each frame's source image), else on the one its
frames lie on (position, orientation, spacing); BINARY and LABELMAP as they are, FRACTIONAL
kept where >= 0.5; voxels in two segments go to the first listed, and the notes say how many.
A SEG that fits no open series is refused in one sentence naming the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medview.core.errors import InvalidInputError, UnsupportedInputError
from medview.core.labels import MAX_SEGMENTS, Code, LabelMap, Segment, default_colour
from medview.core.series import SeriesInfo
from medview.io.dicom.seg import SegFrames, place_frames, read_seg_frames, write_segmentation
from medview.io.labels.match import NO_SERIES_OPEN, ImportedLabels, LabelTarget

CONTENT_LABEL = "MEDVIEW_LABELS"
# the content label of labels the reader marked done (ready for training): what a
# department's PACS is searched for when training from pacs:// (net.training_source)
CONTENT_LABEL_DONE = "MEDVIEW_DONE"
SERIES_NUMBER = 901


def _model(made_by: str) -> tuple[str, str]:
    name, _, version = made_by.partition(":")
    return name or "unknown model", version or "unknown"


def _descriptions(segments: list[Segment]) -> list[Any]:
    import highdicom as hd
    from highdicom.sr.coding import CodedConcept
    from pydicom.sr.codedict import codes

    out = []
    for number, seg in enumerate(segments, 1):
        algorithm = None
        if seg.made_by:
            name, version = _model(seg.made_by)
            algorithm = hd.AlgorithmIdentificationSequence(
                name=name, version=version, family=codes.cid7162.ArtificialIntelligence
            )
        out.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=seg.name[:64] or f"Segment {number}",
                segmented_property_category=CodedConcept(
                    seg.category.value, seg.category.scheme, seg.category.meaning
                ),
                segmented_property_type=CodedConcept(
                    seg.type.value, seg.type.scheme, seg.type.meaning
                ),
                algorithm_type=(
                    hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
                    if seg.made_by
                    else hd.seg.SegmentAlgorithmTypeValues.MANUAL
                ),
                algorithm_identification=algorithm,
                display_color=hd.color.CIELabColor.from_rgb(*(int(c) for c in seg.colour[:3])),
            )
        )
    return out


def export_seg(
    label_map: LabelMap,
    series: SeriesInfo,
    out_path: str | Path,
    source_datasets: Sequence[Any] | None = None,
    done: bool = False,
) -> list[str]:
    """Write the label map of `series` as a BINARY DICOM SEG at `out_path`, atomically;
    `done`: the reader marked the labels done, and the SEG says so (CONTENT_LABEL_DONE).
    Returns notes for the reader (voxels left out, and why)."""
    segments = [label_map.segments[v] for v in sorted(label_map.segments)]
    if not segments:
        raise InvalidInputError(
            str(out_path),
            "was not written: the label map has no segments; add a segment and paint it first",
        )
    lut = np.zeros(256, np.uint8)
    for number, seg in enumerate(segments, 1):
        lut[seg.value] = number
    notes = []
    stray = int(np.count_nonzero((lut[label_map.array] == 0) & (label_map.array != 0)))
    if stray:
        notes.append(
            f"{stray} voxel(s) hold a value no segment is defined for; the SEG leaves them out."
        )
    ai = sorted({s.made_by for s in segments if s.made_by})
    description = "Reader's labels" + (f", with AI segments ({', '.join(ai)})" if ai else "")
    notes += write_segmentation(
        lut[label_map.array],
        series,
        _descriptions(segments),
        out_path,
        source_datasets=source_datasets,
        content_label=CONTENT_LABEL_DONE if done else CONTENT_LABEL,
        content_description=description + (", marked done" if done else ""),
        series_description="MedView labels",
        series_number=SERIES_NUMBER,
    )
    return notes


def _code(item: Any, sequence: str, fallback: Code) -> Code:
    seq = item.get(sequence)
    if not seq:
        return fallback
    c = seq[0]
    return Code(
        str(c.get("CodingSchemeDesignator", "")),
        str(c.get("CodeValue", "")),
        str(c.get("CodeMeaning", "")),
    )


def _segment(item: Any, value: int) -> Segment:
    import highdicom as hd

    colour = default_colour(value)
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is not None and len(lab) == 3:
        colour = hd.color.CIELabColor.from_dicom_value([int(v) for v in lab]).to_rgb(clip=True)
    kind = str(item.get("SegmentAlgorithmType", "MANUAL"))
    made_by = ""
    if kind != "MANUAL":
        algo = (item.get("SegmentationAlgorithmIdentificationSequence") or [None])[0]
        made_by = (
            f"{algo.get('AlgorithmName', 'unknown model')}:"
            f"{algo.get('AlgorithmVersion', 'unknown')}"
            if algo is not None
            else str(item.get("SegmentAlgorithmName", "unknown model"))
        )
    default = Segment(value, "", colour)
    return Segment(
        value,
        str(item.get("SegmentLabel", "")) or f"Segment {value}",
        tuple(int(c) for c in colour),  # type: ignore[arg-type]
        _code(item, "SegmentedPropertyCategoryCodeSequence", default.category),
        _code(item, "SegmentedPropertyTypeCodeSequence", default.type),
        made_by=made_by,
        reviewed=kind != "AUTOMATIC",
    )


def _refusal(path: str, frames: SegFrames) -> InvalidInputError:
    made_on = (
        f"it refers to series …{sorted(frames.referenced_series)[0][-12:]}, which is "
        "not open, and its frames lie on none of the open series"
        if frames.referenced_series
        else "its frames lie on none of the open series"
    )
    return InvalidInputError(
        path,
        f"fits none of the open series: {made_on}; open the "
        "series it was drawn on, then import it again",
    )


def import_seg(path: str | Path, targets: Sequence[LabelTarget]) -> ImportedLabels:
    """A SEG made elsewhere as a LabelMap on the open series (`targets`) it belongs to."""
    where = str(path)
    frames = read_seg_frames(path)
    if not targets:
        raise InvalidInputError(where, NO_SERIES_OPEN)
    # a LABELMAP SEG may describe the background as segment 0: not a segment of ours
    items = sorted(
        (d for d in frames.segments if int(d.SegmentNumber) > 0), key=lambda d: int(d.SegmentNumber)
    )
    if len(items) > MAX_SEGMENTS:
        raise UnsupportedInputError(
            where,
            f"holds {len(items)} segments; MedView keeps at most {MAX_SEGMENTS} in one label map",
        )
    value_of = {int(d.SegmentNumber): v for v, d in enumerate(items, 1)}
    unknown = set(frames.numbers.tolist()) - set(value_of)
    if unknown:
        raise InvalidInputError(
            where,
            f"has frames of segment(s) {sorted(unknown)} that its segment table does not describe",
        )
    frames_v = SegFrames(
        **{
            **frames.__dict__,
            "numbers": np.array([value_of[n] for n in frames.numbers.tolist()], int),
        }
    )
    ordered = sorted(targets, key=lambda t: t.series_instance_uid not in frames.referenced_series)
    for target in ordered:
        placed = place_frames(frames_v, target.shape, target.affine, target.sop_uids)
        if placed is not None:
            break
    else:
        raise _refusal(where, frames)
    notes = list(frames.notes)
    if placed.overlap:
        notes.append(
            f"{placed.overlap} voxel(s) of {Path(where).name} belong to more than "
            "one segment; each went to the segment listed first (a MedView label "
            "map holds one segment a voxel)."
        )
    if not placed.by_reference:
        notes.append(
            f"{Path(where).name} was matched to the series by where its frames lie "
            "(it does not reference these images)."
        )
    segments = {v: _segment(d, v) for v, d in enumerate(items, 1)}
    return ImportedLabels(
        target.series_key, LabelMap(placed.numbers, segments, target.series_key), notes
    )

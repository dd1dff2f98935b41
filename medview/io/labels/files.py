"""Label maps as NIfTI / NRRD files (ITK-SNAP, 3D Slicer, nnU-Net, MONAI read them), with the
segment table in a JSON sidecar beside the file (<name>.segments.json).

Geometry goes through io.image_files (RAS<->LPS only there). A NIfTI cannot hold a tilted
(sheared) grid, and resampling labels would mix them, so a tilted series is refused for NIfTI
with the advice to use .nrrd, which keeps the tilt. Import puts a label file on the open
series whose grid it is exactly (shape, and voxel centres within a twentieth of a voxel),
never resampled; one that fits none, or that holds values that are not labels, is refused in
one sentence naming the file. Segment names come from the sidecar when there is a readable
one, else "Segment N"."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medview.core import geometry
from medview.core.errors import InvalidInputError, UnsupportedInputError
from medview.core.labels import LabelMap, Segment, segment_for
from medview.core.volume import Volume, VolumeMetadata
from medview.io.image_files import read_image, write_volume
from medview.io.labels.match import ImportedLabels, LabelTarget, match_grid
from medview.io.workspace import atomic_write_text

LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".seg.nrrd")
SIDECAR_FORMAT = "medview-segments"
MAX_SHEAR_DEG = 0.05
# The label map of a study folder, as `medview train` reads one (ai.training.data) and the
# demo generator writes one: labels.* beside a `series/` folder, an image.* file, or the
# DICOM files themselves.
STUDY_LABEL_NAMES = ("labels.nii.gz", "labels.nii", "labels.nrrd", "labels.mha")
STUDY_SERIES_FOLDER = "series"


def study_label_file(folder: Path) -> Path | None:
    """The study folder's label map, by STUDY_LABEL_NAMES, or None."""
    return next((folder / n for n in STUDY_LABEL_NAMES if (folder / n).is_file()), None)


def labels_beside(source: str | Path) -> Path | None:
    """The label map a study folder keeps beside an image, or None: `source` is one file of
    a DICOM series or an image file. The folder is the file's own, or the one above a
    folder named `series` (the layouts `medview train` reads)."""
    folder = Path(source).parent
    found = study_label_file(folder)
    if found is None and folder.name == STUDY_SERIES_FOLDER:
        found = study_label_file(folder.parent)
    if found is not None and found.resolve() == Path(source).resolve():
        return None  # the image itself (a label map opened as an image)
    return found


def sidecar_path(path: str | Path) -> Path:
    p = Path(path)
    name = p.name
    for suffix in sorted(LABEL_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(f"{name}.segments.json")


def export_label_file(label_map: LabelMap, affine: np.ndarray, path: str | Path) -> list[str]:
    """Write the label map (uint8) on the grid `affine` as NIfTI or NRRD, with the segment
    table beside it. Returns notes for the reader."""
    where = str(path)
    low = where.lower()
    if not low.endswith(LABEL_SUFFIXES):
        raise UnsupportedInputError(
            where, "is not a label file type MedView writes (.nii.gz, .nii, .nrrd)"
        )
    if low.endswith((".nii", ".nii.gz")) and geometry.shear_angle_deg(affine) > MAX_SHEAR_DEG:
        raise UnsupportedInputError(
            where,
            f"cannot hold this series' grid, tilted by "
            f"{geometry.shear_angle_deg(affine):.1f}°, without "
            "resampling the labels; save it as .nrrd instead",
        )
    warnings = write_volume(
        Volume(label_map.array, np.asarray(affine, float), VolumeMetadata()), path
    )
    write_segment_table(path, label_map.segments)
    return [w.message for w in warnings]


def write_segment_table(path: str | Path, segments: dict[int, Segment]) -> None:
    """Write the segment table beside the label file `path`: without it a label map is only
    numbers, and whoever reads it next (the viewer, a fine-tune) would guess what 1 means."""
    doc = {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "segments": [segments[v].to_dict() for v in sorted(segments)],
    }
    atomic_write_text(sidecar_path(path), json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def segment_names(path: str | Path) -> dict[int, str]:
    """Value -> name from the segment table beside a label file; {} when there is none or it
    cannot be read (the values then mean the base model's labels)."""
    segments, notes = _sidecar_segments(Path(path), [])
    return {} if notes else {v: s.name for v, s in segments.items()}


def _sidecar_segments(path: Path, values: list[int]) -> tuple[dict[int, Segment], list[str]]:
    side = sidecar_path(path)
    segments = {v: segment_for(v, f"Segment {v}") for v in values}
    if not side.exists():
        return segments, []
    try:
        doc = json.loads(side.read_text("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
            raise ValueError("it is not a MedView segment table")
        for entry in doc.get("segments", []):
            seg = Segment.from_dict(entry, side.name)
            segments[seg.value] = seg
    except (OSError, UnicodeDecodeError, ValueError, InvalidInputError) as err:
        return segments, [
            f"The segment names in {side.name} could not be read ({err}); "
            "the segments are called Segment 1, Segment 2, …"
        ]
    return segments, []


def import_label_file(path: str | Path, targets: Sequence[LabelTarget]) -> ImportedLabels:
    """A NIfTI / NRRD label map made elsewhere, on the open series whose grid it is."""
    where = str(path)
    volume = read_image(path)
    array = volume.array
    if array.ndim != 3:
        raise UnsupportedInputError(where, "holds colour or vector voxels, not labels")
    if array.dtype.kind == "f" and not (
        np.all(np.isfinite(array)) and np.array_equal(array, np.rint(array))
    ):
        raise InvalidInputError(
            where, "holds fractional values, not labels; threshold it into a label map first"
        )
    if array.size and (array.min() < 0 or array.max() > 255):
        raise UnsupportedInputError(
            where,
            f"holds label values {array.min():g} to {array.max():g}; MedView keeps labels 0 to 255",
        )
    target = match_grid(where, array.shape, volume.affine, targets)
    labels = np.ascontiguousarray(array.astype(np.uint8))
    values = sorted(set(np.unique(labels).tolist()) - {0})
    segments, notes = _sidecar_segments(Path(path), values)
    return ImportedLabels(target.series_key, LabelMap(labels, segments, target.series_key), notes)

"""Label map files as jobs: export to DICOM SEG or NIfTI / NRRD, and import of either, run
off the GUI thread (a SEG of a 300-slice series takes seconds to write or read).

The export takes a copy of the label map made on the GUI thread, so the reader paints on
while it is written and the file holds the labels as they were when they asked. Both wrap
io.label_seg and io.label_files; refusals are their MedviewError sentences."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np

from medview.core.jobs import JobContext, Progress
from medview.core.labels import LabelMap
from medview.core.series import SeriesInfo
from medview.io.labels.files import LABEL_SUFFIXES, export_label_file, import_label_file
from medview.io.labels.match import ImportedLabels, LabelTarget
from medview.io.labels.seg import export_seg, import_seg

SEG, NIFTI = "seg", "nifti"


def is_label_file(path: str | Path) -> bool:
    """NIfTI / NRRD by name; anything else is read as a DICOM SEG."""
    return str(path).lower().endswith(LABEL_SUFFIXES)


def export_labels_job(
    kind: str,
    label_map: LabelMap,
    path: str | Path,
    ctx: JobContext,
    series: SeriesInfo | None = None,
    affine: np.ndarray | None = None,
) -> Generator[Progress, None, list[str]]:
    """Write `label_map` as a DICOM SEG of `series` (kind "seg") or a NIfTI / NRRD label
    file on `affine` ("nifti"); returns the notes for the reader."""
    yield Progress(-1.0, "writing the segmentation")
    ctx.cancel.raise_if_cancelled()
    if kind == SEG:
        if series is None:
            raise ValueError("a DICOM SEG export needs the DICOM series")
        return export_seg(label_map, series, path)
    if affine is None:
        raise ValueError("a label file export needs the volume's affine")
    return export_label_file(label_map, affine, path)


def import_labels_job(
    path: str | Path, targets: Sequence[LabelTarget], ctx: JobContext
) -> Generator[Progress, None, ImportedLabels]:
    """Read a DICOM SEG or a label file made elsewhere onto the target it fits."""
    yield Progress(-1.0, "reading the segmentation")
    ctx.cancel.raise_if_cancelled()
    if is_label_file(path):
        return import_label_file(path, targets)
    return import_seg(path, targets)

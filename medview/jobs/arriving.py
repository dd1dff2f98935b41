"""A series still arriving from a PACS, slice by slice: where each file goes along the series,
read from its header alone (about a millisecond, so ordering 300 arriving files costs the
retrieval little), and one file's image, read only when the reader looks at that slice."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np

from medview.core.jobs import JobContext, Progress
from medview.core.series import SeriesInfo
from medview.jobs.studies import read_preview

_ORDER_TAGS = ["ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber"]


def slice_order(path: str | Path) -> float | None:
    """The file's place along its series: its position along the slice normal, else its
    instance number; None when it has neither or is not DICOM (it goes last)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_ORDER_TAGS)
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            normal = np.cross(iop[:3], iop[3:])
            return float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient]))
        if ds.get("InstanceNumber") is not None:
            return float(ds.InstanceNumber)
    except (OSError, ValueError, TypeError, pydicom.errors.InvalidDicomError):
        pass
    return None


def order_job(
    paths: Sequence[str], ctx: JobContext
) -> Generator[Progress, None, list[tuple[str, float | None]]]:
    """Each path with its slice_order."""
    yield Progress(-1, "")
    out = []
    for p in paths:
        ctx.cancel.raise_if_cancelled()
        out.append((p, slice_order(p)))
    return out


def image_job(
    path: str, ctx: JobContext
) -> Generator[Progress, None, tuple[str, tuple[SeriesInfo, np.ndarray] | None]]:
    """The file's path with its one slice (as jobs.studies.read_preview: None when it is not
    a single-frame image)."""
    yield Progress(-1, "")
    return path, read_preview(Path(path))

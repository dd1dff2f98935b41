"""Opening studies: scan paths into series, load one series into a Volume."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.core.jobs import JobContext, Progress
from medview.core.series import ScanResult, SeriesInfo
from medview.core.volume import Volume


@dataclass(frozen=True)
class FirstSlice:
    """Emitted while a series loads: one slice is in and can be shown already."""

    series_key: str
    index: int
    image: np.ndarray


def scan_job(paths: Sequence[str | Path], ctx: JobContext
             ) -> Generator[Progress, None, ScanResult]:
    from medview.io.dicom_index import scan

    yield Progress(0.0, "looking for studies")
    return scan(paths, progress=ctx.progress, cancel=ctx.cancel)


def load_job(series: SeriesInfo, ctx: JobContext, first_index: int | None = None
             ) -> Generator[Progress, None, Volume]:
    """Load a series; the first slice read (the middle one unless told) is emitted as
    FirstSlice so the viewer can draw it before the rest is in."""
    from medview.io.dicom_volume import load_series

    yield Progress(0.0, f"loading {series.description or series.series_instance_uid}")
    first = len(series.slices) // 2 if first_index is None else first_index
    sent = False

    def on_slice(i: int, image: np.ndarray) -> None:
        nonlocal sent
        if not sent:
            sent = True
            ctx.emit(FirstSlice(series.key, i, image.copy()))

    return load_series(series, progress=ctx.progress, cancel=ctx.cancel, on_slice=on_slice,
                       first_index=first)


def open_image_job(path: str | Path, ctx: JobContext) -> Generator[Progress, None, Volume]:
    """Open a NIfTI / NRRD / MHA file as a volume."""
    from medview.io.image_files import read_image

    yield Progress(0.0, f"reading {Path(path).name}")
    return read_image(path)

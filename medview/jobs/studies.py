"""Opening studies: scan paths into series, load one series into a Volume, make series
thumbnails."""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medview.core.errors import MedviewError
from medview.core.jobs import JobContext, Progress
from medview.core.series import ScanResult, SeriesInfo
from medview.core.volume import Volume
from medview.core.windowing import colour_window, default_window


@dataclass(frozen=True)
class FirstSlice:
    """Emitted while a series loads: one slice is in and can be shown already."""

    series_key: str
    index: int
    image: np.ndarray


def scan_job(paths: Sequence[str | Path], ctx: JobContext) -> Generator[Progress, None, ScanResult]:
    from medview.io.dicom.index import scan

    yield Progress(0.0, "looking for studies")
    return scan(paths, progress=ctx.progress, cancel=ctx.cancel)


def load_job(
    series: SeriesInfo, ctx: JobContext, first_index: int | None = None
) -> Generator[Progress, None, Volume]:
    """Load a series; the first slice read (the middle one unless told) is emitted as
    FirstSlice so the viewer can draw it before the rest is in."""
    from medview.io.dicom.volume import load_series

    yield Progress(0.0, f"loading {series.description or series.series_instance_uid}")
    first = len(series.slices) // 2 if first_index is None else first_index
    sent = False

    def on_slice(i: int, image: np.ndarray) -> None:
        nonlocal sent
        if not sent:
            sent = True
            ctx.emit(FirstSlice(series.key, i, image.copy()))

    return load_series(
        series, progress=ctx.progress, cancel=ctx.cancel, on_slice=on_slice, first_index=first
    )


def open_image_job(path: str | Path, ctx: JobContext) -> Generator[Progress, None, Volume]:
    """Open a NIfTI / NRRD / MHA file as a volume."""
    from medview.io.image_files import read_image

    yield Progress(0.0, f"reading {Path(path).name}")
    return read_image(path)


def preview_file(paths: Sequence[str | Path]) -> Path | None:
    """The one file whose image can be drawn before the scan of `paths` is done: the file
    given, or the middle file (by name) directly in the one folder given. None for several
    paths, image files, zips and DICOMDIRs, which the scan alone sorts out."""
    from medview.io.image_files import is_image_file

    if len(paths) != 1:
        return None
    path = Path(paths[0]).expanduser()
    if path.is_dir():
        try:
            with os.scandir(path) as entries:
                names = sorted(
                    e.name for e in entries if e.is_file() and not e.name.startswith(".")
                )
        except OSError:
            return None
        names = [n for n in names if n.upper() != "DICOMDIR"]
        path = path / names[len(names) // 2] if names else path
    if not path.is_file() or path.name.upper() == "DICOMDIR" or is_image_file(path):
        return None
    return None if path.suffix.lower() == ".zip" else path


def read_preview(path: Path) -> tuple[SeriesInfo, np.ndarray] | None:
    """One single-frame DICOM image file as the series of its own slice and that slice,
    for the loading page while the whole study is scanned; None for anything else (the
    scan that follows says what is wrong with it)."""
    from medview.io.dicom.index import scan
    from medview.io.dicom.volume import load_series

    try:
        result = scan([path])
        if len(result.series) != 1 or len(result.series[0].slices) != 1:
            return None
        series = result.series[0]
        return series, load_series(series).array[0]
    except (MedviewError, MemoryError, OSError):
        return None


@dataclass(frozen=True)
class Thumbnail:
    """Emitted by thumbnails_job: a series' middle slice as display-ready uint8, in the
    array's (row, col) order (the viewer turns it to its plane), at most `size` a side."""

    series_key: str
    image: np.ndarray


def _thumbnail(series: SeriesInfo, size: int) -> np.ndarray | None:
    from medview.io.dicom.volume import load_series

    frames = [f for f in series.slices if f is not None]
    if not frames:
        return None
    one = replace(series, slices=[frames[len(frames) // 2]], warnings=[])
    image = load_series(one).array[0]
    step = max(1, -(-max(image.shape[:2]) // size))
    image = image[::step, ::step]
    if image.ndim == 3 and image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    lo, hi = (
        colour_window(image)
        if image.ndim == 3
        else default_window(series.modality, series.windows, image)
    ).bounds
    grey = np.clip((image.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255)
    if series.photometric == "MONOCHROME1" and image.ndim == 2:
        grey = 255 - grey
    return grey.astype(np.uint8)


def thumbnails_job(
    series_list: Sequence[SeriesInfo], ctx: JobContext, size: int = 96
) -> Generator[Progress, None, int]:
    """Decode the middle slice of each series, in the file's window (or the modality's
    default), and emit it as a Thumbnail. A series that cannot be decoded is skipped: its
    load will say why. Returns how many were made."""
    made = 0
    for k, series in enumerate(series_list):
        yield Progress(k / max(len(series_list), 1), "making thumbnails")
        try:
            image = _thumbnail(series, size)
        except (MedviewError, MemoryError):
            continue
        if image is not None:
            ctx.emit(Thumbnail(series.key, image))
            made += 1
    return made

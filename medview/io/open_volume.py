"""One call from a path to a Volume, for commands that take "a study or an image file"."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medview.core.errors import InvalidInputError
from medview.core.jobs import CancelToken, ProgressCallback
from medview.core.series import ScanResult, SeriesInfo
from medview.core.volume import Volume


def pick_series(result: ScanResult, where: str, series_key: str | None) -> SeriesInfo:
    """The series a command should use: the one named, or the only one there is."""
    all_series = result.series
    if series_key:
        found = result.find_series(series_key)
        if found is None:
            raise InvalidInputError(
                where, f"holds no series {series_key}; `medview info` lists the series it holds"
            )
        return found
    if not all_series:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in result.skipped[:3])
        raise InvalidInputError(
            where, "holds no image series" + (f" ({reasons})" if reasons else "")
        )
    if len(all_series) > 1:
        raise InvalidInputError(
            where,
            f"holds {len(all_series)} series; choose one with --series UID (see `medview info`)",
        )
    return all_series[0]


def load_volume(
    paths: Sequence[str | Path],
    series_key: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[Volume, SeriesInfo | None]:
    """Read an image file (NIfTI, NRRD, MHA) or scan DICOM and load one series."""
    return load_found(paths, find_series(paths, series_key, cancel), progress, cancel)


def find_series(
    paths: Sequence[str | Path], series_key: str | None = None, cancel: CancelToken | None = None
) -> SeriesInfo | None:
    """The DICOM series `load_volume` would load, from headers only (so a command can check
    it, e.g. its modality, before reading pixels); None when `paths` is one image file."""
    from medview.io import image_files

    if len(paths) == 1 and image_files.is_image_file(paths[0]) and Path(paths[0]).is_file():
        return None
    from medview.io.dicom.index import scan

    return pick_series(scan(paths, progress=None, cancel=cancel), str(paths[0]), series_key)


def load_found(
    paths: Sequence[str | Path],
    series: SeriesInfo | None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[Volume, SeriesInfo | None]:
    """Load what `find_series` found: the series, or the image file when it found none."""
    if series is None:
        from medview.io import image_files

        return image_files.read_image(paths[0]), None
    from medview.io.dicom.volume import load_series

    return load_series(series, progress=progress, cancel=cancel), series

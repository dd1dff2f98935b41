"""Which open series a label file made elsewhere belongs to: by the series it references,
else by geometry (the same grid: shape, and an affine whose voxel centres agree within a
fraction of a voxel). A label map is only ever put on a grid it fits exactly — never
resampled — and a file that fits none is refused in one sentence naming it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medview.core.errors import InvalidInputError
from medview.core.labels import LabelMap
from medview.core.series import SeriesInfo
from medview.core.volume import Volume

GRID_TOLERANCE_VOXELS = 0.05
NO_SERIES_OPEN = "cannot be imported while no series is open; open the series it was drawn on"


@dataclass(frozen=True)
class LabelTarget:
    """An open series a label map may be put on."""

    series_key: str
    shape: tuple[int, int, int]
    affine: np.ndarray  # (slice, row, col, 1) -> LPS mm
    series_instance_uid: str = ""
    sop_uids: tuple[str | None, ...] = ()  # per slice; None where a slice has no file
    series: SeriesInfo | None = None  # what a DICOM SEG export references

    @classmethod
    def from_series(cls, series: SeriesInfo) -> LabelTarget:
        return cls(
            series.key,
            (len(series.slices), series.rows, series.cols),
            np.asarray(series.affine, float),
            series.series_instance_uid,
            tuple(f.sop_instance_uid if f else None for f in series.slices),
            series,
        )

    @classmethod
    def from_volume(cls, volume: Volume, series_key: str) -> LabelTarget:
        return cls(
            series_key,
            volume.shape,
            np.asarray(volume.affine, float),
            volume.metadata.series_instance_uid,
        )


def corner_distance_voxels(shape: Sequence[int], a: np.ndarray, b: np.ndarray) -> float:
    """How far apart (in voxels of `a`) the two grids put the corners of `shape`: 0 for the
    same grid; a flip or transpose moves some corner by the whole extent."""
    corners = np.array(
        [
            [i, j, k, 1.0]
            for i in (0, shape[0] - 1)
            for j in (0, shape[1] - 1)
            for k in (0, shape[2] - 1)
        ]
    ).T
    moved = np.linalg.inv(a) @ (b @ corners)
    return float(np.abs(moved[:3] - corners[:3]).max())


def fits(shape: Sequence[int], affine: np.ndarray, target: LabelTarget) -> bool:
    return (
        tuple(int(s) for s in shape) == tuple(target.shape)
        and corner_distance_voxels(target.shape, target.affine, affine) <= GRID_TOLERANCE_VOXELS
    )


def match_grid(
    path: str, shape: Sequence[int], affine: np.ndarray, targets: Sequence[LabelTarget]
) -> LabelTarget:
    """The open series whose grid the label map's is, else InvalidInputError."""
    for target in targets:
        if fits(shape, affine, target):
            return target
    if not targets:
        raise InvalidInputError(path, NO_SERIES_OPEN)
    sizes = ", ".join(sorted({"x".join(map(str, t.shape)) for t in targets}))
    raise InvalidInputError(
        path,
        f"fits none of the open series: its grid "
        f"{'x'.join(map(str, shape))} lies elsewhere or has another size "
        f"than theirs ({sizes}); open the series it was drawn on",
    )


@dataclass
class ImportedLabels:
    """A label map made elsewhere, put on one open series' grid."""

    series_key: str
    label_map: LabelMap
    notes: list[str]  # one sentence each: what was done that the reader should know

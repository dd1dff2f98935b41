"""LabelSource: what a stored label map is of — enough to find its images again for
training (UIDs, source files, folder, grid, affine) and nothing that names the patient."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medview.core.series import SeriesInfo
from medview.core.volume import Volume
from medview.io.patient_key import patient_key


@dataclass(frozen=True)
class LabelSource:
    """What is needed to find a label map's images again (for training): UIDs, the source
    files one per slice ("" for a slice that fills a gap), the folder, grid and affine.
    `patient_key` is a salted hash of the patient ID (io.patient_key), enough to split
    training data by patient without keeping the ID; label maps saved before the salt keep
    the unsalted one, which io.patient_key.current_key turns into the salted one."""

    series_key: str
    shape: tuple[int, int, int]
    affine: tuple[tuple[float, ...], ...]  # (slice, row, col, 1) -> LPS mm
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    frame_of_reference_uid: str = ""
    modality: str = ""
    series_folder: str = ""
    source_files: tuple[str, ...] = ()
    patient_key: str = ""

    @classmethod
    def from_series(cls, series: SeriesInfo) -> LabelSource:
        files = tuple(str(f.source) if f is not None else "" for f in series.slices)
        folders = {os.path.dirname(f.source.path) for f in series.frames}
        folder = os.path.commonpath(sorted(folders)) if folders else ""
        return cls(
            series.key,
            (len(series.slices), series.rows, series.cols),
            _affine_tuple(series.affine),
            series.study_instance_uid,
            series.series_instance_uid,
            series.frame_of_reference_uid,
            series.modality,
            folder,
            files,
            patient_key(series.patient.id),
        )

    @classmethod
    def from_volume(cls, volume: Volume, series_key: str) -> LabelSource:
        md = volume.metadata
        return cls(
            series_key,
            volume.shape,
            _affine_tuple(volume.affine),
            md.study_instance_uid,
            md.series_instance_uid,
            md.frame_of_reference_uid,
            md.modality,
            md.source,
            (),
            patient_key(md.patient.id),
        )

    @property
    def affine_array(self) -> np.ndarray:
        return np.array(self.affine, float)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LabelSource:
        shape = [int(s) for s in data["shape"]]
        affine = np.array(data["affine"], float)
        if len(shape) != 3 or affine.shape != (4, 4):
            raise ValueError("the shape or affine of the source is not valid")
        depth, rows, cols = shape
        text = {
            k: str(data.get(k, ""))
            for k in (
                "study_instance_uid",
                "series_instance_uid",
                "frame_of_reference_uid",
                "modality",
                "series_folder",
            )
        }
        return cls(
            str(data["series_key"]),
            (depth, rows, cols),
            _affine_tuple(affine),
            text["study_instance_uid"],
            text["series_instance_uid"],
            text["frame_of_reference_uid"],
            text["modality"],
            text["series_folder"],
            tuple(str(f) for f in data.get("source_files", ())),
            str(data.get("patient_key", "")),
        )


def _affine_tuple(affine: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(affine, float))

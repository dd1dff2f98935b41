"""The priors of an open series: earlier studies of the same patient among those a scan
found, each with the one series a reader would put beside the open one.

Same patient: the same Patient ID when both studies carry one, else the same name (a study
without either is nobody's prior). A prior is older than the open study by its date; studies
without a date cannot be ordered and are not offered. Of a prior's series the one most like
the open series is chosen: the same modality, then the same plane (the slice normal of its
affine), then the most slices (the thin reconstruction, which pairs the smallest findings)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.core.series import SeriesInfo, StudyInfo


@dataclass(frozen=True)
class Prior:
    study: StudyInfo
    series: SeriesInfo  # the one to compare with


def same_patient(a: StudyInfo | SeriesInfo, b: StudyInfo | SeriesInfo) -> bool:
    pa, pb = a.patient, b.patient
    if pa.id and pb.id:
        return pa.id == pb.id
    return bool(pa.name) and pa.name == pb.name


def priors_of(open_series: SeriesInfo, studies: list[StudyInfo]) -> list[Prior]:
    """The open series' priors among `studies`, newest first."""
    date = open_series.study_date
    if not date:
        return []
    found = [
        Prior(study, best_series(open_series, study.series))
        for study in studies
        if study.study_instance_uid != open_series.study_instance_uid
        and study.series
        and study.study_date
        and study.study_date < date
        and same_patient(study, open_series)
    ]
    return sorted(found, key=lambda p: p.study.study_date, reverse=True)


def _normal(series: SeriesInfo) -> np.ndarray:
    axis = np.asarray(series.affine, float)[:3, 2]
    norm = float(np.linalg.norm(axis))
    return axis / norm if norm else axis


def best_series(open_series: SeriesInfo, candidates: list[SeriesInfo]) -> SeriesInfo:
    """The candidate most like `open_series` (module docstring)."""
    normal = _normal(open_series)

    def likeness(s: SeriesInfo) -> tuple[bool, bool, int]:
        same_plane = abs(float(_normal(s) @ normal)) > 0.9
        return (s.modality == open_series.modality, same_plane, len(s.slices))

    return max(candidates, key=likeness)


def current_study(studies: list[StudyInfo]) -> StudyInfo | None:
    """The study to open first: the newest of the first-listed patient's (the scan lists
    studies oldest first), so its earlier studies are its priors."""
    if not studies:
        return None
    first = studies[0]
    return [s for s in studies if s is first or same_patient(s, first)][-1]

"""viewer.priors: which studies a scan found are priors of the open series (same patient,
earlier date) and which of their series is put beside it."""

import numpy as np

from medview.core.series import PatientInfo, SeriesInfo, StudyInfo
from medview.viewer.priors import best_series, current_study, priors_of

AXIAL = np.eye(4)
CORONAL = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)


def series(uid, study_uid, date, patient, modality="CT", n=10, affine=AXIAL):
    return SeriesInfo(
        study_uid,
        uid,
        modality=modality,
        patient=patient,
        study_date=date,
        slices=[None] * n,
        affine=affine,
    )


def study(uid, date, patient, *members):
    return StudyInfo(uid, study_date=date, patient=patient, series=list(members))


ANN = PatientInfo("DOE^ANN", "P1")
BOB = PatientInfo("DOE^BOB", "P2")


def test_earlier_studies_of_the_same_patient_newest_first():
    now = series("s3", "st3", "20260601", ANN)
    studies = [
        study("st1", "20250101", ANN, series("s1", "st1", "20250101", ANN)),
        study("st2", "20251201", ANN, series("s2", "st2", "20251201", ANN)),
        study("st3", "20260601", ANN, now),
        study("st4", "20260101", BOB, series("s4", "st4", "20260101", BOB)),  # someone else
        study("st5", "20270101", ANN, series("s5", "st5", "20270101", ANN)),  # later
        study("st6", "", ANN, series("s6", "st6", "", ANN)),  # no date: cannot be ordered
    ]
    assert [p.series.series_instance_uid for p in priors_of(now, studies)] == ["s2", "s1"]
    assert current_study(studies[:3]) is studies[2]  # the newest of the first patient


def test_the_patient_is_matched_by_id_else_by_name():
    renamed = PatientInfo("DOE^ANN^MARIE", "P1")
    nameless_id = PatientInfo("DOE^ANN", "")
    nobody = PatientInfo("", "")
    now = series("s9", "st9", "20260601", ANN)
    studies = [
        study("a", "20250101", renamed, series("a1", "a", "20250101", renamed)),
        study("b", "20250201", nameless_id, series("b1", "b", "20250201", nameless_id)),
        study("c", "20250301", nobody, series("c1", "c", "20250301", nobody)),
    ]
    assert {p.study.study_instance_uid for p in priors_of(now, studies)} == {"a", "b"}
    assert priors_of(series("x", "y", "", ANN), studies) == []  # the open one has no date


def test_the_series_most_like_the_open_one():
    now = series("n", "st", "20260601", ANN, n=200)
    candidates = [
        series("mr", "p", "20250101", ANN, modality="MR", n=400),
        series("cor", "p", "20250101", ANN, n=300, affine=CORONAL),
        series("thick", "p", "20250101", ANN, n=60),
        series("thin", "p", "20250101", ANN, n=240),
    ]
    assert best_series(now, candidates).series_instance_uid == "thin"
    assert best_series(now, candidates[:2]).series_instance_uid == "cor"  # CT first

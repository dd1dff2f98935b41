"""The demo generator's follow-up: its own study (UIDs, date), the truth it writes, and bad
month counts refused with one sentence before anything is written."""

import json

import pydicom
import pytest

from medview.core.errors import InvalidInputError
from medview.demo import generate_demo_study


@pytest.mark.parametrize("months", [0, -3, 61, float("nan"), True, "6"])
def test_bad_months_are_one_sentence_and_write_nothing(tmp_path, months):
    with pytest.raises(InvalidInputError, match="follow-up months must be a number"):
        generate_demo_study(tmp_path / "fu", slices=4, follow_up_months=months)
    assert not (tmp_path / "fu").exists()


def test_follow_up_is_a_later_study_of_the_same_patient(tmp_path):
    then = generate_demo_study(tmp_path / "then", seed=2, slices=60)
    now = generate_demo_study(tmp_path / "now", seed=2, slices=60, follow_up_months=12)
    assert now.study_instance_uid != then.study_instance_uid
    assert now.series_instance_uid != then.series_instance_uid
    a = pydicom.dcmread(next(then.series_dir.iterdir()))
    b = pydicom.dcmread(next(now.series_dir.iterdir()))
    assert a.PatientID == b.PatientID and b.StudyDate > a.StudyDate
    # the scan range moved along the table by the truth's shift
    dz = json.loads(now.lesions_json.read_text())["follow_up"]["shift_mm"][1]
    assert float(b.ImagePositionPatient[2]) - float(a.ImagePositionPatient[2]) == pytest.approx(dz)
    truth = json.loads(now.lesions_json.read_text())["follow_up"]
    assert sum(t["baseline_id"] is None for t in truth["lesions"]) == 1
    assert len(truth["gone_baseline_ids"]) == 1
    assert all(t["volume_factor"] > 1 for t in truth["lesions"] if t["baseline_id"])

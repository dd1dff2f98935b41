"""The demo generator's follow-up: its own study (UIDs, date), the truth it writes, and bad
month counts refused with one sentence before anything is written."""

import json
from pathlib import Path

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


def test_medview_demo_opens_a_follow_up_with_its_baseline(tmp_path, monkeypatch, capsys):
    """`medview demo --follow-up-months N` hands the viewer the follow-up and its baseline
    (made too), so the browser offers the baseline as the prior; `--no-gui` lists both."""
    import medview.app
    from medview.cli import main

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    opened = []
    monkeypatch.setattr(
        medview.app, "run_gui", lambda paths, demo=False: opened.append(list(paths)) or 0
    )
    log = ["--log-file", str(tmp_path / "log")]
    assert main([*log, "demo", "--slices", "8", "--follow-up-months", "6"]) == 0
    follow_up, baseline = (pydicom.dcmread(min(Path(p).iterdir())) for p in opened[0])
    assert follow_up.PatientID == baseline.PatientID
    assert follow_up.StudyDate > baseline.StudyDate
    assert main([*log, "demo", "--no-gui", "--slices", "8", "--follow-up-months", "6"]) == 0
    assert capsys.readouterr().out.count("Study ") == 2

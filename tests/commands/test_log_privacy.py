"""The log file of a real command over a folder named after its patient: MedView's debug
lines, a traceback and pydicom's own warning (which quotes the raw value) reach it with
paths relative to the opened folder and no name, ID or absolute path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from dicom_factory import write_ct_series
from pydicom import config
from pydicom.valuerep import validate_value

import medview.commands.info as info
from medview.cli import main
from medview.core import log_privacy


@pytest.fixture(autouse=True)
def _fresh():
    log_privacy.forget_opened()
    yield
    log_privacy.forget_opened()


def test_the_log_holds_no_patient_path_or_value(tmp_path: Path, monkeypatch, capsys) -> None:
    study = tmp_path / "exports" / "DOE^JOHN 1942-03-01"
    written = write_ct_series(study / "CT", n=3, extra={"PatientName": "DOE^JOHN"})
    real_run_info = info.run_info

    def run_info(paths, **kwargs):
        real_run_info(paths, **kwargs)  # the real scan, at debug level
        logging.getLogger("medview.io.dicom.volume").debug("decode failed for %s", written.paths[0])
        validate_value("CS", "doe^john", config.WARN)  # pydicom logs the raw value
        raise RuntimeError(f"cannot read {written.paths[1]}")

    monkeypatch.setattr(info, "run_info", run_info)
    log = tmp_path / "medview.log"
    with pytest.warns(UserWarning, match="Invalid value for VR CS"):
        assert main(["-v", "--log-file", str(log), "info", str(study)]) == 1
    assert "internal error" in capsys.readouterr().err
    text = log.read_text()
    assert "decode failed for CT/IM0000.dcm" in text
    assert "Invalid value for VR CS: '<value>'" in text
    assert "Traceback" in text and "RuntimeError: cannot read CT/IM0001.dcm" in text
    for secret in ("DOE", "doe^john", str(tmp_path)):
        assert secret not in text

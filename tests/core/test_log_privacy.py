"""The log scrubber: paths inside an opened folder become relative to it, the folder itself
"<opened>", the data folder "<data>", any other absolute path "<path>" (code paths stay for
tracebacks), and quoted values '<value>' — whatever logger the record came from."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from medview.core import log_privacy
from medview.core.log_privacy import ScrubbingFormatter, note_opened, scrub


@pytest.fixture(autouse=True)
def _fresh():
    log_privacy.forget_opened()
    yield
    log_privacy.forget_opened()


def test_paths_inside_an_opened_folder_are_relative_to_it(tmp_path: Path) -> None:
    study = tmp_path / "exports" / "DOE^JOHN 1942"
    study.mkdir(parents=True)
    note_opened(study)
    text = scrub(f"reading {study}/CT/IM0001.dcm: bad; folder {study}, zip {study}/a.zip!b")
    assert text == "reading CT/IM0001.dcm: bad; folder <opened>, zip a.zip!b"


def test_a_folder_given_relative_is_scrubbed_as_given_and_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "SMITH_ANNA").mkdir()
    note_opened("SMITH_ANNA")
    assert scrub("SMITH_ANNA/IM1 and SMITH_ANNA") == "IM1 and <opened>"
    assert scrub(f"{tmp_path}/SMITH_ANNA/IM1") == "IM1"
    assert scrub("NOT_SMITH_ANNA/IM1") != "IM1"


def test_other_absolute_paths_are_hidden_but_code_paths_stay(tmp_path: Path) -> None:
    source = Path(log_privacy.__file__)
    text = scrub(
        f'wrote /home/reader/DOE_JOHN.nii.gz; File "{source}", line 3; '
        f"{sys.prefix}/lib/x; /data/medview/labels/1.2.3/map.nii.gz",
        data_folder="/data/medview",
    )
    assert text == (
        f'wrote <path>; File "{source}", line 3; {sys.prefix}/lib/x; <data>/labels/1.2.3/map.nii.gz'
    )


def test_quoted_values_are_hidden() -> None:
    assert (
        scrub("Invalid value for VR PN: 'DOE^JOHN'. Found plugin \"x\"")
        == "Invalid value for VR PN: '<value>'. Found plugin '<value>'"
    )


def test_the_formatter_scrubs_the_message_and_the_traceback(tmp_path: Path) -> None:
    study = tmp_path / "DOE^JOHN"
    note_opened(study)
    try:
        raise ValueError(f"cannot read {study}/IM7 of 'DOE^JOHN'")
    except ValueError:
        record = logging.LogRecord(
            "pydicom", logging.DEBUG, __file__, 1, "at %s", (f"{study}/IM7",), sys.exc_info()
        )
    out = ScrubbingFormatter("%(name)s: %(message)s").format(record)
    assert out.startswith("pydicom: at IM7\nTraceback") and "cannot read IM7 of '<value>'" in out
    assert "DOE" not in out and str(tmp_path) not in out

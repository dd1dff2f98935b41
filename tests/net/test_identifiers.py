"""C-FIND answers read into rows: the fast accessor (raw bytes of the asked-for elements)
gives the same rows as pydicom's conversion for each character set, and falls back to it
where one codec cannot decode the answer."""

from __future__ import annotations

from functools import partial
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from medview.net.dimse import _identifier_value, _text
from medview.net.query import study_row


def _answer(charset: str | list[str], name: str, explicit: bool, declared: bytes = b"") -> Dataset:
    """A study-level identifier as pynetdicom hands it over: decoded from its bytes, every
    element still raw; `declared` replaces the character set in the bytes (same length)."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.PatientName = name
    ds.PatientID = "ID 7"
    ds.StudyDate = "20240102"
    ds.ModalitiesInStudy = ["CT", "SEG"]
    ds.StudyDescription = "Thorax "
    ds.AccessionNumber = ""
    ds.NumberOfStudyRelatedSeries = "3"
    ds.NumberOfStudyRelatedInstances = None
    ds.set_original_encoding(not explicit, True, charset)
    raw = encode(ds, not explicit, True)
    assert raw is not None
    if declared:
        raw = raw.replace(str(charset).encode(), declared)
    return decode(BytesIO(raw), not explicit, True)


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize(
    ("charset", "name"),
    [
        ("", "Doe^John"),
        ("ISO_IR 100", "Müller^Jürgen"),
        ("ISO_IR 192", "Łukasz^Żółć=ウカシュ"),
        (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎"),
    ],
)
def test_fast_rows_are_pydicoms_rows(charset, name, explicit):
    fast = study_row(_identifier_value(_answer(charset, name, explicit)), "pacs")
    slow = study_row(partial(_text, _answer(charset, name, explicit)), "pacs")
    assert fast == slow
    assert fast is not None
    assert (fast.patient_name, fast.modalities) == (name, ("CT", "SEG"))
    assert (fast.description, fast.series_count, fast.instance_count) == ("Thorax", 3, None)


def test_bytes_not_in_the_declared_codec_go_through_pydicom():
    """A Latin-1 name in an answer that says UTF-8: pydicom's replacement characters, not a
    failure and not a different text."""
    ds = _answer("ISO_IR 100", "Müller^Jürgen", explicit=False, declared=b"ISO_IR 192")
    with pytest.warns(UserWarning, match="UTF8"):
        name = _identifier_value(ds)("PatientName")
    assert name == "M\ufffdller^J\ufffdrgen"

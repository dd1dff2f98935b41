"""C-FIND answers read into rows: the fast accessor (raw bytes of the asked-for elements)
gives the same rows as pydicom's conversion for each character set, and falls back to it
where one codec cannot decode the answer or the answer holds a sequence of undefined
length."""

from __future__ import annotations

import struct
from functools import partial
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from medview.net.dimse import _answer_value, _text
from medview.net.query import study_row


def _answer(charset: str | list[str], name: str, declared: bytes = b"") -> bytes:
    """A study-level identifier as it comes over the network (Implicit VR Little Endian,
    what net.find_scu proposes); `declared` replaces the character set (same length)."""
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
    ds.set_original_encoding(True, True, charset)
    raw = encode(ds, True, True)
    assert raw is not None
    if declared:
        raw = raw.replace(str(charset).encode(), declared)
    return raw


def _pydicom(raw: bytes) -> Dataset:
    return decode(BytesIO(raw), True, True)


@pytest.mark.parametrize(
    ("charset", "name"),
    [
        ("", "Doe^John"),
        ("ISO_IR 100", "Müller^Jürgen"),
        ("ISO_IR 192", "Łukasz^Żółć=ウカシュ"),
        (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎"),
    ],
)
def test_fast_rows_are_pydicoms_rows(charset, name):
    fast = study_row(_answer_value(_answer(charset, name)), "pacs")
    slow = study_row(partial(_text, _pydicom(_answer(charset, name))), "pacs")
    assert fast == slow
    assert fast is not None
    assert (fast.patient_name, fast.modalities) == (name, ("CT", "SEG"))
    assert (fast.description, fast.series_count, fast.instance_count) == ("Thorax", 3, None)


def test_bytes_not_in_the_declared_codec_go_through_pydicom():
    """A Latin-1 name in an answer that says UTF-8: pydicom's replacement characters, not a
    failure and not a different text."""
    raw = _answer("ISO_IR 100", "Müller^Jürgen", declared=b"ISO_IR 192")
    with pytest.warns(UserWarning, match="UTF8"):
        name = _answer_value(raw)("PatientName")
    assert name == "M\ufffdller^J\ufffdrgen"


def test_a_sequence_of_undefined_length_goes_through_pydicom():
    """(0040,0275) Request Attributes Sequence, undefined length, after the other elements."""
    element = struct.Struct("<HHL")
    sequence = b"".join(
        (
            element.pack(0x0040, 0x0275, 0xFFFFFFFF),
            element.pack(0xFFFE, 0xE000, 0xFFFFFFFF),
            element.pack(0x0040, 0x1001, 2) + b"X ",
            element.pack(0xFFFE, 0xE00D, 0),
            element.pack(0xFFFE, 0xE0DD, 0),
        )
    )
    raw = _answer("ISO_IR 100", "Müller^Jürgen") + sequence
    row = study_row(_answer_value(raw), "pacs")
    assert row is not None and row.patient_name == "Müller^Jürgen"
    assert _answer_value(raw[:-3])("PatientName") == ""  # cut short: nothing, not a failure

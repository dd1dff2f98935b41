"""The tag rows of one file: what a reader sees in the tag browser, read without changing
anything and without reading the pixels."""

from __future__ import annotations

import hashlib

import pytest
from dicom_factory import copy_with, watch_files, write_ct_series, zip_folder
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from medview.core.errors import MedviewError
from medview.core.series import SourceRef
from medview.io.dicom.tags import MAX_VALUE_CHARS, TagRow, filter_rows, read_tags


def by_keyword(rows: list[TagRow]) -> dict[str, TagRow]:
    return {r.keyword.strip(): r for r in rows}


@pytest.fixture
def ct_file(tmp_path):
    return write_ct_series(tmp_path / "s", n=2, rows=24, cols=32).paths[0]


def test_rows_show_tag_keyword_vr_and_value_and_pixels_as_size(ct_file):
    rows = read_tags(str(ct_file))
    kw = by_keyword(rows)
    assert kw["PatientName"] == TagRow("(0010,0010)", "PatientName", "PN", "Synthetic^Patient")
    assert kw["Modality"].value == "CT"
    assert kw["TransferSyntaxUID"].tag == "(0002,0010)"  # file meta first
    assert rows[0].tag.startswith("(0002,")
    assert kw["PixelSpacing"].value == "0.7\\0.8"
    assert kw["PixelData"].value == f"<{24 * 32 * 2} bytes>"
    assert kw["PixelData"].tag == "(7FE0,0010)"
    assert [r.tag for r in rows if r.tag and not r.tag.startswith("(0002")] == sorted(
        r.tag for r in rows if r.tag and not r.tag.startswith("(0002")
    )


def test_reading_tags_never_writes_and_leaves_the_file_identical(ct_file):
    before = hashlib.sha256(ct_file.read_bytes()).hexdigest()
    mtime = ct_file.stat().st_mtime_ns
    with watch_files() as log:
        read_tags(str(ct_file))
    assert log.writes == []
    assert hashlib.sha256(ct_file.read_bytes()).hexdigest() == before
    assert ct_file.stat().st_mtime_ns == mtime


def test_sequences_are_flattened_with_indentation(ct_file, tmp_path):
    item = Dataset()
    item.CodeValue, item.CodeMeaning = "T-D3000", "Chest"
    item2 = Dataset()
    item2.CodeValue = "X"
    out = copy_with(
        ct_file, tmp_path / "seq.dcm", AnatomicRegionSequence=DicomSequence([item, item2])
    )
    rows = read_tags(str(out))
    i = next(k for k, r in enumerate(rows) if r.keyword == "AnatomicRegionSequence")
    assert rows[i].vr == "SQ" and rows[i].value == "2 item(s)" and rows[i].depth == 0
    assert rows[i + 1].keyword == "> Item 1" and rows[i + 1].depth == 1
    assert rows[i + 2].keyword == "CodeValue" and rows[i + 2].depth == 2
    assert rows[i + 2].label == "        CodeValue" and rows[i + 2].value == "T-D3000"
    assert rows[i + 3].keyword == "CodeMeaning" and rows[i + 3].value == "Chest"
    assert rows[i + 4].keyword == "> Item 2"


def test_long_values_are_truncated(ct_file, tmp_path):
    out = copy_with(ct_file, tmp_path / "long.dcm", ImageComments="x" * 1000)
    value = by_keyword(read_tags(str(out)))["ImageComments"].value
    assert len(value) == MAX_VALUE_CHARS and value.endswith("…")


def test_zip_member_is_read_through_the_archive(ct_file, tmp_path):
    z = zip_folder(ct_file.parent, tmp_path / "s.zip")
    rows = read_tags(SourceRef(str(z), ct_file.name))
    assert by_keyword(rows)["Modality"].value == "CT"


def test_unreadable_file_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    with pytest.raises(MedviewError, match="not a DICOM file"):
        read_tags(str(bad))
    with pytest.raises(MedviewError, match="moved or deleted"):
        read_tags(str(tmp_path / "gone.dcm"))


@pytest.mark.parametrize(
    "query, expected",
    [
        ("(0010,0010)", ["PatientName"]),
        ("0010,0010", ["PatientName"]),
        ("00100010", ["PatientName"]),
        ("patientname", ["PatientName"]),
        ("", None),
    ],
)
def test_filter_by_tag_number_or_keyword(ct_file, query, expected):
    rows = read_tags(str(ct_file))
    got = [r.keyword for r in filter_rows(rows, query)]
    assert got == ([r.keyword for r in rows] if expected is None else expected)


def test_filter_by_keyword_substring(ct_file):
    got = {r.keyword for r in filter_rows(read_tags(str(ct_file)), "slice")}
    assert {"SliceThickness", "SliceLocation"} <= got
    assert "PatientName" not in got

"""The DICOM tag browser: the tags of the current image, searchable by tag number or keyword,
following the slice with at most one header read per 100 ms."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicom_factory import write_ct_series
from PySide6 import QtCore
from PySide6.QtTest import QTest

from medview.core.series import SourceRef
from medview.core.volume import Volume
from medview.io.image_files import write_volume
from medview.ui.panels.tag_browser import THROTTLE_MS, TagBrowser
from medview.viewer.planes import Plane
from tests.ui.main_window_fixtures import open_and_wait

Qt = QtCore.Qt


@pytest.fixture
def tags(qtbot):
    t = TagBrowser()
    qtbot.addWidget(t)
    t.resize(600, 500)
    t.show()
    qtbot.waitExposed(t)
    return t


@pytest.fixture
def series(tmp_path):
    return write_ct_series(tmp_path / "s", n=6)


def keywords(t: TagBrowser) -> list[str]:
    return [r.keyword.strip() for r in t.rows]


def test_shows_the_tags_of_a_file_and_searches_by_tag_or_keyword(qtbot, tags, series):
    tags.set_source(SourceRef(str(series.paths[2])))
    qtbot.waitUntil(lambda: len(tags.rows) > 20, timeout=2000)
    assert tags.model.rowCount() == len(tags.rows)
    index = tags.model.index(0, 0)
    assert tags.model.data(index) == "(0002,0000)"
    assert series.paths[2].name in tags.status.text()
    for query in ("(0010,0010)", "0010,0010", "PatientName", "patientname"):
        tags.search.clear()
        QTest.keyClicks(tags.search, query)  # typed, as a reader would
        assert keywords(tags) == ["PatientName"], query
    tags.search.setText("slice")
    assert {"SliceThickness", "SliceLocation"} <= set(keywords(tags))
    assert "PatientName" not in keywords(tags)
    tags.search.clear()
    assert len(tags.rows) > 20


def test_reads_at_most_once_per_throttle_period(qtbot, tags, series):
    for p in series.paths:  # a fast scroll through six slices
        tags.set_source(SourceRef(str(p)))
    qtbot.wait(THROTTLE_MS * 3)
    assert tags.reads == 1
    instance = next(r for r in tags.rows if r.keyword == "InstanceNumber").value
    assert instance == str(pydicom.dcmread(series.paths[-1]).InstanceNumber)
    tags.set_source(SourceRef(str(series.paths[-1])))  # same file again: no read
    qtbot.wait(THROTTLE_MS * 2)
    assert tags.reads == 1


def test_no_file_shows_why(qtbot, tags):
    tags.set_source(None, "Slice 4 fills a gap in the series; it has no file.")
    qtbot.waitUntil(lambda: "gap" in tags.status.text(), timeout=1000)
    assert tags.rows == []


def test_a_vanished_file_is_one_sentence(qtbot, tags, tmp_path):
    tags.set_source(SourceRef(str(tmp_path / "gone.dcm")))
    qtbot.waitUntil(lambda: "moved or deleted" in tags.status.text(), timeout=1000)


def test_follows_the_slice_in_the_main_window(qtbot, window, series):
    open_and_wait(qtbot, window, [str(series.paths[0].parent)])
    window.dock("Tags").raise_()
    qtbot.waitUntil(lambda: window.tags.isVisible() and bool(window.tags.rows), timeout=2000)

    def shown_sop() -> str:
        return next(r for r in window.tags.rows if r.keyword == "SOPInstanceUID").value

    def file_sop(index: int) -> str:
        return str(pydicom.dcmread(window.series.slices[index].source.path).SOPInstanceUID)

    axial = window.grid.view(Plane.AXIAL)
    start = window.state.slice_index(Plane.AXIAL)
    assert shown_sop() == file_sop(start)
    axial.setFocus()
    QTest.keyClick(axial, Qt.Key.Key_Down)
    assert window.state.slice_index(Plane.AXIAL) == start + 1
    qtbot.waitUntil(lambda: shown_sop() == file_sop(start + 1), timeout=2000)


def test_a_gap_slice_and_an_image_file_say_they_have_no_tags(qtbot, window, tmp_path):
    write_ct_series(tmp_path / "g", n=6, drop=[2])
    open_and_wait(qtbot, window, [str(tmp_path / "g")])
    window.dock("Tags").raise_()
    window.state.set_slice(Plane.AXIAL, 2)
    qtbot.waitUntil(lambda: "fills a gap" in window.tags.status.text(), timeout=2000)
    nifti = tmp_path / "v.nii.gz"
    write_volume(Volume(np.zeros((4, 5, 6), np.int16), np.eye(4)), nifti)
    open_and_wait(qtbot, window, [str(nifti)])
    assert window.series is None and window.state.volume.shape == (4, 5, 6)
    qtbot.waitUntil(lambda: "no DICOM tags" in window.tags.status.text(), timeout=2000)
    assert window.tags.rows == []

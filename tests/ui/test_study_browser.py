"""The study browser: patient / study / series tree with counts and thumbnails, loading a
series with a real double-click or Enter."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from dicom_factory import write_ct_series
from PySide6 import QtCore
from PySide6.QtTest import QTest

from medview.core.jobs import CancelToken, JobContext
from medview.io.dicom.index import scan
from medview.jobs import studies
from medview.ui.panels.study_browser import StudyBrowser, patient_text
from tests.ui.main_window_fixtures import (
    LOAD_TIMEOUT_MS,
    open_and_wait,
)

Qt = QtCore.Qt


@pytest.fixture
def browser(qtbot):
    b = StudyBrowser()
    qtbot.addWidget(b)
    b.resize(420, 500)
    b.show()
    qtbot.waitExposed(b)
    return b


def _rows(browser: StudyBrowser) -> list[tuple[int, list[str]]]:
    """(depth, column texts) of every row, in display order."""
    out = []

    def walk(item, depth):
        out.append((depth, [item.text(c) for c in range(4)]))
        for i in range(item.childCount()):
            walk(item.child(i), depth + 1)

    for i in range(browser.tree.topLevelItemCount()):
        walk(browser.tree.topLevelItem(i), 0)
    return out


def test_tree_groups_patient_study_series_with_modality_and_counts(browser, two_series):
    folder, a, _ = two_series
    result = scan([folder])
    browser.set_contents(result, [])
    rows = _rows(browser)
    assert rows[0] == (0, ["Synthetic, Patient  [SYN001]", "", "", ""])
    assert rows[1][0] == 1 and rows[1][1][0].startswith("2024-01-31")
    assert rows[2] == (2, ["1: Chest 1 mm", "CT", "8", ""])
    assert rows[3] == (2, ["2: Abdomen 2 mm", "CT", "6", ""])
    assert "8 x 24 x 32" in browser.item(a.series_uid).toolTip(0)


def test_patient_names_read_as_people_write_them():
    assert patient_text("DOE^JOHN^A", "123") == "DOE, JOHN A  [123]"
    assert patient_text("", "") == "(no name)"
    assert patient_text("Yamada^Tarou=山田^太郎", "") == "Yamada, Tarou"


def _item_point(browser, key):
    rect = browser.tree.visualItemRect(browser.item(key))
    return rect.center()


def double_click(browser, key) -> None:
    """What a mouse sends for a double-click: press, release, double-click, release."""
    viewport, point = browser.tree.viewport(), _item_point(browser, key)
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=point)
    QTest.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=point)


def test_double_click_and_enter_activate_a_series(qtbot, browser, two_series):
    folder, a, b = two_series
    browser.set_contents(scan([folder]), [])
    got = []
    browser.activated.connect(got.append)
    double_click(browser, b.series_uid)
    assert [s.key for s in got] == [b.series_uid]
    browser.tree.setCurrentItem(browser.item(a.series_uid))
    browser.tree.setFocus()
    QTest.keyClick(browser.tree, Qt.Key.Key_Return)
    assert [s.key for s in got] == [b.series_uid, a.series_uid]


def test_image_files_get_rows_that_activate_with_their_path(qtbot, browser, tmp_path):
    path = str(tmp_path / "brain.nii.gz")
    browser.set_contents(None, [path])
    assert _rows(browser) == [(0, ["Image files", "", "", ""]), (1, ["brain.nii.gz", "", "", ""])]
    got = []
    browser.activated.connect(got.append)
    browser.tree.setCurrentItem(browser.item(path))
    browser.tree.setFocus()
    QTest.keyClick(browser.tree, Qt.Key.Key_Enter)
    assert got == [path]


def test_thumbnail_is_turned_and_scaled_to_the_physical_aspect(browser, tmp_path):
    w = write_ct_series(tmp_path / "s", n=3, rows=20, cols=40, spacing=(1.0, 0.5))
    result = scan([tmp_path / "s"])
    browser.set_contents(result, [])
    key = w.series_uid
    browser.set_thumbnail(key, np.zeros((20, 40), np.uint8))
    assert browser.has_thumbnail(key)
    size = browser.item(key).icon(0).availableSizes()[0]
    assert (size.width(), size.height()) == (64, 64)  # 40 x 0.5 mm = 20 x 1.0 mm: square


def test_double_click_in_the_window_loads_that_series(qtbot, window, two_series):
    folder, a, b = two_series
    open_and_wait(qtbot, window, [str(folder)])
    with qtbot.waitSignal(
        window.image_shown, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda kind: kind == "volume"
    ):
        double_click(window.browser, b.series_uid)
    assert window.series.key == b.series_uid
    np.testing.assert_array_equal(window.state.volume.array, b.expected_array)
    assert window.grid.views[0].image_item.image.shape == (20, 28)
    assert window.browser.item(b.series_uid).font(0).bold()
    assert not window.browser.item(a.series_uid).font(0).bold()


def test_thumbnails_arrive_for_every_series_made_off_the_gui_thread(
    qtbot, window, two_series, monkeypatch
):
    threads = []
    real = studies._thumbnail

    def recording(series, size):
        threads.append(threading.current_thread())
        return real(series, size)

    monkeypatch.setattr(studies, "_thumbnail", recording)
    folder, a, b = two_series
    open_and_wait(qtbot, window, [str(folder)])
    qtbot.waitUntil(
        lambda: all(window.browser.has_thumbnail(s.series_uid) for s in (a, b)),
        timeout=LOAD_TIMEOUT_MS,
    )
    assert threads and threading.main_thread() not in threads


def test_thumbnails_job_skips_a_series_it_cannot_decode(tmp_path):
    w = write_ct_series(tmp_path / "s", n=3)
    result = scan([tmp_path / "s"])
    for p in w.paths:
        p.write_bytes(p.read_bytes()[:-100])
    events = []
    gen = studies.thumbnails_job(result.series, JobContext(CancelToken(), None, events.append))
    with pytest.raises(StopIteration) as stop:
        while True:
            next(gen)
    assert stop.value.value == 0 and events == []


def test_priors_of_the_open_series_are_marked_and_offered(qtbot, browser, tmp_path):
    """Three studies of one patient and one of another: opening the middle one marks only
    the oldest of the same patient as its prior, and its button and right-click ask for it."""
    dates = {"a": "20240105", "b": "20240610", "c": "20250101"}
    for name, date in dates.items():
        write_ct_series(
            tmp_path / name,
            n=3,
            label=name,
            study_uid=f"1.2.3.{len(date)}{ord(name)}",
            extra={"StudyDate": date},
        )
    write_ct_series(
        tmp_path / "other",
        n=3,
        label="other",
        study_uid="1.2.3.9",
        extra={"StudyDate": "20200101", "PatientID": "SOMEONE-ELSE"},
    )
    result = scan([tmp_path])
    browser.set_contents(result, [])
    by_date = {s.study_date: s for s in result.series}
    assert not browser.compare_button.isEnabled()  # nothing open yet
    browser.mark_open(by_date["20240610"].key)
    assert [p.study.study_date for p in browser.priors] == ["20240105"]
    assert browser.compare_button.text() == "Compare with prior of 2024-01-05"
    with qtbot.waitSignal(browser.compare_requested) as asked:
        QTest.mouseClick(browser.compare_button, Qt.MouseButton.LeftButton)
    assert asked.args[0].key == by_date["20240105"].key
    row = browser.item(by_date["20240105"].key)
    assert row.parent().text(0).startswith("Prior, 157 days earlier: 2024-01-05")
    with qtbot.waitSignal(browser.compare_requested) as asked:
        browser.context_menu(row).actions()[0].trigger()
    assert asked.args[0].key == by_date["20240105"].key
    for date in ("20250101", "20240610", "20200101"):  # later, open, another patient
        assert browser.context_menu(browser.item(by_date[date].key)) is None
    browser.mark_open(by_date["20250101"].key)  # the newest: both earlier ones are priors
    assert [p.study.study_date for p in browser.priors] == ["20240610", "20240105"]
    assert not browser.item(by_date["20250101"].key).parent().text(0).startswith("Prior")

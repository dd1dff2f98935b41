"""The prior comparison on the demo study and its 6-month follow-up: scrolling either view
keeps both at the same table position (plus the reader's offset, typed into its box), the
list shows each lesion's known growth, new and gone, and a double-click goes to a finding."""

import json

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from medview.demo import generate_demo_study
from medview.ui.prior_compare import COLUMNS, open_prior_compare
from tests.ui.main_window_fixtures import open_and_wait
from tests.ui.qt_input import wheel

Qt = QtCore.Qt


@pytest.fixture(scope="module")
def demo_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("prior_ui")
    then = generate_demo_study(root / "then", seed=0, slices=90)
    now = generate_demo_study(root / "now", seed=0, slices=90, follow_up_months=6)
    return then, now


@pytest.fixture
def compare(qtbot, demo_pair):
    from medview.io.open_volume import load_volume

    then, now = demo_pair
    current, _ = load_volume([now.series_dir])
    window = open_prior_compare(None, current, now.series_dir, then.series_dir)
    qtbot.addWidget(window)
    qtbot.waitExposed(window)
    return window


def z_of(state) -> float:
    return float(state.cursor_lps()[2])


def test_wheel_in_either_view_keeps_the_table_positions_together(qtbot, compare):
    cur, pri = compare.current_state, compare.prior_state
    # the follow-up scans 9 mm further along the table: other slice numbers, same z
    assert z_of(pri) == pytest.approx(z_of(cur), abs=0.76)
    view = compare.current_view
    wheel(view.viewport(), QtCore.QPoint(100, 100), notches=-7)
    assert z_of(pri) == pytest.approx(z_of(cur), abs=0.76)
    wheel(compare.prior_view.viewport(), QtCore.QPoint(100, 100), notches=4)
    assert z_of(pri) == pytest.approx(z_of(cur), abs=0.76)
    # the reader's offset: the prior lies 6 mm lower than the table says
    box = compare.offset_box
    box.setFocus()
    box.selectAll()
    QTest.keyClicks(box, "6")
    QTest.keyClick(box, Qt.Key.Key_Return)
    assert z_of(pri) == pytest.approx(z_of(cur) - 6.0, abs=0.76)


def test_list_shows_the_known_growth_new_and_gone(qtbot, compare, demo_pair):
    _then, now = demo_pair
    truth = json.loads(now.lesions_json.read_text())["follow_up"]
    table = compare.table
    col = {name: i for i, name in enumerate(COLUMNS)}
    statuses = [table.item(r, col["Status"]).text() for r in range(table.rowCount())]
    assert statuses.count("new") == 1 and statuses.count("gone") == 1
    known = {t["id"]: t for t in truth["lesions"]}
    big = 0
    for r in range(table.rowCount()):
        if table.item(r, col["Status"]).text() != "paired":
            continue
        then_ml = float(table.item(r, col["Vol then ml"]).text())
        now_ml = float(table.item(r, col["Vol now ml"]).text())
        lesion_id = int(table.item(r, col["Finding"]).text().split()[-1])
        factor = known[lesion_id]["volume_factor"]
        change = float(table.item(r, col["Change %"]).text())
        assert change == pytest.approx(100 * (now_ml / then_ml - 1), abs=3)
        if then_ml >= 0.5:  # voxelised volumes of larger lesions: within 5 %
            assert now_ml / then_ml == pytest.approx(factor, rel=0.05)
            big += 1
    assert big >= 2
    assert table.item(0, col["VDT days"]).text() not in ("", "—")


def test_double_click_goes_to_the_finding(qtbot, compare):
    table = compare.table
    row = next(r for r, p in enumerate(compare.pairs) if p.status == "paired")
    rect = table.visualItemRect(table.item(row, 0))
    # as a mouse sends it: a click, then the double-click (Qt pairs it with the press)
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    want = compare.current_state.volume.lps_to_index(compare.pairs[row].now.centre_lps_mm)
    assert np.allclose(compare.current_state.cursor_ijk, np.round(want))
    # the prior followed to its own copy of the finding, within a slice
    prior_z = compare.pairs[row].then.centre_lps_mm[2]
    assert z_of(compare.prior_state) == pytest.approx(prior_z, abs=3.0)


def test_a_folder_without_images_is_one_sentence(qtbot, compare, tmp_path):
    from medview.core.errors import InvalidInputError

    (tmp_path / "empty").mkdir()
    with pytest.raises((InvalidInputError, ValueError)) as info:
        open_prior_compare(None, compare.current_state.volume, tmp_path, tmp_path / "empty")
    assert "\n" not in str(info.value)


def test_file_menu_compares_the_open_study_with_a_prior(qtbot, window, demo_pair, tmp_path):
    then, now = demo_pair
    open_and_wait(qtbot, window, [str(now.series_dir)])
    menus = window.menus
    assert menus.prior_action.isEnabled()
    menus.compare_prior(folder=str(then.series_dir))
    compare = menus.prior_window
    qtbot.addWidget(compare)
    assert sorted(p.status for p in compare.pairs).count("paired") == len(now.lesions) - 1
    assert compare.current_state.volume is window.state.volume
    compare.grab().save(str(tmp_path / "prior.png"))
    (tmp_path / "empty").mkdir()
    menus.compare_prior(folder=str(tmp_path / "empty"))  # no images there: one sentence
    text = window.last_message.text()
    assert "\n" not in text and text

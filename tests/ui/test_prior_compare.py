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
from tests.ui.qt_input import drag, wheel

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


def test_window_level_dragged_in_either_view_is_the_same_in_both(qtbot, compare):
    cur, pri = compare.current_state, compare.prior_state
    before = cur.window
    drag(compare.current_view.viewport(), QtCore.QPoint(200, 200), QtCore.QPoint(260, 150))
    assert cur.window != before and pri.window == cur.window
    drag(compare.prior_view.viewport(), QtCore.QPoint(200, 200), QtCore.QPoint(150, 230))
    assert cur.window == pri.window and cur.window.name == "Custom"
    compare.prior_view.setFocus()
    qtbot.keyClick(compare.prior_view, Qt.Key.Key_I)  # invert: both
    assert cur.invert and pri.invert


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


def test_file_menu_compares_the_open_study_with_a_folder(qtbot, window, demo_pair, tmp_path):
    then, now = demo_pair
    open_and_wait(qtbot, window, [str(now.series_dir)])
    assert window.menus.prior_action.isEnabled()
    window.menus.prior_menu.aboutToShow.emit()  # as opening the menu does
    texts = [a.text() for a in window.menus.prior_menu.actions()]
    assert texts == ["Other &Folder…"]  # the browser knows no prior of this study
    window.priors.compare_folder(folder=str(then.series_dir))
    compare = window.priors.window
    qtbot.addWidget(compare)
    assert sorted(p.status for p in compare.pairs).count("paired") == len(now.lesions) - 1
    assert compare.current_state.volume is window.state.volume
    compare.grab().save(str(tmp_path / "prior.png"))
    (tmp_path / "empty").mkdir()
    window.priors.compare_folder(folder=str(tmp_path / "empty"))  # no images: one sentence
    text = window.last_message.text()
    assert "\n" not in text and text


def keep_truth_result(card, volume, labels_path, series_key):
    """Keep, as the result of `card`'s model on `volume`, what a perfect model would
    give (the demo's truth labels as probabilities): the viewer's runs then reuse it, as
    they reuse any earlier run, and everything after the network is the real path."""
    import SimpleITK as sitk

    from medview.ai.findings.postprocess import coarse_index, encode
    from medview.ai.runtime import inference

    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(labels_path)))
    codes = np.concatenate(
        [
            encode(
                np.stack([(chunk == lab.value) for lab in card.labels], axis=1).astype(np.float32)
            )
            for chunk in np.array_split(labels, max(1, len(labels) // 8))
        ]
    )
    seg = inference.SegmentationResult(
        codes, coarse_index(codes, len(card.labels)), None, card, "cpu", False, 1
    )
    inference._keep(volume, series_key, seg)


def nearest(entries: list[dict], centre) -> dict:
    return min(entries, key=lambda e: np.linalg.norm(np.subtract(e["centre_lps_mm"], centre)))


def test_browser_offers_the_prior_and_the_ai_findings_pair_with_their_growth(
    qtbot, window, demo_pair, tmp_path
):
    then, now = demo_pair
    open_and_wait(qtbot, window, [str(then.series_dir), str(now.series_dir)])
    # the newest study opens; the older one of the same patient is offered as its prior
    assert window.state.volume.metadata.study_date > window.browser.priors[0].study.study_date
    browser = window.browser
    prior_row = browser.tree.topLevelItem(0).child(0)
    assert prior_row.text(0).startswith("Prior, 183 days earlier: ")
    assert browser.context_menu(prior_row) is not None
    assert browser.context_menu(browser.tree.topLevelItem(0).child(1)) is None  # the open one
    window.menus.prior_menu.aboutToShow.emit()
    assert len(window.menus.prior_menu.actions()) == 3  # the prior, a separator, Other Folder
    assert browser.compare_button.isEnabled()
    QTest.mouseClick(browser.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.priors.window is not None, timeout=30_000)
    compare = window.priors.window
    qtbot.addWidget(compare)
    assert "ground truth" in compare.source_label.text()

    # the reader runs the AI on the current study: the same model runs on the prior too
    card = window.ai.current_entry().card  # the model the AI panel runs
    keep_truth_result(card, window.state.volume, now.labels_path, window.state.series_key)
    keep_truth_result(
        card, compare.prior_state.volume, then.labels_path, compare.prior_state.series_key
    )
    QTest.mouseClick(window.ai.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: compare.source_label.text().startswith("Findings: AI"), timeout=60_000)
    assert card.ref in compare.source_label.text()

    then_truth = json.loads(then.lesions_json.read_text())["lesions"]
    now_json = json.loads(now.lesions_json.read_text())
    truth = {t["id"]: t for t in now_json["follow_up"]["lesions"]}
    col = {name: i for i, name in enumerate(COLUMNS)}
    table = compare.table
    statuses = [table.item(r, col["Status"]).text() for r in range(table.rowCount())]
    assert sorted(statuses) == ["gone", "new"] + ["paired"] * (len(statuses) - 2)
    checked = 0
    for r, pair in enumerate(compare.pairs):
        if pair.status != "paired":
            continue
        known = truth[nearest(now_json["lesions"], pair.now.centre_lps_mm)["id"]]
        assert nearest(then_truth, pair.then.centre_lps_mm)["id"] == known["baseline_id"]
        then_ml = float(table.item(r, col["Vol then ml"]).text())
        now_ml = float(table.item(r, col["Vol now ml"]).text())
        if then_ml >= 0.5:  # voxelised volumes of larger lesions: within 5 %
            assert now_ml / then_ml == pytest.approx(known["volume_factor"], rel=0.05)
            vdt = float(table.item(r, col["VDT days"]).text())
            # 5 % in the factor is 0.05 / ln(factor) in the doubling time
            tol = 0.05 / np.log(known["volume_factor"]) + 0.01
            assert vdt == pytest.approx(known["doubling_days"], rel=tol)
            checked += 1
    assert checked >= 2
    gone = next(p for p in compare.pairs if p.status == "gone")
    assert (
        nearest(then_truth, gone.then.centre_lps_mm)["id"]
        in now_json["follow_up"]["gone_baseline_ids"]
    )
    # the prior view shows the AI's mask made on the prior
    assert any(layer.made_by == card.ref for layer in compare.prior_state.layers)
    compare.grab().save(str(tmp_path / "prior_ai.png"))

    # the reader rejects a paired finding in the AI panel: it leaves the pairing
    pair = next(p for p in compare.pairs if p.status == "paired")
    rejected = next(
        f for f in window.ai.results.findings if f"{f.label_name} {f.id}" == pair.now.name
    )
    table = window.ai.table
    index = table.proxy.index(table.proxy_row(rejected.id), 0)
    qtbot.mouseClick(
        table.view.viewport(), Qt.MouseButton.LeftButton, pos=table.view.visualRect(index).center()
    )
    qtbot.mouseClick(table.buttons["rejected"], Qt.MouseButton.LeftButton)
    assert pair.now.name not in [p.now.name for p in compare.pairs if p.now]
    assert [p.status for p in compare.pairs].count("gone") == 2  # its prior is unpaired now
    # a new threshold there: the prior's findings at it too (no model runs: kept results)
    window.ai.display.slider.setValue(30)
    qtbot.waitUntil(lambda: "p ≥ 0.30" in compare.source_label.text(), timeout=30_000)

"""The main window as a reader meets it: open, drop, load with progress, cancel, fail with one
message, switch layouts, find settings again after a restart, export a key image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import write_ct_series
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

from medview.core.windowing import CT_PRESETS
from medview.ui.about_dialog import about_text
from medview.ui.main_window import MainWindow
from medview.ui.settings import MAX_RECENT, Settings
from medview.viewer.planes import Plane
from tests.ui.main_window_fixtures import (
    LOAD_TIMEOUT_MS,
    make_window,
    open_and_wait,
    slow_loading,
)

Qt = QtCore.Qt


def test_open_folder_scans_shows_the_tree_and_the_first_series(qtbot, window, two_series):
    folder, a, _ = two_series
    open_and_wait(qtbot, window, [str(folder)])
    assert window.series is not None and window.series.key == a.series_uid
    assert window.state.volume.shape == (8, 24, 32)
    np.testing.assert_array_equal(window.state.volume.array, a.expected_array)
    axial = window.grid.view(Plane.AXIAL)
    assert axial.image_item.image.shape == (24, 32) and axial.isVisible()
    assert not window.grid.loading
    assert "Loaded 8 slices" in window.status_label.text()
    assert window.windowTitle().startswith("Chest 1 mm")
    assert window.views == window.grid.views and len(window.views) == 3
    for view in window.views:  # every view draws the one volume: no copy per view
        assert view.state is window.state
    assert not window.progress.isVisible() and not window.cancel_button.isVisible()


def test_file_menu_dialogs_open_a_folder_and_files(
    qtbot, window, two_series, tmp_path, monkeypatch
):
    folder, a, b = two_series
    seen = {}

    def folder_dialog(parent, title, start):
        seen["start"] = start
        return str(folder)

    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", folder_dialog)
    with qtbot.waitSignal(
        window.image_shown, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda kind: kind == "volume"
    ):
        window.menus.file_menu.actions()[0].trigger()  # Open Folder…
    assert window.series.key == a.series_uid
    monkeypatch.setattr(
        QtWidgets.QFileDialog,
        "getOpenFileNames",
        lambda *args: ([str(p) for p in b.paths], "DICOM"),
    )
    with qtbot.waitSignal(
        window.image_shown, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda kind: kind == "volume"
    ):
        window.menus.file_menu.actions()[1].trigger()  # Open File(s)…
    assert window.series.key == b.series_uid and window.state.volume.shape == (6, 20, 28)
    window.open_folder_dialog()
    assert seen["start"] == str(b.paths[0].parent)  # the last folder opened


@pytest.mark.parametrize("target", ["window", "image view"])
def test_drop_of_a_folder_opens_it(qtbot, window, two_series, target):
    """Dropped on the window or on an image (pyqtgraph's views ignore drags, so they reach
    the window)."""
    folder, a, _ = two_series
    widget = window if target == "window" else window.grid.focused_view.viewport()
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(folder))])
    pos = QtCore.QPointF(widget.width() / 2, widget.height() / 2)
    enter = QtGui.QDragEnterEvent(
        pos.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QtWidgets.QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(
        window.image_shown, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda kind: kind == "volume"
    ):
        QtWidgets.QApplication.sendEvent(widget, drop)
    assert window.series.key == a.series_uid
    assert window.settings.recent[0] == str(folder)


def test_first_slice_is_drawn_before_the_series_has_loaded(qtbot, window, tmp_path, monkeypatch):
    w = write_ct_series(tmp_path / "s", n=12)
    slow_loading(monkeypatch, 0.08)
    with qtbot.waitSignal(
        window.image_shown,
        timeout=LOAD_TIMEOUT_MS,
        check_params_cb=lambda kind: kind == "first slice",
    ):
        window.open_paths([str(tmp_path / "s")])
    assert window.state.volume is None  # still loading
    assert window.grid.loading and window.cancel_button.isVisible()
    page = window.grid._pages[Plane.AXIAL]
    assert page.isVisible()
    # the middle slice, turned as the axial view shows it (anterior up, patient right left)
    np.testing.assert_array_equal(page.image_item.image, w.expected_array[6])
    with qtbot.waitSignal(window.image_shown, timeout=LOAD_TIMEOUT_MS):
        pass
    assert window.state.volume is not None and not window.grid.loading


def test_cancel_leaves_nothing_half_shown(qtbot, window, two_series, monkeypatch):
    folder, a, b = two_series
    open_and_wait(qtbot, window, [str(folder)])
    before = window.grid.view(Plane.AXIAL).image_item.image.copy()
    slow_loading(monkeypatch, 0.2)
    with qtbot.waitSignal(window.image_shown, timeout=LOAD_TIMEOUT_MS):
        window.open_item(window.browser.series(b.series_uid))
    assert window.grid.loading
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert "cancelled" in window.status_label.text().lower()
    assert not window.grid.loading and not window.cancel_button.isVisible()
    qtbot.waitUntil(lambda: window.loader.jobs_running == 0, timeout=LOAD_TIMEOUT_MS)
    qtbot.wait(50)  # whatever the job sent while winding down has been delivered: dropped
    assert window.series.key == a.series_uid
    assert window.state.series_key == a.series_uid
    np.testing.assert_array_equal(window.grid.view(Plane.AXIAL).image_item.image, before)
    assert window.grid.view(Plane.AXIAL).isVisible()


def test_a_superseded_load_is_dropped(qtbot, window, two_series, monkeypatch):
    folder, a, b = two_series
    open_and_wait(qtbot, window, [str(folder)])
    slow_loading(monkeypatch, 0.1)
    shown = []
    window.image_shown.connect(shown.append)
    window.open_item(window.browser.series(b.series_uid))
    window.open_item(window.browser.series(a.series_uid))  # back: b is no longer wanted
    assert not window.grid.loading  # a is on screen already: nothing to load
    qtbot.waitUntil(lambda: window.loader.jobs_running == 0, timeout=LOAD_TIMEOUT_MS)
    qtbot.wait(50)
    assert window.state.series_key == a.series_uid and shown == []


def test_corrupt_file_gives_one_clear_message(qtbot, window, two_series):
    folder, a, b = two_series
    open_and_wait(qtbot, window, [str(folder)])
    broken = b.paths[2]
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) - 300])  # pixel data cut short after the scan
    with qtbot.waitSignal(window.loader.failed, timeout=LOAD_TIMEOUT_MS):
        window.open_item(window.browser.series(b.series_uid))
    box = window.last_message
    assert box is not None and box.isVisible()
    assert broken.name in box.text() and "Traceback" not in box.text()
    assert box.text().count("\n") == 0
    assert window.warnings.messages("error") == [box.text()]
    assert not window.grid.loading and window.state.series_key == a.series_uid


def test_unreadable_files_and_gaps_are_shown_in_the_warnings_panel(qtbot, window, tmp_path):
    w = write_ct_series(tmp_path / "s", n=8, drop=[3])
    (tmp_path / "s" / "notes.txt").write_text("not an image")
    open_and_wait(qtbot, window, [str(tmp_path / "s")])
    messages = window.warnings.messages()
    assert any("slice gap" in m for m in messages)
    # a file that does not claim to be DICOM is a quiet note, not an error (issue 14.2)
    assert any("notes.txt" in m for m in window.warnings.messages("info"))
    assert not window.warnings.messages("error")
    assert window.dock("Warnings").windowTitle() == f"Warnings ({len(messages)})"
    item = window.browser.item(w.series_uid)
    assert item.text(3) == "1" and "slice gap" in item.toolTip(0)


def test_nothing_found_says_so(qtbot, window, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hello")
    with qtbot.waitSignal(window.loader.scanned, timeout=LOAD_TIMEOUT_MS):
        window.open_paths([str(tmp_path / "empty")])
    assert "No image series" in window.last_message.text()
    assert "1 other file not read (readme.txt)" in window.last_message.text()
    window.open_paths([str(tmp_path / "missing")])
    assert "does not exist" in window.last_message.text()


def test_a_new_window_writes_no_settings_before_its_first_paint(qtbot, data_dir, monkeypatch):
    """Every settings write syncs the file to disk (QSaveFile): start-up reads the saved
    layout and does not write it back (issue 19)."""
    Settings().layout = "1x3"
    written: list[tuple[str, object]] = []
    monkeypatch.setattr(Settings, "_set", lambda self, key, value: written.append((key, value)))
    window = MainWindow(Settings(), panels_later=True)
    qtbot.addWidget(window)
    assert window.grid.layout_name == "1x3"
    assert written == []
    window.set_layout("2x2")
    assert written == [("view/layout", "2x2")]


def test_layouts_switch_and_persist(qtbot, window, two_series):
    folder, _, _ = two_series
    open_and_wait(qtbot, window, [str(folder)])
    grid = window.grid
    # "Chest 1 mm" opens with the CT chest hanging protocol (viewer.protocols): 1 x 3
    assert grid.layout_name == "1x3" and grid.focused_view.plane is Plane.AXIAL
    window.menus.layout_actions["1"].trigger()
    assert [v.plane for v in grid.views if v.isVisible()] == [Plane.AXIAL]
    window.menus.layout_actions["1x3"].trigger()
    assert all(v.isVisible() for v in grid.views) and not grid.card.isVisible()
    window.menus.layout_actions["2x2"].trigger()
    assert grid.layout_name == "2x2" and grid.card.isVisible()
    assert "Chest 1 mm" in grid.card.text()
    grid.set_focused(Plane.CORONAL)
    window.menus.layout_actions["1"].trigger()
    assert [v.plane for v in grid.views if v.isVisible()] == [Plane.CORONAL]
    views_before = [id(v) for v in grid.views]
    window.close()
    again = make_window(qtbot)
    assert again.grid.layout_name == "1" and again.menus.layout_actions["1"].isChecked()
    assert views_before != [id(v) for v in again.grid.views]


def test_geometry_docks_and_last_folder_come_back_after_a_restart(qtbot, window, two_series):
    folder, _, _ = two_series
    open_and_wait(qtbot, window, [str(folder)])
    window.resize(760, 580)  # within the offscreen screen (800 x 600): Qt keeps it on screen
    size = window.size()
    window.dock("Tags").close()
    window.close()
    again = make_window(qtbot)
    assert again.settings.last_folder == str(folder)
    assert again.dock("Tags").isHidden() and not again.dock("Studies").isHidden()
    assert again.size() == size != QtCore.QSize(1200, 800)


def test_recent_studies_persist_and_missing_ones_are_removed(qtbot, window, tmp_path, two_series):
    folder, _, _ = two_series
    gone = tmp_path / "gone"
    write_ct_series(gone, n=3, label="gone")
    open_and_wait(qtbot, window, [str(gone)])
    open_and_wait(qtbot, window, [str(folder)])
    window.close()
    again = make_window(qtbot)
    assert again.settings.recent[:2] == [str(folder), str(gone)]
    again.menus.rebuild_recent()
    texts = [a.data() for a in again.menus.recent_menu.actions()]
    assert texts[:2] == [str(folder), str(gone)]
    for p in gone.iterdir():
        p.unlink()
    gone.rmdir()
    again.menus.recent_menu.actions()[1].trigger()
    assert "no longer exists" in again.last_message.text()
    assert again.settings.recent == [str(folder)]


def test_export_png_writes_the_focused_view(qtbot, window, two_series, tmp_path, monkeypatch):
    folder, _, _ = two_series
    open_and_wait(qtbot, window, [str(folder)])
    out = tmp_path / "key image"
    monkeypatch.setattr(
        QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "PNG image (*.png)")
    )
    window.menus.export_action.trigger()
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QtGui.QImage(str(png))
    view = window.grid.focused_view
    assert (image.width(), image.height()) == (view.width(), view.height())
    assert f"Saved {png}" in window.status_label.text()


def test_window_menu_presets_invert_and_view_toggles(qtbot, window, two_series):
    folder, _, _ = two_series
    open_and_wait(qtbot, window, [str(folder)])
    menus, state = window.menus, window.state
    assert menus.preset_actions[0].shortcut().toString() == "1"
    assert all(a.isEnabled() for a in menus.preset_actions)
    menus.preset_actions[0].trigger()
    assert (state.window.center, state.window.width) == (CT_PRESETS[0].center, CT_PRESETS[0].width)
    menus.invert_action.trigger()
    assert state.invert and menus.invert_action.isChecked()
    state.toggle_invert()
    assert not menus.invert_action.isChecked()
    menus.crosshair_action.trigger()
    assert not state.crosshair_linked
    state.set_crosshair_linked(True)
    assert menus.crosshair_action.isChecked()
    menus.overlays_action.trigger()
    assert not state.show_overlays
    menus.auto_action.trigger()
    assert state.window.name == "Auto"


def test_hovering_a_view_shows_value_and_position_in_the_status_bar(qtbot, window, two_series):
    folder, _, _ = two_series
    open_and_wait(qtbot, window, [str(folder)])
    view = window.grid.view(Plane.AXIAL)
    centre = view.viewport().rect().center()
    QTest.mouseMove(view.viewport(), centre)
    QTest.mouseMove(view.viewport(), centre + QtCore.QPoint(3, 2))
    qtbot.waitUntil(lambda: "HU" in window.hover_label.text(), timeout=2000)
    assert "LPS" in window.hover_label.text()


def test_about_names_the_licences_and_says_not_a_medical_device(qtbot, window):
    text = about_text()
    for needle in ("not a medical device", "LGPL", "Apache License 2.0", "not a diagnosis"):
        assert needle in text
    window.menus.help_menu.actions()[0].trigger()  # Help > About MedView
    assert "not a medical device" in window.about_dialog.summary.text()
    assert window.about_dialog.licences.rowCount() > 10


def test_the_other_panels_are_plugged_in_and_drive_every_view(qtbot, window, two_series):
    folder, _, _ = two_series
    open_and_wait(qtbot, window, [str(folder)])
    panel = window.dock("Measure").widget()
    assert panel is window.measurements
    panel.buttons["ruler"].click()
    assert all(v.tool == "ruler" for v in window.views)
    assert window.dock("Window / Level").widget() is window.window_panel
    assert window.dock("Layers").widget() is window.layers
    window.menus.preset_actions[2].trigger()  # bone, from the menu: the panel follows
    assert window.window_panel.state.window.name == "Bone"


def test_add_panel_docks_a_widget_and_lists_it(qtbot, window):
    label = QtWidgets.QLabel("extra")
    dock = window.add_panel("Extra", label)
    assert dock.widget() is label
    assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert dock.toggleViewAction() in window.menus.panels_menu.actions()


def test_window_appears_without_pydicom_simpleitk_or_torch():
    code = (
        "import sys, os\nos.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from medview.app import create_application\n"
        "from medview.ui.main_window import MainWindow\n"
        "from medview.ui.settings import Settings\n"
        "import tempfile\nos.environ['MEDVIEW_DATA_DIR'] = tempfile.mkdtemp()\n"
        "app = create_application()\nw = MainWindow(Settings())\nw.show()\n"
        "app.processEvents()\n"
        "print(sorted(m for m in ('pydicom', 'SimpleITK', 'torch') if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("layout", ["1", "1x3", "2x2"])
def test_screenshot_of_each_layout(qtbot, window, two_series, tmp_path, layout):
    folder, _, _ = two_series
    open_and_wait(qtbot, window, [str(folder)])
    window.set_layout(layout)
    qtbot.wait(50)
    image = window.grab().toImage()
    image.save(str(tmp_path / f"main-{layout}.png"))
    assert not image.isNull() and image.width() >= 1000


def test_settings_keep_ten_recent_studies_most_recent_first(data_dir):
    settings = Settings()
    assert settings.path == data_dir / "settings.ini" and settings.recent == []
    for k in range(12):
        settings.add_recent(f"/studies/{k}")
    settings.add_recent("/studies/5")
    again = Settings()
    assert len(again.recent) == MAX_RECENT
    assert again.recent[:3] == ["/studies/5", "/studies/11", "/studies/10"]
    assert again.layout == "1"
    again._q.setValue("view/layout", "5x5")
    again._q.setValue("files/recent", "not json")
    assert again.layout == "1" and again.recent == []

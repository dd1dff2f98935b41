"""The Segments panel in the main window, with real clicks and drags: add a segment, pick
the brush and paint in a view (the size column follows), undo and redo from the buttons
that name the step, lock and hide from the table, rename and recode, the tool settings
reaching the editor, keys that pick tools, and the study's status."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from medview.core.labels import COMMON_CODES
from medview.ui.panels import segment_table as stb
from medview.viewer.planes import Plane
from tests.ui.annotation_fixtures import click, click_cell, paint

Qt = QtCore.Qt


def add_and_brush(qtbot, ann):
    panel = ann.panel
    click(qtbot, panel.add_button)
    click(qtbot, panel.tools.buttons["brush"])
    return ann.editor.active


def size_text(panel, value: int) -> str:
    return panel.table.item(panel.table.values.index(value), stb.SIZE).toolTip()


def test_paint_a_new_segment_and_see_its_size(qtbot, labelled):
    window, ann = labelled
    panel, ed = ann.panel, ann.editor
    assert panel.table.rowCount() == 0 and not panel.remove_button.isEnabled()
    value = add_and_brush(qtbot, ann)
    assert panel.table.rowCount() == 1 and panel.table.current_value() == value
    assert all(v.tool == "brush" for v in window.views)
    assert size_text(panel, value).startswith("0 voxels")
    paint(window, (20, 10), (20, 30))
    n = int(np.count_nonzero(ed.label_map.array == value))
    assert n > 20
    assert size_text(panel, value).startswith(f"{n:,} voxels")
    assert f"{n:,} voxels" in panel.detail.text()
    assert panel.undo_button.text() == "Undo Paint" and panel.undo_button.isEnabled()
    click(qtbot, panel.undo_button)
    assert not (ed.label_map.array == value).any()
    assert size_text(panel, value).startswith("0 voxels")
    assert panel.redo_button.text() == "Redo Paint"
    click(qtbot, panel.redo_button)
    assert int(np.count_nonzero(ed.label_map.array == value)) == n
    assert size_text(panel, value).startswith(f"{n:,} voxels")
    click(qtbot, panel.tools.buttons["wl"])  # painting off: the left button is W/L again
    assert ann.paint is None and all(v.tool == "wl" for v in window.views)


def test_locked_segment_is_not_painted_and_hidden_is_not_drawn(qtbot, labelled):
    window, ann = labelled
    panel, ed = ann.panel, ann.editor
    value = add_and_brush(qtbot, ann)
    click_cell(qtbot, panel.table, value, stb.LOCKED)
    assert ed.segment(value).locked
    paint(window, (20, 10), (20, 30))
    assert not ed.label_map.array.any()
    click_cell(qtbot, panel.table, value, stb.LOCKED)
    paint(window, (20, 10), (20, 30))
    assert (ed.label_map.array == value).any()
    view = next(v for v in window.views if v.plane == Plane.AXIAL)
    item = view.overlay_items[[x is ed.layer for x in window.state.layers].index(True)]
    assert item.isVisible() and (item.lut[value][3] == 255)
    click_cell(qtbot, panel.table, value, stb.SHOWN)
    assert not ed.segment(value).visible
    assert ed.layer.label_colours[value][3] == 0  # drawn transparent in every view
    qtbot.waitUntil(lambda: item.lut[value][3] == 0, timeout=10_000)


def test_rename_recode_and_colour(qtbot, labelled):
    _window, ann = labelled
    panel, ed = ann.panel, ann.editor
    value = add_and_brush(qtbot, ann)
    item = panel.table.item(0, stb.NAME)
    item.setText("Right lower lobe nodule")  # as the line editor commits it
    assert ed.segment(value).name == "Right lower lobe nodule"
    combo = panel.table.code_picker(value)
    combo.setCurrentIndex(combo.findText("Nodule"))
    combo.activated.emit(combo.currentIndex())
    category, kind = COMMON_CODES["Nodule"]
    assert ed.segment(value).type == kind and ed.segment(value).category == category
    assert "27925004" in panel.table.code_picker(value).toolTip()
    dialog = panel.choose_colour(value)
    dialog.setCurrentColor(QtWidgets.QApplication.palette().highlight().color())
    dialog.accept()
    colour = QtWidgets.QApplication.palette().highlight().color()
    assert ed.segment(value).colour == (colour.red(), colour.green(), colour.blue())
    assert panel.undo_button.text().startswith("Undo Edit segment")


def test_tool_settings_reach_the_editor_and_keys_pick_tools(qtbot, labelled):
    window, ann = labelled
    panel, ed = ann.panel, ann.editor
    add_and_brush(qtbot, ann)
    tools = panel.tools
    tools.size.setValue(7.0)
    assert ed.tool.radius_mm == 3.5
    tools.sphere.setCurrentIndex(1)
    tools.sphere.activated.emit(1)
    assert ed.tool.sphere
    click(qtbot, tools.buttons["threshold"])
    assert tools.hu_low.isEnabled() and not tools.tolerance.isEnabled()
    tools.presets.setCurrentIndex(tools.presets.findText("Bone", Qt.MatchFlag.MatchStartsWith))
    tools.presets.activated.emit(tools.presets.currentIndex())
    assert ed.tool.hu_range == (-500.0, 1500.0) and ed.tool.name == "threshold"
    view = next(v for v in window.views if v.plane == Plane.AXIAL)
    view.setFocus()
    for key, name in (
        (Qt.Key.Key_E, "eraser"),
        (Qt.Key.Key_G, "fill"),
        (Qt.Key.Key_L, "lasso"),
        (Qt.Key.Key_B, "brush"),
    ):
        qtbot.keyClick(view, key)
        assert ed.tool.name == name and tools.buttons[name].isChecked()
        assert view.tool == name
    qtbot.keyClick(view, Qt.Key.Key_BracketRight)  # the view's own key: the box follows
    assert tools.size.value() == round(2 * ed.tool.radius_mm, 1)
    qtbot.keyClick(view, Qt.Key.Key_W)
    assert tools.buttons["wl"].isChecked() and view.tool == "wl"
    qtbot.keyClick(view, Qt.Key.Key_N)
    assert len(ed.label_map.segments) == 2


def test_islands_smooth_and_fill_between_slices_from_the_buttons(qtbot, labelled):
    _window, ann = labelled
    panel, ed = ann.panel, ann.editor
    value = add_and_brush(qtbot, ann)
    a = ed.label_map.array
    flat = np.ravel_multi_index(
        np.nonzero(np.pad(np.ones((1, 8, 8), bool), ((2, 9), (10, 22), (10, 30)))), a.shape
    )
    ed.label_map.write(flat, value)  # slice 2
    ed.label_map.write(flat + 6 * a.shape[1] * a.shape[2], value)  # slice 8
    ed.label_map.write(
        np.array([5 * a.shape[1] * a.shape[2] + 35 * a.shape[2] + 40]), value
    )  # one stray voxel
    click(qtbot, panel.islands_button)
    assert a[5, 35, 40] == 0 and panel.undo_button.text() == "Undo Remove islands"
    click(qtbot, panel.interpolate_button)
    assert all(a[k, 12:16, 12:16].all() for k in range(2, 9))
    assert "Fill between slices" in panel.undo_button.toolTip()


def test_status_done_shows_who_and_when(qtbot, labelled):
    _window, ann = labelled
    panel = ann.panel
    assert panel.status_label.text() == "Draft" and panel.done_button.text() == "Mark done"
    click(qtbot, panel.done_button)
    assert panel.status_label.text().startswith("Done — ")
    assert ann.store.status.state == "done"
    assert panel.done_button.text() == "Back to draft"
    click(qtbot, panel.done_button)
    assert panel.status_label.text().startswith("Draft — ") and ann.store.status.state == "draft"


def test_a_measurement_tool_takes_the_mouse_from_painting(qtbot, labelled):
    window, ann = labelled
    add_and_brush(qtbot, ann)
    assert ann.paint is not None
    click(qtbot, window.measurements.buttons["ruler"])
    assert ann.paint is None and ann.panel.tools.buttons["wl"].isChecked()
    assert all(v.tool == "ruler" for v in window.views)
    click(qtbot, ann.panel.tools.buttons["brush"])  # and back: the ruler lets go
    assert all(v.tool == "brush" for v in window.views)
    assert window.measurements.buttons["wl"].isChecked()


def test_undo_and_redo_keys_work_with_the_focus_in_the_panel(qtbot, labelled):
    window, ann = labelled
    value = add_and_brush(qtbot, ann)
    paint(window, (20, 10), (20, 30))
    ann.panel.table.setFocus()
    qtbot.keyClick(ann.panel.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not (ann.editor.label_map.array == value).any()
    qtbot.keyClick(
        ann.panel.table,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert (ann.editor.label_map.array == value).any()
    assert ann.undo_action.text() == "&Undo Paint"

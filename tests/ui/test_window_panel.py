"""WindowPanel with real mouse and key events: the level lines on the histogram, presets,
W/L boxes, invert and cine, each checked in both directions against ViewerState."""

import numpy as np
import pytest
from PySide6 import QtCore

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.core.windowing import CT_PRESETS, Window, auto_window
from medview.ui.panels import window_panel
from medview.ui.panels.window_panel import WindowPanel
from medview.ui.slice_view import SliceView
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ui.qt_input import drag, shown, view_to_widget, wheel

Qt = QtCore.Qt
AFFINE = affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))


def ct_volume(windows=()) -> Volume:
    """Air, soft tissue and bone: data from -1000 to 1000 HU."""
    s, r, _ = np.indices((12, 24, 24))
    array = np.full(s.shape, -1000, np.int16)
    array[:, 4:20, 4:20] = 40 + (r[:, 4:20, 4:20] - 12)
    array[:, 10:12, 10:12] = 1000
    return Volume(
        array, AFFINE.copy(), VolumeMetadata(modality="CT", windows=list(windows), units="HU")
    )


def mr_volume() -> Volume:
    s, r, _ = np.indices((12, 24, 24))
    array = (np.sin(r / 3.0) * 300 + 400 + s * 5).astype(np.float32)
    return Volume(
        array,
        AFFINE.copy(),
        VolumeMetadata(modality="MR", windows=[(350.0, 500.0), (400.0, 800.0)]),
    )


@pytest.fixture
def empty_state():
    """States come from fixtures, so they (and the widgets subscribed to them) live until
    pytest-qt has closed and deleted the widgets: a widget kept only by a reference cycle
    with its state could be collected mid-paint, and PySide deletes it then (segfault)."""
    return ViewerState()


@pytest.fixture
def state(empty_state):
    empty_state.set_volume(ct_volume())
    return empty_state


def make(qtbot, state, views=None) -> WindowPanel:
    return shown(qtbot, WindowPanel(state, views), 320, 320)


@pytest.fixture
def panel(qtbot, state):
    return make(qtbot, state)


def on_plot(panel, x: float) -> QtCore.QPoint:
    """Widget point at data value `x`, half-way up the histogram."""
    vb = panel.vb
    (_, _), (y0, y1) = vb.viewRange()
    return view_to_widget(panel.plot, vb, x, (y0 + y1) / 2)


def px_per_unit(panel) -> float:
    return 1 / panel.vb.viewPixelSize()[0]


def test_dragging_the_high_line_widens_the_window(qtbot, panel, state):
    lo, hi = state.window.bounds  # -160 .. 240
    start = on_plot(panel, hi)
    drag(panel.plot.viewport(), start, start + QtCore.QPoint(40, 0))
    moved = 40 / px_per_unit(panel)
    new_lo, new_hi = state.window.bounds
    assert new_lo == pytest.approx(lo, abs=1e-6)
    assert new_hi == pytest.approx(hi + moved, rel=0.05)
    assert state.window.name == "Custom"
    assert panel.width_box.value() == pytest.approx(state.window.width, abs=0.5)
    assert panel.presets.currentText() == "Custom"


def test_dragging_the_low_line_past_the_high_one_is_blocked(qtbot, panel, state):
    lo, hi = state.window.bounds
    start = on_plot(panel, lo)
    drag(panel.plot.viewport(), start, on_plot(panel, hi + 300))
    assert state.window.width >= 1.0
    assert state.window.bounds[1] == pytest.approx(hi, abs=1.0)


def test_dragging_the_band_moves_the_level_and_keeps_the_width(qtbot, panel, state):
    width, center = state.window.width, state.window.center
    start = on_plot(panel, center)
    drag(panel.plot.viewport(), start, start - QtCore.QPoint(30, 0))
    assert state.window.width == pytest.approx(width)
    assert state.window.center == pytest.approx(center - 30 / px_per_unit(panel), rel=0.05)
    assert panel.level_box.value() == pytest.approx(state.window.center, abs=0.5)


def test_state_moves_the_lines_and_the_range_takes_in_the_window(panel, state):
    state.apply_preset(1)  # lung -1350 .. 150: beyond the data's -1000
    assert panel.region.getRegion() == pytest.approx((-1350, 150))
    (x0, x1), _ = panel.vb.viewRange()
    assert x0 < -1350 and x1 > 1000  # window and data both visible
    assert (panel.width_box.value(), panel.level_box.value()) == (1500, -600)
    assert panel.presets.currentText().startswith("1  Lung")
    state.set_window(3000, 200)  # far above the data
    (x0, x1), _ = panel.vb.viewRange()
    assert x0 < -1000 and x1 > 3100


def test_lines_can_be_dragged_beyond_the_data(qtbot, panel, state):
    state.apply_preset(1)
    start = on_plot(panel, -1350)
    drag(panel.plot.viewport(), start, start - QtCore.QPoint(15, 0))
    assert state.window.bounds[0] < -1360


def test_ct_presets_and_keyboard_choice(qtbot, state):
    state.set_volume(ct_volume(windows=[(50.0, 350.0)]))
    panel = make(qtbot, state)
    texts = [panel.presets.itemText(i) for i in range(panel.presets.count())]
    assert texts[0] == "Custom" and texts[1] == "File: W 350 / L 50"
    assert texts[2:10] == [
        f"{k}  {p.name}  W {p.width:g} / L {p.center:g}" for k, p in enumerate(CT_PRESETS, start=1)
    ]
    assert texts[10].startswith("Auto")
    assert panel.presets.currentIndex() == 1  # the file's window is the one open
    panel.presets.setFocus()
    qtbot.keyClick(panel.presets, Qt.Key.Key_Down)
    assert state.window == CT_PRESETS[0]
    qtbot.keyClick(panel.presets, Qt.Key.Key_End)
    assert state.window == auto_window(state.volume.array)


def test_mr_offers_the_files_windows_and_auto_only(qtbot, state):
    state.set_volume(mr_volume())
    panel = make(qtbot, state)
    windows = panel.preset_windows[1:]
    assert windows == [
        Window(350.0, 500.0, "File"),
        Window(400.0, 800.0, "File"),
        auto_window(state.volume.array),
    ]
    assert panel.presets.itemText(2) == "File 2: W 800 / L 400"
    assert panel.width_box.decimals() == 0  # values span hundreds: whole numbers


def test_width_and_level_boxes(qtbot, panel, state):
    panel.width_box.selectAll()
    qtbot.keyClicks(panel.width_box, "1234")
    qtbot.keyClick(panel.width_box, Qt.Key.Key_Return)
    assert state.window.width == 1234 and state.window.center == 40
    panel.level_box.selectAll()
    qtbot.keyClicks(panel.level_box, "-321")
    qtbot.keyClick(panel.level_box, Qt.Key.Key_Return)
    assert state.window == Window(-321, 1234, "Custom")
    qtbot.keyClick(panel.level_box, Qt.Key.Key_Up)  # arrows step at once
    assert state.window.center > -321
    state.set_window(75, 200)
    assert (panel.width_box.value(), panel.level_box.value()) == (200, 75)


def test_invert_checkbox_both_ways(qtbot, state):
    view = SliceView(state, Plane.AXIAL)
    qtbot.addWidget(view)
    panel = make(qtbot, state, [view])
    qtbot.mouseClick(
        panel.invert_box,
        Qt.MouseButton.LeftButton,
        pos=QtCore.QPoint(8, panel.invert_box.height() // 2),
    )  # the box itself
    assert state.invert
    qtbot.keyClick(view, Qt.Key.Key_I)  # the view's key: the box follows
    assert not state.invert and not panel.invert_box.isChecked()


def test_histogram_once_per_volume_not_per_slice(qtbot, state, monkeypatch):
    calls = []
    real = window_panel.volume_histogram
    monkeypatch.setattr(
        window_panel, "volume_histogram", lambda a: calls.append(a.shape) or real(a)
    )
    view = SliceView(state, Plane.AXIAL)
    qtbot.addWidget(view)
    view.resize(200, 200)
    view.show()
    make(qtbot, state, [view])
    assert len(calls) == 1
    for _ in range(5):
        wheel(view.viewport(), QtCore.QPoint(100, 100), -1)
    state.apply_preset(2)
    assert state.slice_index(Plane.AXIAL) == 11 and len(calls) == 1
    state.set_volume(mr_volume())
    assert len(calls) == 2


def test_histogram_is_log_counts_of_the_data():
    array = np.array([0] * 1000 + [100] * 10, np.int16)
    edges, counts = window_panel.volume_histogram(array)
    assert edges[0] == 0 and edges[-1] == 100
    assert counts[0] == pytest.approx(np.log10(1001)) and counts[-1] == pytest.approx(np.log10(11))


def test_cine_rate_and_play_stop(qtbot, state):
    views = [SliceView(state, p) for p in (Plane.AXIAL, Plane.CORONAL)]
    for v in views:
        qtbot.addWidget(v)
        v.show()
    panel = make(qtbot, state, views)
    panel.fps_box.selectAll()
    qtbot.keyClicks(panel.fps_box, "60")
    qtbot.keyClick(panel.fps_box, Qt.Key.Key_Return)
    assert [v.cine_fps for v in views] == [60, 60]
    views[1].setFocus()  # the coronal view becomes the one that plays
    qtbot.waitUntil(lambda: panel._active is views[1])
    start = state.slice_index(Plane.CORONAL)
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    assert views[1].cine_running and not views[0].cine_running
    assert panel.play_button.text() == "Stop"
    qtbot.waitUntil(lambda: state.slice_index(Plane.CORONAL) != start, timeout=2000)
    qtbot.keyClick(views[1], Qt.Key.Key_Space)  # stopped from the view: the button follows
    assert panel.play_button.text() == "Play"
    qtbot.keyClick(views[0], Qt.Key.Key_Space)
    assert panel.play_button.text() == "Stop"
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)  # stops what runs
    assert not any(v.cine_running for v in views) and panel.play_button.text() == "Play"


def test_without_views_cine_is_disabled_and_colour_disables_window(qtbot, empty_state):
    state = empty_state
    panel = make(qtbot, state)
    assert not panel.play_button.isEnabled() and not panel.presets.isEnabled()
    rgb = np.zeros((4, 6, 8, 3), np.uint8)
    state.set_volume(Volume(rgb, AFFINE.copy(), VolumeMetadata(photometric="RGB")))
    assert not panel.width_box.isEnabled() and "Colour image" in panel.note.text()
    state.set_volume(ct_volume())
    assert panel.width_box.isEnabled() and panel.note.text() == ""

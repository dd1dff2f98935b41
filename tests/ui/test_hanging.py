"""Hanging protocols in the main window: the defaults (CT chest 1 x 3 lung window on axial,
CT abdomen its window), a screen saved from the View menu reopens the same on a restart, and
a broken protocols file is one warning while the defaults still apply."""

from PySide6 import QtWidgets
from PySide6.QtTest import QTest

from medview.io import saved
from medview.viewer.planes import Plane
from medview.viewer.slab import SlabMode
from tests.ui.main_window_fixtures import make_window, open_and_wait


def screen(w):
    return (
        w.grid.layout_name,
        w.grid.focused_view.plane,
        w.state.window.name,
        w.measurements.tool,
        w.state.slab.mode,
        w.state.slab.thickness_mm,
    )


def test_defaults_open_chest_in_lung_window_and_abdomen_in_its_own(qtbot, window, two_series):
    folder, _a, _b = two_series
    open_and_wait(qtbot, window, [str(folder / "a")])
    assert screen(window)[:3] == ("1x3", Plane.AXIAL, "Lung")
    open_and_wait(qtbot, window, [str(folder / "b")])
    assert window.state.window.name == "Abdomen"


def test_saved_protocol_reopens_the_same_screen(qtbot, window, two_series, monkeypatch):
    folder, _a, _b = two_series
    open_and_wait(qtbot, window, [str(folder / "a")])
    # the reader makes the screen: 2 x 2, coronal focused, bone window (key 3), the ruler,
    # a 20 mm MIP (M, then + twice from 10 mm)
    window.menus.layout_actions["2x2"].trigger()
    coronal = window.grid.view(Plane.CORONAL)
    window.grid.set_focused(Plane.CORONAL)
    for key in ("3", "M", "+", "+"):
        QTest.keyClicks(coronal, key)
    window.measurements.buttons["ruler"].click()
    want = ("2x2", Plane.CORONAL, "Bone", "ruler", SlabMode.MIP, 20.0)
    assert screen(window) == want
    monkeypatch.setattr(
        QtWidgets.QInputDialog, "getText", lambda *a, **k: (k.get("text", ""), True)
    )
    assert window.menus.protocol_action.text() == "Save as &Protocol for CT chest…"
    window.menus.protocol_action.trigger()
    assert saved.protocols_file().is_file()
    window.close()

    again = make_window(qtbot, (1200, 800))  # a restart
    open_and_wait(qtbot, again, [str(folder / "a")])
    assert screen(again) == want
    # the abdomen series still opens with the default of its own
    open_and_wait(qtbot, again, [str(folder / "b")])
    assert again.state.window.name == "Abdomen"


def test_broken_protocols_file_is_one_warning_and_defaults_apply(qtbot, data_dir, two_series):
    data_dir.mkdir(parents=True, exist_ok=True)
    saved.protocols_file().write_text("{broken")
    w = make_window(qtbot, (1200, 800))
    folder, _a, _b = two_series
    open_and_wait(qtbot, w, [str(folder / "a")])
    assert w.state.window.name == "Lung"
    texts = [w.warnings.list.item(i).text() for i in range(w.warnings.list.count())]
    assert any("protocols.json is not a list of hanging protocols" in t for t in texts)

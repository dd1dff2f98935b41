"""Measurement tools driven by real mouse and key events on a volume with known anisotropic
spacing (slices 2.5 mm, rows 0.6 mm, columns 0.9 mm): the ruler measures known distances to
0.1 mm in axial and coronal, ROI statistics equal numpy's on a mask rebuilt here from the
ROI's pixel bounds, measurements are edited by their handles, listed, deleted, renamed,
kept across sessions, and drawn only on their own slice; W/L, zoom and pan still work."""

import json
import math

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.io.saved import measurements_file as measurements_path
from medview.ui.panels.measurements_panel import MeasurementsPanel
from medview.ui.slice_view import SliceView
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ui.qt_input import drag, view_to_widget, wheel

Qt = QtCore.Qt
SHAPE = (12, 24, 32)  # small, so a 600 px view shows ~20 screen pixels per mm
SPACING = {"slice": 2.5, "row": 0.6, "col": 0.9}
AFFINE = affine_from_plane((-10, 20, -30), (1, 0, 0), (0, 1, 0), (0.6, 0.9), (0, 0, 2.5))
SIZE = 600
KEY = "1.2.826.0.1.3680043.99.1"


def ct_volume() -> Volume:
    rng = np.random.default_rng(7)
    array = rng.integers(-1000, 1500, SHAPE).astype(np.int16)
    return Volume(array, AFFINE.copy(), VolumeMetadata(modality="CT", units="HU"))


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


class Reader:
    """A state, an axial and a coronal view and the measurements panel, as a window has."""

    def __init__(self, qtbot, volume: Volume | None = None, key: str = KEY) -> None:
        self.state = ViewerState()
        self.views = {p: SliceView(self.state, p) for p in (Plane.AXIAL, Plane.CORONAL)}
        self.panel = MeasurementsPanel(self.state, list(self.views.values()))
        for w in (*self.views.values(), self.panel):
            qtbot.addWidget(w)
            w.resize(SIZE, SIZE)
            w.show()
            qtbot.waitExposed(w)
        self.state.set_volume(volume or ct_volume(), key)
        self.store = self.panel.store

    def pick(self, qtbot, tool: str) -> None:
        qtbot.mouseClick(self.panel.buttons[tool], Qt.MouseButton.LeftButton)
        assert all(v.tool == tool for v in self.views.values())

    def screen(self, plane: Plane, row: float, col: float) -> QtCore.QPoint:
        view = self.views[plane]
        p = view.pixel_to_mm(row, col)
        return view_to_widget(view, view.vb, p.x(), p.y())

    def drag(self, plane: Plane, a, b, button=Qt.MouseButton.LeftButton) -> None:
        drag(self.views[plane].viewport(), self.screen(plane, *a), self.screen(plane, *b), button)

    def item(self, plane: Plane, mid: str):
        tools = next(t for t in self.panel.tools if t.view is self.views[plane])
        return tools.items[mid]

    def label(self, plane: Plane, mid: str) -> str:
        return self.item(plane, mid).text.toPlainText()

    def handle_at(self, plane: Plane, mid: str, k: int) -> QtCore.QPoint:
        """Where handle k of a drawn measurement is on the viewport."""
        handle = self.item(plane, mid).roi.handles[k]["item"]
        return self.views[plane].mapFromScene(handle.scenePos())

    def tools_items(self, plane: Plane) -> int:
        return len(next(t for t in self.panel.tools if t.view is self.views[plane]).items)

    def only(self):
        assert len(self.store.measurements) == 1
        m = next(iter(self.store.measurements.values()))
        return m, self.store.values(m.id)


@pytest.fixture
def reader(qtbot):
    return Reader(qtbot)


def mm_per_pixel(plane: Plane) -> tuple[float, float]:
    """(row, col) spacing of a plane's screen image, written out for this volume."""
    return {
        Plane.AXIAL: (SPACING["row"], SPACING["col"]),
        Plane.CORONAL: (SPACING["slice"], SPACING["col"]),
    }[plane]


# -- ruler


@pytest.mark.parametrize("plane", [Plane.AXIAL, Plane.CORONAL])
@pytest.mark.parametrize(
    ("a", "b"),
    [((3, 4), (3, 28)), ((2, 10), (10, 10)), ((1, 2), (9, 27))],
    ids=["row", "column", "diagonal"],
)
def test_ruler_measures_known_distance_to_a_tenth_of_a_mm(qtbot, reader, plane, a, b):
    reader.pick(qtbot, "ruler")
    reader.drag(plane, a, b)
    m, v = reader.only()
    dr, dc = mm_per_pixel(plane)
    expected = math.hypot((b[0] - a[0]) * dr, (b[1] - a[1]) * dc)
    assert v.length_mm == pytest.approx(expected, abs=0.1)
    assert m.kind == "ruler" and m.plane is plane
    assert m.slice_index == reader.state.slice_index(plane)
    assert reader.label(plane, m.id) == f"{v.length_mm:.1f} mm"


# -- ROIs


def plane_image(array: np.ndarray, plane: Plane, index: int) -> np.ndarray:
    """The screen image, written out: axial as stored; coronal with superior up."""
    return array[index] if plane is Plane.AXIAL else array[::-1, index, :]


def pixel_bounds(item, plane: Plane) -> np.ndarray:
    """The drawn ROI's corners in fractional screen pixels, from its scene rectangle."""
    dr, dc = mm_per_pixel(plane)
    (x, y), (w, h) = item.roi.pos(), item.roi.size()
    return np.array([[y / dr - 0.5, x / dc - 0.5], [(y + h) / dr - 0.5, (x + w) / dc - 0.5]])


def inside_mask(kind: str, bounds: np.ndarray, shape) -> np.ndarray:
    """Voxel centres inside the shape (measurements.py's rule), over the whole image."""
    (r0, c0), (r1, c1) = bounds
    rr, cc = np.indices(shape)
    if kind == "rectangle":
        return (rr >= r0) & (rr <= r1) & (cc >= c0) & (cc <= c1)
    return ((rr - (r0 + r1) / 2) / ((r1 - r0) / 2)) ** 2 + (
        (cc - (c0 + c1) / 2) / ((c1 - c0) / 2)
    ) ** 2 <= 1


@pytest.mark.parametrize("plane", [Plane.AXIAL, Plane.CORONAL])
@pytest.mark.parametrize("kind", ["ellipse", "rectangle"])
def test_roi_statistics_equal_numpy_on_the_same_voxels(qtbot, reader, plane, kind):
    reader.pick(qtbot, kind)
    reader.drag(plane, (2.3, 4.6), (9.7, 25.2))
    m, v = reader.only()
    index = reader.state.slice_index(plane)
    image = plane_image(reader.state.volume.array, plane, index)
    assert np.array_equal(image, reader.views[plane].image_item.image)
    bounds = pixel_bounds(reader.item(plane, m.id), plane)
    assert bounds == pytest.approx(np.array([[2.3, 4.6], [9.7, 25.2]]), abs=0.05)
    inside = image[inside_mask(kind, bounds, image.shape)]
    assert v.pixels == inside.size > 50
    assert v.mean == pytest.approx(np.mean(inside), abs=1e-6)
    assert v.sd == pytest.approx(np.std(inside), abs=1e-6)
    assert (v.minimum, v.maximum) == (inside.min(), inside.max())
    dr, dc = mm_per_pixel(plane)
    (h, w) = (bounds[1] - bounds[0]) * (dr, dc)
    assert v.area_mm2 == pytest.approx(w * h * (math.pi / 4 if kind == "ellipse" else 1))
    assert reader.label(plane, m.id).startswith(f"mean {v.mean:.1f} HU  SD {v.sd:.1f}")


def test_dragging_a_rectangle_corner_updates_values_list_and_file(qtbot, reader):
    reader.pick(qtbot, "rectangle")
    reader.drag(Plane.AXIAL, (1.6, 1.6), (6.4, 8.4))
    m, v = reader.only()
    assert v.pixels == 5 * 7
    moved = []
    reader.store.subscribe(lambda event, mid: moved.append(event))
    drag(
        reader.views[Plane.AXIAL].viewport(),
        reader.handle_at(Plane.AXIAL, m.id, 3),
        reader.screen(Plane.AXIAL, 12.4, 14.4),
        steps=8,
    )  # bottom-right corner
    v2 = reader.store.values(m.id)
    assert v2.pixels == 11 * 13
    assert moved.count("changed") >= 3  # live while dragging, not only at the end
    row = reader.panel.list.topLevelItem(0)
    assert row.text(1).startswith(f"mean {v2.mean:.1f} HU")
    saved = json.loads(measurements_path(KEY).read_text())["measurements"][0]["points_lps"]
    assert np.allclose(saved, m.points_lps, atol=1e-5)


# -- angle


def test_angle_drag_first_arm_then_click_the_second(qtbot, reader):
    reader.pick(qtbot, "angle")
    reader.drag(Plane.AXIAL, (5, 28), (5, 6))  # along a row, ends at the vertex
    view = reader.views[Plane.AXIAL]
    m = next(iter(reader.store.measurements.values()))
    QTest.mouseMove(view.viewport(), reader.screen(Plane.AXIAL, 12, 12))  # arm follows
    QTest.qWait(20)
    follows = reader.store.values(m.id).angle_deg
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=reader.screen(Plane.AXIAL, 15, 16)
    )
    m, v = reader.only()
    # 10 rows down and 10 columns across: atan(10*0.6 / 10*0.9), not 45 degrees
    assert v.angle_deg == pytest.approx(math.degrees(math.atan2(6, 9)), abs=0.3)
    assert follows == pytest.approx(math.degrees(math.atan2(4.2, 5.4)), abs=0.5)
    assert reader.label(Plane.AXIAL, m.id) == f"{v.angle_deg:.1f}°"
    assert not reader.panel.tools[0].angle.pending
    assert measurements_path(KEY).exists()


def test_angle_by_two_drags_and_esc_drops_an_unfinished_one(qtbot, reader):
    reader.pick(qtbot, "angle")
    reader.drag(Plane.CORONAL, (2, 5), (8, 5))
    reader.drag(Plane.CORONAL, (3, 20), (8, 20))  # second drag: its release ends the arm
    _, v = reader.only()
    assert v.angle_deg == pytest.approx(90, abs=0.3)
    reader.drag(Plane.CORONAL, (1, 1), (4, 20))
    assert len(reader.store.measurements) == 2
    qtbot.keyClick(reader.views[Plane.CORONAL], Qt.Key.Key_Escape)
    assert len(reader.store.measurements) == 1


# -- editing, selecting, deleting


def test_dragging_a_ruler_end_changes_its_length(qtbot, reader):
    reader.pick(qtbot, "ruler")
    reader.drag(Plane.AXIAL, (4, 4), (4, 14))
    m, v = reader.only()
    assert v.length_mm == pytest.approx(9.0, abs=0.1)
    drag(
        reader.views[Plane.AXIAL].viewport(),
        reader.handle_at(Plane.AXIAL, m.id, 1),
        reader.screen(Plane.AXIAL, 4, 24),
    )
    assert reader.store.values(m.id).length_mm == pytest.approx(18.0, abs=0.1)
    assert reader.label(Plane.AXIAL, m.id) == "18.0 mm"
    assert reader.panel.list.topLevelItem(0).text(1) == "18.0 mm"


def test_tiny_drag_draws_nothing(qtbot, reader):
    reader.pick(qtbot, "ellipse")
    view = reader.views[Plane.AXIAL]
    a = reader.screen(Plane.AXIAL, 5, 5)
    drag(view.viewport(), a, a + QtCore.QPoint(40, 1))  # 40 px wide, 1 px high
    assert reader.store.measurements == {}
    assert not measurements_path(KEY).exists()


def test_panel_lists_selects_jumps_renames_and_deletes(qtbot, reader):
    reader.pick(qtbot, "ruler")
    reader.drag(Plane.AXIAL, (2, 2), (2, 12))
    first = reader.state.slice_index(Plane.AXIAL)
    qtbot.keyClick(reader.views[Plane.AXIAL], Qt.Key.Key_End)
    reader.drag(Plane.AXIAL, (3, 3), (9, 3))
    names = [reader.panel.list.topLevelItem(i).text(0) for i in range(2)]
    assert names == ["Ruler 1", "Ruler 2"]
    lst = reader.panel.list
    rect = lst.visualItemRect(lst.topLevelItem(0))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    m1 = next(iter(reader.store.measurements.values()))
    assert reader.store.selected == m1.id
    assert reader.state.slice_index(Plane.AXIAL) == first  # jumped to its slice
    assert reader.item(Plane.AXIAL, m1.id).is_visible()

    qtbot.mouseClick(reader.panel.rename_button, Qt.MouseButton.LeftButton)
    editor = QtWidgets.QApplication.focusWidget()
    assert isinstance(editor, QtWidgets.QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, "aorta")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: m1.label == "aorta")  # the delegate commits on a queued call
    assert lst.topLevelItem(0).text(0) == "aorta"
    assert reader.label(Plane.AXIAL, m1.id).startswith("aorta\n")
    assert json.loads(measurements_path(KEY).read_text())["measurements"][0]["label"] == "aorta"

    lst.setFocus()
    qtbot.keyClick(lst, Qt.Key.Key_Delete)
    assert list(reader.store.measurements) != [] and m1.id not in reader.store.measurements
    assert lst.topLevelItemCount() == 1 and reader.tools_items(Plane.AXIAL) == 1
    rect = lst.visualItemRect(lst.topLevelItem(0))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseClick(reader.panel.delete_button, Qt.MouseButton.LeftButton)
    assert reader.store.measurements == {} and lst.topLevelItemCount() == 0
    assert json.loads(measurements_path(KEY).read_text())["measurements"] == []


def test_click_on_a_measurement_selects_it_and_del_in_the_view_deletes_it(qtbot, reader):
    reader.pick(qtbot, "rectangle")
    reader.drag(Plane.AXIAL, (2, 2), (8, 10))
    reader.drag(Plane.AXIAL, (12, 14), (20, 28))
    first, second = reader.store.measurements
    assert reader.store.selected == second
    view = reader.views[Plane.AXIAL]
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=reader.screen(Plane.AXIAL, 5, 6)
    )
    assert reader.store.selected == first
    assert reader.panel.list.currentItem().text(0) == "Rectangle 1"
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert list(reader.store.measurements) == [second]


# -- where measurements show


def test_shown_only_on_their_slice_of_their_plane(qtbot, reader):
    reader.pick(qtbot, "ellipse")
    reader.drag(Plane.AXIAL, (2, 2), (10, 12))
    m, _ = reader.only()
    view = reader.views[Plane.AXIAL]
    item = reader.item(Plane.AXIAL, m.id)
    assert item.is_visible()
    assert (
        m.id
        not in next(t for t in reader.panel.tools if t.view is reader.views[Plane.CORONAL]).items
    )
    wheel(view.viewport(), reader.screen(Plane.AXIAL, 12, 16), -1)
    assert reader.state.slice_index(Plane.AXIAL) == m.slice_index + 1
    assert not item.is_visible() and not item.text.isVisible()
    wheel(view.viewport(), reader.screen(Plane.AXIAL, 12, 16), +1)
    assert item.is_visible()
    assert reader.item(Plane.AXIAL, m.id) is item  # toggled, not rebuilt


def test_zoom_and_pan_still_work_with_a_tool_and_leave_measurements_put(qtbot, reader):
    reader.pick(qtbot, "ruler")
    reader.drag(Plane.AXIAL, (4, 4), (4, 24))
    m, v = reader.only()
    view = reader.views[Plane.AXIAL]
    zoom, window = view.zoom(), reader.state.window
    c = QtCore.QPoint(SIZE // 2, SIZE // 2)
    drag(view.viewport(), c, c - QtCore.QPoint(0, 60), Qt.MouseButton.RightButton)
    assert view.zoom() > zoom * 1.3
    (x0, _), _ = view.vb.viewRange()
    drag(view.viewport(), c, c + QtCore.QPoint(40, 0), Qt.MouseButton.MiddleButton)
    assert view.vb.viewRange()[0][0] < x0 - 1
    assert len(reader.store.measurements) == 1 and reader.state.window == window
    assert reader.store.values(m.id) == v
    ends = reader.item(Plane.AXIAL, m.id).points()
    assert (ends[0].x(), ends[1].x()) == pytest.approx(
        (view.pixel_to_mm(4, 4).x(), view.pixel_to_mm(4, 24).x()), abs=0.05
    )


def test_wl_tool_drags_window_level_and_draws_nothing(qtbot, reader):
    reader.pick(qtbot, "ruler")
    reader.pick(qtbot, "wl")
    w0 = reader.state.window
    reader.drag(Plane.AXIAL, (12, 10), (12, 25))
    assert reader.state.window.width > w0.width
    assert reader.store.measurements == {}


# -- kept across sessions


def test_measurements_come_back_when_the_series_is_opened_again(qtbot, reader):
    reader.pick(qtbot, "ruler")
    reader.drag(Plane.CORONAL, (1, 3), (10, 20))
    reader.pick(qtbot, "ellipse")
    reader.drag(Plane.AXIAL, (3, 3), (15, 20))
    before = {mid: reader.store.values(mid) for mid in reader.store.measurements}
    texts = [reader.panel.list.topLevelItem(i).text(1) for i in range(2)]

    again = Reader(qtbot)  # a new session: new state, views and panel, same data folder
    assert {mid: again.store.values(mid) for mid in again.store.measurements} == before
    assert [again.panel.list.topLevelItem(i).text(1) for i in range(2)] == texts
    ruler, roi = again.store.measurements.values()
    assert again.item(Plane.CORONAL, ruler.id).is_visible()
    assert again.label(Plane.AXIAL, roi.id) == reader.label(Plane.AXIAL, roi.id)


def test_a_damaged_file_shows_one_message_and_the_series_opens(qtbot):
    path = measurements_path(KEY)
    path.parent.mkdir(parents=True)
    path.write_text('{"format": "medview-measurements", "version": 1, "measurements": [')
    reader = Reader(qtbot)
    label = reader.panel.message_label
    assert label.isVisible() and "damaged" in label.text() and "kept as" in label.text()
    assert path.with_name(path.name + ".damaged-1").exists()
    assert reader.views[Plane.AXIAL].image_item.image is not None
    reader.pick(qtbot, "ruler")
    reader.drag(Plane.AXIAL, (4, 4), (4, 24))
    assert len(json.loads(path.read_text())["measurements"]) == 1


def test_a_view_added_later_gets_the_tools_and_a_closed_one_is_forgotten(qtbot, reader):
    reader.pick(qtbot, "ruler")
    reader.drag(Plane.AXIAL, (4, 4), (4, 24))
    extra = SliceView(reader.state, Plane.AXIAL)  # a layout change makes another view
    reader.panel.add_view(extra)
    assert (
        extra.tool == "ruler"
        and len(next(t for t in reader.panel.tools if t.view is extra).items) == 1
    )
    reader.state.unsubscribe(extra._on_state)  # SliceView leaves that to whoever closes it
    extra.deleteLater()
    qtbot.waitUntil(lambda: len(reader.panel.tools) == 2)
    qtbot.keyClick(reader.views[Plane.AXIAL], Qt.Key.Key_Down)  # no call into the closed one
    reader.pick(qtbot, "ellipse")
    reader.drag(Plane.AXIAL, (4, 4), (10, 24))
    reader.state.set_volume(ct_volume(), KEY)
    assert reader.tools_items(Plane.AXIAL) == 2

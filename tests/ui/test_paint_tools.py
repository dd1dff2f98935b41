"""Painting labels with real mouse and key events on SliceViews of a volume with known
anisotropic spacing (slices 2.5 mm, rows 0.8 mm, columns 0.6 mm): the voxels under a drag
are painted in axial, coronal and sagittal, one stroke is one undo step (Ctrl+Z, Ctrl+Shift+Z,
Ctrl+Y on the view), fill and lasso land where clicked, the brush cursor is the brush's size
in mm, and stopping painting gives the left button back to window/level."""

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from medview.core.geometry import affine_from_plane
from medview.core.labels import LabelMap
from medview.core.volume import Volume, VolumeMetadata
from medview.ui.paint_tools import PaintController
from medview.ui.slice_view import SliceView
from medview.viewer.label_editor import LabelEditor
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ui.qt_input import _send_mouse, drag, view_to_widget

Qt = QtCore.Qt
SHAPE = (20, 40, 48)
AFFINE = affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))
SIZE = 480


def ct_volume() -> Volume:
    array = np.full(SHAPE, 40, np.int16)
    array[:, 10:20, 10:20] = 300  # a bright block for the fill
    return Volume(array, AFFINE.copy(), VolumeMetadata(modality="CT", units="HU"))


class Painter:
    def __init__(self, qtbot) -> None:
        self.state = ViewerState()
        self.views = {p: SliceView(self.state, p) for p in Plane}
        for v in self.views.values():
            qtbot.addWidget(v)
            v.resize(SIZE, SIZE)
            v.show()
            qtbot.waitExposed(v)
        self.state.set_volume(ct_volume(), "k")
        self.editor = LabelEditor(self.state, LabelMap.empty(SHAPE))
        self.seg = self.editor.add_segment("Lesion")
        self.paint = PaintController(list(self.views.values()), self.editor)
        self.editor.set_tool(radius_mm=1.0)

    @property
    def labels(self) -> np.ndarray:
        return self.editor.label_map.array

    def screen(self, plane: Plane, row: float, col: float) -> QtCore.QPoint:
        view = self.views[plane]
        p = view.pixel_to_mm(row, col)
        return view_to_widget(view, view.vb, p.x(), p.y())

    def drag(self, plane: Plane, a, b, steps: int = 6) -> None:
        drag(
            self.views[plane].viewport(),
            self.screen(plane, *a),
            self.screen(plane, *b),
            steps=steps,
        )

    def key(self, plane: Plane, key, mods=Qt.KeyboardModifier.NoModifier) -> None:
        QTest.keyClick(self.views[plane], key, mods)


@pytest.fixture
def painter(qtbot):
    return Painter(qtbot)


def test_drag_on_axial_paints_the_voxels_under_the_path_as_one_undo_step(qtbot, painter):
    k = painter.state.slice_index(Plane.AXIAL)
    painter.drag(Plane.AXIAL, (20, 5), (20, 40), steps=3)  # fast: 3 moves over 35 pixels
    painted = painter.labels[k]
    # 1 mm brush: rows 19..21 (0.8 mm), columns +-1 (0.6 mm); no gaps along the path
    assert (painted[20, 5:41] == 1).all()
    assert painted[18].sum() == 0 and painted[22].sum() == 0
    assert painter.labels.sum() == painted.sum()  # the shown slice only
    assert painter.editor.history.can_undo() and painter.editor.undo_name == "Paint"
    n_steps = len(painter.editor.history._undo)
    assert n_steps == 2  # add segment + one stroke
    painter.key(Plane.AXIAL, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert painter.labels.sum() == 0
    painter.key(
        Plane.AXIAL,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert (painter.labels[k, 20, 5:41] == 1).all()
    painter.key(Plane.AXIAL, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    painter.key(Plane.AXIAL, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert (painter.labels[k, 20, 5:41] == 1).all()


def test_dab_is_drawn_in_the_views_overlay(qtbot, painter):
    view = painter.views[Plane.AXIAL]
    painter.drag(Plane.AXIAL, (10, 10), (10, 30))
    qtbot.wait(40)
    item = view.overlay_items[0]
    assert item.image is not None and (np.asarray(item.image)[10, 10:31] == 1).all()


def test_a_dab_redraws_only_the_views_whose_slice_it_touches(qtbot, painter):
    coronal, sagittal = painter.views[Plane.CORONAL], painter.views[Plane.SAGITTAL]
    before = (coronal.overlay_items[0].image, sagittal.overlay_items[0].image)
    row = painter.state.slice_index(Plane.CORONAL)  # the coronal slice: axial row
    painter.drag(Plane.AXIAL, (row, 2), (row, 8))  # crosses the coronal slice only
    qtbot.wait(40)
    assert coronal.overlay_items[0].image is not before[0]
    assert sagittal.overlay_items[0].image is before[1]
    assert (np.asarray(coronal.overlay_items[0].image) == 1).any()


@pytest.mark.parametrize("plane", [Plane.CORONAL, Plane.SAGITTAL])
def test_painting_in_coronal_and_sagittal_lands_on_the_right_voxels(qtbot, painter, plane):
    pm = painter.state.maps[plane]
    index = painter.state.slice_index(plane)
    painter.drag(plane, (4, 6), (4, 30))
    # screen row 4 is 4 slices below the top (superior) of the stack
    expected = np.zeros(SHAPE, np.uint8)
    for c in range(6, 31):
        expected[tuple(int(v) for v in pm.to_index(index, 4, c))] = 1
    got = painter.labels
    assert (got[expected == 1] == 1).all()
    # nothing off the shown slice: a 1 mm disc stays in its plane
    sl = [slice(None)] * 3
    sl[pm.normal_axis] = index
    assert got.sum() == got[tuple(sl)].sum()
    assert SHAPE[0] - 1 - 4 == int(pm.to_index(index, 4, 6)[0])


def test_eraser_clears_only_the_active_segment(qtbot, painter):
    k = painter.state.slice_index(Plane.AXIAL)
    other = painter.editor.add_segment("Liver")
    painter.labels[k, 20, 10:20] = other.value
    painter.labels[k, 21, 10:20] = painter.seg.value
    painter.editor.set_active(painter.seg.value)
    painter.paint.set_tool("eraser")
    painter.drag(Plane.AXIAL, (20.5, 8), (20.5, 22))
    assert (painter.labels[k, 20, 10:20] == other.value).all()
    assert (painter.labels[k, 21, 10:20] == 0).all()


def test_fill_click_fills_the_bright_block_only(qtbot, painter):
    painter.paint.set_tool("fill")
    painter.editor.set_tool(tolerance_hu=20)
    qtbot.mouseClick(
        painter.views[Plane.AXIAL].viewport(),
        Qt.MouseButton.LeftButton,
        pos=painter.screen(Plane.AXIAL, 15, 15),
    )
    k = painter.state.slice_index(Plane.AXIAL)
    assert (painter.labels[k, 10:20, 10:20] == 1).all()
    assert painter.labels.sum() == 100


def test_lasso_fills_the_dragged_polygon(qtbot, painter):
    painter.paint.set_tool("lasso")
    view = painter.views[Plane.AXIAL].viewport()
    pts = [painter.screen(Plane.AXIAL, r, c) for r, c in ((5, 5), (5, 25), (25, 25), (25, 5))]
    button = Qt.MouseButton.LeftButton
    _send_mouse(
        view,
        QtCore.QEvent.Type.MouseButtonPress,
        QtCore.QPointF(pts[0]),
        button,
        button,
        Qt.KeyboardModifier.NoModifier,
    )
    for p in (*pts[1:], pts[0]):
        qtbot.wait(15)
        _send_mouse(
            view,
            QtCore.QEvent.Type.MouseMove,
            QtCore.QPointF(p),
            Qt.MouseButton.NoButton,
            button,
            Qt.KeyboardModifier.NoModifier,
        )
    qtbot.wait(15)
    _send_mouse(
        view,
        QtCore.QEvent.Type.MouseButtonRelease,
        QtCore.QPointF(pts[0]),
        button,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    k = painter.state.slice_index(Plane.AXIAL)
    assert (painter.labels[k, 6:25, 6:25] == 1).all()
    assert 19 * 19 <= painter.labels.sum() <= 21 * 21


def test_brush_cursor_follows_the_mouse_at_the_brush_size(qtbot, painter):
    painter.editor.set_tool(radius_mm=4.0)
    view = painter.views[Plane.CORONAL]
    _send_mouse(
        view.viewport(),
        QtCore.QEvent.Type.MouseMove,
        QtCore.QPointF(painter.screen(Plane.CORONAL, 10, 20)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    qtbot.wait(20)
    paint = next(p for p in painter.paint.paints if p.view is view)
    assert paint.cursor.isVisible()
    assert paint.cursor.rect().width() == pytest.approx(8.0)
    centre = paint.cursor.pos()
    expected = view.pixel_to_mm(10, 20)
    assert abs(centre.x() - expected.x()) < 0.7 and abs(centre.y() - expected.y()) < 2.6
    painter.key(Plane.CORONAL, Qt.Key.Key_BracketRight)
    assert painter.editor.tool.radius_mm == pytest.approx(5.0)


def test_stop_gives_the_left_button_back_to_window_level(qtbot, painter):
    painter.paint.stop()
    w0 = painter.state.window.width
    painter.drag(Plane.AXIAL, (10, 10), (10, 30))
    assert painter.labels.sum() == 0
    assert painter.state.window.width != w0


def test_a_click_paints_one_dab_and_leaves_the_crosshair(qtbot, painter):
    cursor = painter.state.cursor_ijk.copy()
    k = painter.state.slice_index(Plane.AXIAL)
    qtbot.mouseClick(
        painter.views[Plane.AXIAL].viewport(),
        Qt.MouseButton.LeftButton,
        pos=painter.screen(Plane.AXIAL, 7, 9),
    )
    assert painter.labels[k, 7, 9] == 1 and 1 <= painter.labels.sum() <= 9
    assert np.array_equal(painter.state.cursor_ijk, cursor)
    assert painter.editor.undo_name == "Paint"

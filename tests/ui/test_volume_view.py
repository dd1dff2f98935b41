"""The 3D view (ui.volume_view) on a phantom whose geometry is known: it renders, its CT
presets change the picture, a click on a segment's surface puts the crosshair on that
point of the segment, segments are drawn in their colours, and the clip box cuts them.

VTK renders through OpenGL: on Linux Mesa's llvmpipe (scripts/setup.sh installs it), with
Xvfb's GLX when DISPLAY is set, else EGL. Without any OpenGL these tests skip and say why."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6 import QtCore

from medview.core.volume import Volume, VolumeMetadata
from medview.ui.volume_scene import gl_problem
from medview.ui.volume_view import CLIP_STEPS, VolumeView
from medview.viewer.layers import OverlayLayer
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from medview.viewer.volume_presets import presets_for

_PROBLEM = gl_problem()
needs_gl = pytest.mark.skipif(bool(_PROBLEM), reason=f"no OpenGL for VTK here: {_PROBLEM}")

SHAPE = (40, 64, 60)  # slices, rows, cols
SPACING = np.array([2.5, 0.8, 0.9])  # mm
# An oblique-free but flipped geometry: columns run right to left (+x), rows posterior to
# anterior (-y), slices superior to inferior (-z); a wrong axis order or sign in the 3D
# view's placement would put a picked point on the wrong voxel.
AFFINE = np.array(
    [
        [0.0, 0.0, 0.9, -27.0],
        [0.0, -0.8, 0.0, 25.0],
        [-2.5, 0.0, 0.0, 50.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
RED_CENTRE = np.array([20, 30, 38])  # (slice, row, col) of the first segment's centre
GREEN_CENTRE = np.array([20, 34, 16])
HIDDEN_CENTRE = np.array([8, 32, 30])
RADIUS_MM = 7.0
RED, GREEN = (230, 25, 75), (60, 180, 75)


def _ball(centre: np.ndarray) -> np.ndarray:
    idx = np.stack(np.indices(SHAPE), axis=-1)
    return (((idx - centre) * SPACING) ** 2).sum(axis=-1) < RADIUS_MM**2


def phantom() -> tuple[Volume, OverlayLayer]:
    """Air around a soft-tissue cylinder with a bone rod and a lung-like region in it, and
    a label layer with three balls: red (1), green (2) and one hidden with alpha 0 (3)."""
    _k, j, i = np.indices(SHAPE)
    array = np.full(SHAPE, -1000, np.int16)
    array[(i - 30) ** 2 * 0.81 + (j - 32) ** 2 * 0.64 < 24**2] = 40
    array[(i - 44) ** 2 + (j - 26) ** 2 < 8**2] = -850
    array[(i - 14) ** 2 + (j - 40) ** 2 < 5**2] = 900
    volume = Volume(array, AFFINE.copy(), VolumeMetadata(modality="CT"))
    labels = np.zeros(SHAPE, np.uint8)
    labels[_ball(RED_CENTRE)] = 1
    labels[_ball(GREEN_CENTRE)] = 2
    labels[_ball(HIDDEN_CENTRE)] = 3
    layer = OverlayLayer("Labels", labels, label_colours={1: RED, 2: GREEN, 3: (0, 0, 255, 0)})
    return volume, layer


@pytest.fixture
def view(qtbot):
    state = ViewerState()
    volume, layer = phantom()
    state.set_volume(volume, "phantom")
    state.add_layer(layer)
    w = VolumeView(state)
    qtbot.addWidget(w)
    w.resize(420, 460)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.canvas.frame is not None, timeout=30_000)
    yield w
    w.shutdown()


def _front_point(centre: np.ndarray) -> np.ndarray:
    """The LPS point of a ball's surface nearest the viewer (the camera looks from the
    front: anterior, LPS -y)."""
    return Volume(np.zeros(SHAPE), AFFINE).index_to_lps(centre) - [0.0, RADIUS_MM, 0.0]


def _lit(frame: np.ndarray) -> float:
    return float((frame.max(axis=-1) > 10).mean())


@needs_gl
def test_renders_and_presets_change_the_picture(view):
    assert view.preset_box.count() == len(presets_for("CT"))
    frames = {}
    for name in presets_for("CT"):
        view.set_preset(name)
        frames[name] = view.frame().astype(int)
        assert _lit(frames[name]) > 0.02, f"{name}: the frame is empty"
    names = list(frames)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            diff = np.abs(frames[names[a]] - frames[names[b]]).mean()
            assert diff > 1.0, f"{names[a]} and {names[b]} draw the same picture"


@needs_gl
def test_click_on_a_surface_moves_the_crosshair_within_one_voxel(qtbot, view):
    view.volume_check.setChecked(False)  # surfaces only: the click must land on the ball
    view.frame()
    point = _front_point(RED_CENTRE)
    x, y = view.scene.display_point(point)
    ratio = view.canvas.devicePixelRatioF()
    pos = QtCore.QPoint(round(x / ratio), round(y / ratio))
    qtbot.mouseClick(view.canvas, QtCore.Qt.MouseButton.LeftButton, pos=pos)
    want = view.state.volume.lps_to_index(point)
    got = view.state.cursor_ijk
    assert np.abs(got - want).max() <= 1.0, (got, want)
    # the slice views follow the state: the axial one shows the picked slice
    assert view.state.slice_index(Plane.AXIAL) == round(got[0])
    # the crosshair marker is drawn there now
    assert np.allclose(view.scene._sphere.GetCenter(), view.state.cursor_lps())


@needs_gl
def test_a_drag_turns_the_view_and_leaves_the_crosshair(qtbot, view):
    camera = view.scene.renderer.GetActiveCamera()
    before, cursor = np.array(camera.GetPosition()), view.state.cursor_ijk.copy()
    centre = view.canvas.rect().center()
    left = QtCore.Qt.MouseButton.LeftButton
    qtbot.mousePress(view.canvas, left, pos=centre)
    for dx in (10, 20, 40, 60):
        qtbot.mouseMove(view.canvas, centre + QtCore.QPoint(dx, 0))
    qtbot.mouseRelease(view.canvas, left, pos=centre + QtCore.QPoint(60, 0))
    assert np.linalg.norm(np.array(camera.GetPosition()) - before) > 1.0
    assert np.array_equal(view.state.cursor_ijk, cursor)
    view.reset_camera()
    assert np.allclose(camera.GetPosition(), before)


@needs_gl
def test_click_on_the_volume_picks_what_is_seen(view):
    """With the bone preset the rod is what is seen, not the faint soft tissue in front of
    it: a click on the rod lands on its front surface (rows grow to the front here, and the
    rod holds rows 36..44 at its axis: its surface is at row 44.5)."""
    view.set_preset("Bone")
    view.frame()
    rod_front = view.state.volume.index_to_lps(np.array([30, 44.5, 14]))
    x, y = view.scene.display_point(rod_front)
    assert view.click(x, y)
    got = view.state.cursor_ijk
    assert np.abs(got - [30, 44.5, 14]).max() <= 1.0, got


@needs_gl
def test_segments_are_drawn_in_their_colours_and_hidden_ones_not(view):
    view.volume_check.setChecked(False)
    frame = view.frame().astype(float)
    for centre, colour in ((RED_CENTRE, RED), (GREEN_CENTRE, GREEN)):
        x, y = view.scene.display_point(_front_point(centre))
        pixel = frame[round(y), round(x)]
        cosine = pixel @ colour / (np.linalg.norm(pixel) * np.linalg.norm(colour))
        assert cosine > 0.98, (pixel, colour)
    x, y = view.scene.display_point(_front_point(HIDDEN_CENTRE))
    assert frame[round(y), round(x)].max() < 10  # alpha 0: not drawn


@needs_gl
def test_surfaces_follow_the_layers(qtbot, view):
    """A segment hidden in the Labels panel (alpha 0, then layers_changed) leaves the 3D
    view once the surfaces are rebuilt after the pause (SURFACE_DELAY_MS)."""
    view.volume_check.setChecked(False)
    x, y = view.scene.display_point(_front_point(RED_CENTRE))
    assert view.frame()[round(y), round(x)].max() > 10
    layer = view.state.layers[0]
    layer.label_colours[1] = (*RED, 0)
    view.state.layers_changed()
    qtbot.waitUntil(lambda: not view._surface_timer.isActive(), timeout=5_000)
    assert view.frame()[round(y), round(x)].max() < 10


@needs_gl
def test_clip_box_cuts_away_what_is_outside_it(view):
    view.volume_check.setChecked(False)
    view.clip_check.setChecked(True)
    x, y = view.scene.display_point(_front_point(RED_CENTRE))
    assert view.frame()[round(y), round(x)].max() > 10
    # the red ball lies on the patient's left (+x, col 38 of 60): keep the right half only
    _low, high = view.clip_sliders[0]
    high.setValue(CLIP_STEPS // 2)
    assert view.frame()[round(y), round(x)].max() < 10


def test_start_up_does_not_import_vtk(tmp_path):
    """VTK costs about half a second to import: the main window never imports it, not even
    with the 3D layout saved; the 3D cell imports it once a volume is open."""
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        f"os.environ['MEDVIEW_DATA_DIR'] = {str(tmp_path)!r}\n"
        "from medview.app import create_application\n"
        "from medview.ui.main_window import MainWindow\n"
        "from medview.ui.settings import Settings\n"
        "app = create_application()\n"
        "settings = Settings()\n"
        "settings.layout = '3d'\n"
        "w = MainWindow(settings)\n"
        "w.show()\n"
        "app.processEvents()\n"
        "print(w.grid.layout_name, "
        "sorted(m for m in sys.modules if m.startswith(('vtk', 'medview.ui.volume'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "3d []", out.stdout


@needs_gl
def test_3d_layout_in_the_main_window(qtbot, window):
    """View > Layout > 2 x 2 with 3D: the fourth cell builds the 3D view once shown, and
    a click there moves the crosshair of the slice views."""
    volume, layer = phantom()
    window.state.set_volume(volume, "phantom")
    window.state.add_layer(layer)
    window.menus.layout_actions["3d"].trigger()
    grid = window.grid
    assert grid.layout_name == "3d" and all(v.isVisible() for v in grid.views)
    qtbot.waitUntil(lambda: grid.volume_cell.view is not None, timeout=30_000)
    view = grid.volume_cell.view
    qtbot.waitUntil(lambda: view.canvas.frame is not None, timeout=30_000)
    view.volume_check.setChecked(False)
    view.frame()
    x, y = view.scene.display_point(_front_point(GREEN_CENTRE))
    assert view.click(x, y)
    want = volume.lps_to_index(_front_point(GREEN_CENTRE))
    assert np.abs(window.state.cursor_ijk - want).max() <= 1.0
    assert window.state.slice_index(Plane.SAGITTAL) == round(window.state.cursor_ijk[2])
    window.menus.layout_actions["1x3"].trigger()
    assert not grid.volume_cell.isVisible()


def test_without_vtk_the_3d_cell_says_so(qtbot, monkeypatch):
    """A desktop bundle built without VTK (MEDVIEW_BUNDLE_VTK=0): one sentence, no crash."""
    from medview.ui.view_grid import NO_VTK, ViewGrid

    monkeypatch.setitem(sys.modules, "vtkmodules", None)  # import vtkmodules fails
    for name in ("medview.ui.volume_view", "medview.ui.volume_scene"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    state = ViewerState()
    grid = ViewGrid(state)
    qtbot.addWidget(grid)
    grid.set_layout("3d")
    grid.show()
    qtbot.wait(50)
    assert grid.volume_cell.view is None  # nothing to draw: nothing built
    state.set_volume(phantom()[0], "phantom")
    qtbot.waitUntil(lambda: grid.volume_cell.view is not None)
    assert grid.volume_cell.view.text() == NO_VTK


@needs_gl
def test_scrolling_the_slices_renders_once_the_crosshair_rests(view, qtbot, monkeypatch):
    """Each notch of a slice view moves the crosshair; a 3D frame per notch (2 s with
    software OpenGL, on the GUI thread) would freeze the scrolling."""
    from medview.ui.volume_view import CURSOR_DELAY_MS

    qtbot.wait(2 * CURSOR_DELAY_MS)  # frames the set-up asked for are done
    frames = []
    real = view.scene.render
    monkeypatch.setattr(view.scene, "render", lambda: frames.append(1) or real())
    for index in range(5, 25):
        view.state.set_slice(Plane.AXIAL, index)
        qtbot.wait(10)
    assert frames == []  # still moving
    qtbot.waitUntil(lambda: len(frames) == 1, timeout=5000)
    qtbot.wait(2 * CURSOR_DELAY_MS)
    assert len(frames) == 1

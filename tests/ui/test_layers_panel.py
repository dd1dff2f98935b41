"""LayersPanel with real clicks and keys: an overlay added from a NIfTI file shows in the
axial, coronal and sagittal views at the voxels it labels; visibility, opacity, colour map
and threshold reach every view; files that do not fit end in one sentence."""

from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.io.image_files import write_volume
from medview.ui.panels.layers_panel import LayersPanel
from medview.ui.slice_view import SliceView, _lut
from medview.viewer.layers import COLOUR_MAPS
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ui.qt_input import grab_rgb, shown, view_to_widget

Qt = QtCore.Qt
SHAPE = (10, 16, 20)  # slices 2.5 mm, rows 0.8 mm, columns 0.6 mm apart
AFFINE = affine_from_plane((-6, -7, 20), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))
CUBE = (slice(2, 5), slice(3, 7), slice(12, 16))  # label 1
CUBE_CENTRE = np.array([3, 5, 14])
INSIDE = CUBE_CENTRE - 1  # in the cube, off the crosshair lines in every view
OUTSIDE = np.array([2, 12, 3])  # off the cube and the crosshair in axial and coronal
READ_TIMEOUT_MS = 15_000  # the first read imports SimpleITK


def labels() -> np.ndarray:
    a = np.zeros(SHAPE, np.uint8)
    a[CUBE] = 1
    a[8, 12, 3] = 3
    return a


def write(tmp_path: Path, name: str, array: np.ndarray, affine=AFFINE) -> str:
    path = tmp_path / name
    write_volume(Volume(array, affine.copy(), VolumeMetadata()), path)
    return str(path)


@pytest.fixture
def state(tmp_path, monkeypatch):
    """From a fixture, so the widgets subscribed to it live until pytest-qt closes them."""
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    s = ViewerState()
    s.set_volume(
        Volume(
            np.zeros(SHAPE, np.int16),
            AFFINE.copy(),
            VolumeMetadata(modality="CT", series_description="phantom"),
        )
    )
    return s


@pytest.fixture
def views(qtbot, state):
    return [shown(qtbot, SliceView(state, p), 260, 260) for p in Plane]


@pytest.fixture
def panel(qtbot, state):
    return shown(qtbot, LayersPanel(state), 300, 360)


def add_file(qtbot, panel, monkeypatch, path: str) -> None:
    """Through the button, with the file dialog answering `path`."""
    monkeypatch.setattr(
        QtWidgets.QFileDialog, "getOpenFileName", lambda *a, **k: (path, "All files (*)")
    )
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.add_button.isEnabled(), timeout=READ_TIMEOUT_MS)


def screen_point(view, ijk) -> QtCore.QPoint:
    _, row, col = view.plane_map.from_index(np.asarray(ijk, float))
    p = view.pixel_to_mm(row, col)
    return view_to_widget(view, view.vb, p.x(), p.y())


def tint(view, ijk) -> int:
    """How much redder than grey the screen is at a voxel (label 1 is red)."""
    p = screen_point(view, ijk)
    r, g, _ = grab_rgb(view)[p.y(), p.x()].astype(int)
    return r - g


def test_label_map_from_file_shows_in_every_plane(
    qtbot, monkeypatch, tmp_path, state, views, panel
):
    add_file(qtbot, panel, monkeypatch, write(tmp_path, "liver seg.nii.gz", labels()))
    assert panel.status.text() == "Added liver seg as a label map."
    [layer] = state.layers
    assert layer.kind == "labels" and np.array_equal(layer.array, labels())
    axial = views[0]
    qtbot.keyClick(axial, Qt.Key.Key_Home)
    for _ in range(CUBE_CENTRE[0]):
        qtbot.keyClick(axial, Qt.Key.Key_Down)
    # a click on the cube in the axial view takes coronal and sagittal into it
    qtbot.mouseClick(
        axial.viewport(), Qt.MouseButton.LeftButton, pos=screen_point(axial, CUBE_CENTRE)
    )
    assert np.array_equal(state.cursor_ijk, CUBE_CENTRE)
    for view in views:
        [item] = view.overlay_items
        expected = view.plane_map.image(labels(), state.slice_index(view.plane))
        assert np.array_equal(item.image, expected), view.plane
        assert (expected == 1).sum() > 0
        assert tint(view, INSIDE) > 60, view.plane
        if view.plane is not Plane.SAGITTAL:
            assert abs(tint(view, OUTSIDE)) < 5, view.plane
    assert panel.list.count() == 2 and panel.list.currentRow() == 1


def test_visibility_and_opacity_reach_every_view(qtbot, monkeypatch, tmp_path, state, views, panel):
    add_file(qtbot, panel, monkeypatch, write(tmp_path, "seg.nrrd", labels()))
    state.set_cursor_screen(Plane.AXIAL, *views[0].plane_map.from_index(CUBE_CENTRE)[1:])
    state.set_slice(Plane.AXIAL, CUBE_CENTRE[0])
    panel.list.setFocus()
    panel.list.setCurrentRow(1)
    qtbot.keyClick(panel.list, Qt.Key.Key_Space)  # untick: hidden
    assert not state.layers[0].visible
    assert all(not v.overlay_items[0].isVisible() for v in views)
    assert all(abs(tint(v, INSIDE)) < 5 for v in views)
    qtbot.keyClick(panel.list, Qt.Key.Key_Space)
    assert state.layers[0].visible and all(v.overlay_items[0].isVisible() for v in views)
    half = tint(views[0], INSIDE)
    panel.opacity.setFocus()
    qtbot.keyClick(panel.opacity, Qt.Key.Key_End)
    assert state.layers[0].opacity == 1.0
    assert all(v.overlay_items[0].opacity() == 1.0 for v in views)
    assert tint(views[0], INSIDE) > half + 40  # opaque red
    qtbot.keyClick(panel.opacity, Qt.Key.Key_PageDown)
    assert state.layers[0].opacity == pytest.approx(0.9)


def test_image_row_cannot_be_removed_or_changed(qtbot, monkeypatch, tmp_path, panel):
    assert panel.list.count() == 1 and panel.list.item(0).text() == "Image: phantom"
    panel.list.setCurrentRow(0)
    assert not panel.remove_button.isEnabled() and not panel.opacity.isEnabled()
    assert not panel.colour_map.isEnabled()


def test_heatmap_colour_map_threshold_and_remove(qtbot, monkeypatch, tmp_path, state, views, panel):
    add_file(qtbot, panel, monkeypatch, write(tmp_path, "seg.mha", labels()))
    ramp = np.broadcast_to(np.linspace(0, 1, SHAPE[2], dtype=np.float32), SHAPE).copy()
    add_file(qtbot, panel, monkeypatch, write(tmp_path, "tumour prob.nii", ramp))
    labels_layer, heat = state.layers
    assert heat.kind == "heatmap" and panel.list.currentRow() == 2
    assert panel.colour_map.isEnabled() and panel.threshold.isEnabled()
    panel.colour_map.setFocus()
    qtbot.keyClick(panel.colour_map, Qt.Key.Key_Down)
    assert heat.colour_map == COLOUR_MAPS[1]
    for view in views:
        assert np.array_equal(view.overlay_items[1].lut, _lut(heat))
    panel.threshold.setFocus()
    qtbot.keyClick(panel.threshold, Qt.Key.Key_End)
    assert heat.threshold == 1.0 and panel.threshold_text.text() == "1.00"
    assert (views[0].overlay_items[1].lut[:255, 3] == 0).all()  # nothing under 1.0 drawn
    qtbot.keyClick(panel.threshold, Qt.Key.Key_Home)
    assert heat.threshold == 0.0
    panel.list.setCurrentRow(1)  # a label map: no colour map, no threshold
    assert not panel.colour_map.isEnabled() and not panel.threshold.isEnabled()
    panel.list.setCurrentRow(2)
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert len(state.layers) == 1 and state.layers[0] is labels_layer
    assert all(len(v.overlay_items) == 1 for v in views)
    assert panel.list.count() == 2 and panel.status.text() == "Removed tumour prob."


@pytest.mark.parametrize(
    "name, array, affine, expected",
    [
        (
            "small.nii.gz",
            np.zeros((10, 16, 19), np.uint8),
            AFFINE,
            "has a 19 x 16 x 10 grid and the image 20 x 16 x 10; resample it onto the image grid",
        ),
        (
            "moved.nii.gz",
            np.zeros(SHAPE, np.uint8),
            AFFINE + np.outer([0.1, 0, 0, 0], [0, 0, 0, 1]),
            "but lies up to 0.1 mm away from it",
        ),
        ("dose.nrrd", np.full(SHAPE, 7.5, np.float32), AFFINE, "neither labels"),
    ],
)
def test_files_that_do_not_fit_give_one_sentence(
    qtbot, monkeypatch, tmp_path, state, panel, name, array, affine, expected
):
    path = write(tmp_path, name, array, affine)
    messages = []
    panel.message.connect(messages.append)
    add_file(qtbot, panel, monkeypatch, path)
    assert state.layers == []
    assert panel.status.text().startswith(f"{path}: ") and expected in panel.status.text()
    assert messages[-1] == panel.status.text() and "\n" not in messages[-1]


def test_unreadable_file_gives_the_readers_sentence(qtbot, monkeypatch, tmp_path, state, panel):
    bad = tmp_path / "notes.nii.gz"
    bad.write_bytes(b"not an image at all")
    add_file(qtbot, panel, monkeypatch, str(bad))
    assert state.layers == [] and panel.status.text().startswith(str(bad))


def test_a_file_read_for_a_previous_image_is_dropped(qtbot, monkeypatch, tmp_path, state, panel):
    path = write(tmp_path, "seg.nii.gz", labels())
    panel.add_overlay_file(path)
    assert not panel.add_button.isEnabled()
    state.set_volume(
        Volume(np.zeros(SHAPE, np.int16), AFFINE.copy(), VolumeMetadata(modality="CT"))
    )  # another series opened
    qtbot.waitUntil(lambda: not panel._worker.running, timeout=READ_TIMEOUT_MS)
    qtbot.wait(50)  # the queued result
    assert state.layers == [] and panel.add_button.isEnabled()

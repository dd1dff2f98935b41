"""Shared set-up of the annotation GUI tests: a main window with a small CT volume on
screen, its labels open, and helpers that paint and click as a reader does."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.ui.main_window import MainWindow
from medview.ui.panels import segment_table as stb
from medview.viewer.planes import Plane
from tests.ui.main_window_fixtures import make_window
from tests.ui.qt_input import drag, view_to_widget

Qt = QtCore.Qt
KEY = "1.2.826.0.1.3680043.99.66"
SHAPE = (12, 40, 48)
AFFINE = affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))


def ct_volume(description: str = "Chest 2.5 mm") -> Volume:
    array = np.full(SHAPE, 40, np.int16)
    array[:, 10:20, 10:20] = 300  # a bright block: the threshold brush and fill find it
    return Volume(
        array,
        AFFINE.copy(),
        VolumeMetadata(
            modality="CT",
            units="HU",
            series_description=description,
            study_instance_uid="1.2.3.4",
            series_instance_uid=KEY,
        ),
    )


@pytest.fixture
def labelled(qtbot, data_dir):
    """(window, annotation) with ct_volume() on screen under KEY and its labels open."""
    window = make_window(qtbot, (1300, 850))
    window.set_layout("1x3")
    ann = window.annotation
    window.state.set_volume(ct_volume(), KEY)
    assert ann.editor is not None
    ann.dock.raise_()
    qtbot.wait(20)
    yield window, ann
    ann.shutdown()


def click(qtbot, widget: QtWidgets.QWidget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def click_cell(qtbot, table: stb.SegmentTable, value: int, column: int) -> None:
    row = table.values.index(value)
    rect = table.visualRect(table.model().index(row, column))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def paint(
    window: MainWindow, a: tuple[float, float], b: tuple[float, float], plane: Plane = Plane.AXIAL
) -> None:
    """Drag with the left button from pixel (row, col) a to b on `plane`'s view."""
    view = next(v for v in window.views if v.plane == plane)

    def screen(row: float, col: float) -> QtCore.QPoint:
        p = view.pixel_to_mm(row, col)
        return view_to_widget(view, view.vb, p.x(), p.y())

    drag(view.viewport(), screen(*a), screen(*b), steps=6)

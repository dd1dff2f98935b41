"""`medview PATH` start-up (issue 19): one slice of the study is drawn before the panels
are built and before the scan, then the study opens as it always did."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
from dicom_factory import write_ct_series

from medview.app import create_main_window, read_preview_soon
from medview.ui.main_window import PREVIEW_WAIT_MS
from medview.viewer.planes import Plane
from tests.ui.main_window_fixtures import LOAD_TIMEOUT_MS


def _page_image(window) -> np.ndarray | None:
    return window.grid._pages[Plane.AXIAL].image_item.image


def test_preview_is_drawn_before_the_panels_then_the_study_opens(qtbot, data_dir, tmp_path):
    written = write_ct_series(tmp_path / "study", n=7)
    preview = read_preview_soon([str(tmp_path / "study")])
    assert preview is not None
    seen_at_build: list[np.ndarray | None] = []
    window = create_main_window([str(tmp_path / "study")], preview=preview)
    qtbot.addWidget(window)
    build = window.build_panels
    window.build_panels = lambda: (seen_at_build.append(_page_image(window)), build())
    with qtbot.waitSignal(
        window.image_shown, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda kind: kind == "volume"
    ):
        pass
    (drawn,) = seen_at_build
    assert drawn is not None  # the middle file's slice, turned for the screen
    assert sorted(drawn.shape) == sorted(written.expected_array[3].shape)
    np.testing.assert_array_equal(window.state.volume.array, written.expected_array)
    assert not window.grid.loading
    assert window.dock("Studies") is not None  # the panels were built after the preview


def test_a_folder_without_images_ends_in_one_sentence_and_no_preview(qtbot, data_dir, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    preview = read_preview_soon([str(folder)])
    window = create_main_window([str(folder)], preview=preview)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.last_message is not None, timeout=LOAD_TIMEOUT_MS)
    assert window.last_message.text().startswith("No image series were found there")
    assert not window.grid.loading


def test_closed_before_the_panels_are_built_saves_and_shuts_down(qtbot, data_dir, tmp_path):
    write_ct_series(tmp_path / "study", n=3)
    window = create_main_window([str(tmp_path / "study")], preview=Future())  # never read
    qtbot.addWidget(window)
    assert window.dock("Studies") is None
    opened: list[list[str]] = []
    window.open_paths = lambda paths, preview=None: opened.append(paths)
    assert window.close()
    assert window.dock("Studies") is not None and window.settings.window_state
    qtbot.wait(PREVIEW_WAIT_MS + 300)  # the wait for a preview that never came runs out
    assert opened == []  # a closed window opens nothing afterwards

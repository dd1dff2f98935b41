"""The Warnings panel on pydicom's real DICOMDIR (issue 20, points 4 and 5): a series split
into stacks is one line that names what differs, not one line per stack; Routine Brain opens
as separate stacks at their true positions, not one volume centimetres off."""

from __future__ import annotations

import os

import numpy as np
from pydicom.data import get_testdata_file

from tests.ui.main_window_fixtures import LOAD_TIMEOUT_MS, open_and_wait
from tests.ui.test_study_browser import double_click

UID_BRAIN = "1.3.6.1.4.1.5962.1.1.0.0.0.1196530851.28319.0.2"


def test_split_series_warning_once_per_series_naming_the_orientations(qtbot, window):
    open_and_wait(qtbot, window, [get_testdata_file("DICOMDIR")])
    messages = window.warnings.messages()
    pilot = [m for m in messages if "T/S/C RF FAST PILOT" in m]
    # two pilot series of three localizers each: one line per series, naming the planes
    assert len(pilot) == 2 and len(set(pilot)) == 1
    assert (
        "different orientation (stack 1: coronal, 1 image; stack 2: sagittal, 1 image; "
        "stack 3: axial, 1 image)" in pilot[0]
    )
    brain = [m for m in messages if "Routine Brain" in m]
    assert len(brain) == 1 and "2 separate stacks at their true positions" in brain[0]
    assert all(m.count("image(s) of") == 0 for m in messages)
    shot = os.environ.get("MEDVIEW_SCREENSHOT_DIR")
    if shot:
        window.dock("Warnings").raise_()
        window.grab().save(os.path.join(shot, "split-series-warnings.png"))


def test_routine_brain_stacks_open_with_every_slice_where_its_file_says(qtbot, window):
    open_and_wait(qtbot, window, [get_testdata_file("DICOMDIR")])
    first, second = f"{UID_BRAIN}#stack 1 of 2", f"{UID_BRAIN}#stack 2 of 2"
    # the newest study of the first patient opens by itself: the brain's is an earlier one
    for key, n in ((first, 3), (second, 1)):
        window.browser.tree.scrollToItem(window.browser.item(key))
        with qtbot.waitSignal(
            window.image_shown,
            timeout=LOAD_TIMEOUT_MS,
            check_params_cb=lambda kind: kind == "volume",
        ):
            double_click(window.browser, key)
        assert window.state.series_key == key
        _assert_true_positions(window, key, n)


def _assert_true_positions(window, key: str, n: int) -> None:
    stack, volume = window.browser.series(key), window.state.volume
    assert volume.shape[0] == n
    for k, f in enumerate(stack.slices):
        np.testing.assert_allclose(
            volume.affine[:3, :3] @ [k, 0, 0] + volume.affine[:3, 3], f.position_lps, atol=1e-4
        )

"""Progressive AI results in the panel, with real widgets: the slab around the reader's
slice is drawn (overlays and findings, marked partial) before the whole result replaces
it, on the slab's slices only, for the bundled-style 2.5D model and an imported 3D (MONAI
runner) model; the reader scrolls meanwhile; a cancel leaves no partial result and brings
back what was shown before."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6 import QtCore

from medview.ai.models import registry
from medview.ai.runtime.volume_models import VolumeModel
from medview.core.volume import Volume
from medview.viewer.planes import Plane
from tests.ai.seg_models import write_bright_model_3d
from tests.ui.ai_panel_fixtures import blobs
from tests.ui.qt_input import wheel
from tests.ui.test_ai_panel import RUN_MS, click_run, count_predictions, no_worker_left

Qt = QtCore.Qt
FOCUS = 24  # the slice the reader looks at when Run is pressed


@pytest.fixture
def ai_volume() -> Volume:
    """48 slices with a ball near the top, one at the focus and one near the bottom: only
    the middle one lies in the focus slab."""
    return blobs(48, (((6, 20, 20), 6, 300), ((FOCUS, 44, 40), 8, 150), ((42, 16, 48), 5, 80)))


def choose(panel, kind: str, monkeypatch) -> None:
    """Pick the 2.5D bright-seg or the 3D bright-3d, each slowed so the run takes seconds."""
    if kind == "3d":
        write_bright_model_3d(registry.user_models_dir() / "bright-3d" / "1.0")
        panel.refresh_models(select="bright-3d:1.0")
        real = VolumeModel.forward

        def slow(self, x):
            time.sleep(0.4)
            return real(self, x)

        monkeypatch.setattr(VolumeModel, "forward", slow)
    else:
        count_predictions(monkeypatch, delay_s=0.08)
    assert panel.current_entry().ref == f"bright-{'3d' if kind == '3d' else 'seg'}:1.0"


def record(panel) -> list:
    """(what, span, slices with mask, layer names, findings' slice ranges) per result shown."""
    seen = []

    def shown(what, results):
        mask = np.asarray(results.mask_layer.array)
        seen.append(
            (
                what,
                results.partial,
                set(np.flatnonzero(mask.any(axis=(1, 2))).tolist()),
                [x.name for x in panel.state.layers],
                sorted(f.slice_range for f in results.findings),
            )
        )

    panel.partial_shown.connect(lambda r: shown("partial", r))
    panel.result_shown.connect(lambda r: shown("whole", r))
    return seen


def focus_on(state, k: int) -> None:
    ijk = state.cursor_ijk.copy()
    ijk[0] = k
    state.set_cursor_index(ijk)


@pytest.mark.parametrize("kind", ["2.5d", "3d"])
def test_the_focus_slab_is_drawn_first_then_the_whole_result(
    qtbot, viewer, monkeypatch, tmp_path, kind
):
    state, views, panel = viewer
    choose(panel, kind, monkeypatch)
    focus_on(state, FOCUS)
    seen = record(panel)
    with qtbot.waitSignal(panel.partial_shown, timeout=RUN_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.busy()  # the rest is still running
    what, (first, last), slices, names, ranges = seen[0]
    assert what == "partial" and first <= FOCUS - 8 and last > FOCUS + 8
    assert slices and slices <= set(range(first, last))  # drawn on the slab's slices only
    assert len(ranges) == 1 and first <= ranges[0][0] <= FOCUS <= ranges[0][1] < last
    assert all(f"(partial: slices {first + 1}–{last})" in n for n in names)
    assert panel.status.text().startswith(f"AI: slices {first + 1}–{last} done, rest running")
    assert panel.results is None and panel.table.proxy.rowCount() == 1
    assert "partial" in panel.header.text()
    axial = views[0]
    panel.window().grab().save(str(tmp_path / f"partial-{kind}.png"))
    # the reader scrolls while the model runs: the view follows, drawing the partial overlay
    before = state.slice_index(Plane.AXIAL)
    wheel(axial.viewport(), (100, 100), -2)
    assert state.slice_index(Plane.AXIAL) == before + 2 and panel.busy()
    with qtbot.waitSignal(panel.result_shown, timeout=RUN_MS):
        pass
    assert [s[0] for s in seen] == ["partial", "whole"]
    _, span, slices, names, whole = seen[1]
    assert span is None and len(whole) == 3 and ranges[0] in whole  # the slab's, then all
    assert {k for r in whole for k in r} <= slices
    assert names == ["AI " + panel.results.ref + s for s in (" — probability", " — findings")]
    assert panel.partial is None and panel.table.proxy.rowCount() == 3
    no_worker_left(qtbot, panel)


def test_cancel_after_the_slab_leaves_no_partial_result_and_restores_the_earlier_one(
    qtbot, viewer, monkeypatch
):
    state, _views, panel = viewer
    focus_on(state, FOCUS)
    earlier = click_run(qtbot, panel)  # bright-seg, no uncertainty: the result kept on screen
    names = [x.name for x in state.layers]
    count_predictions(monkeypatch, delay_s=0.2)
    panel.tta_box.setChecked(True)  # another run (with uncertainty), not the kept result
    with qtbot.waitSignal(panel.partial_shown, timeout=RUN_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.results is None and earlier.mask_layer not in state.layers
    panel.decide([panel.partial.findings[0].id], "accepted")  # not on a partial result
    assert panel.status.text().startswith("Decide once the whole series is done")
    with qtbot.waitSignal(panel.worker.finished, timeout=5000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    no_worker_left(qtbot, panel)
    assert panel.partial is None and panel.results is earlier
    assert [x.name for x in state.layers] == names  # no "(partial…)" layer left
    assert panel.table.proxy.rowCount() == 3 and "Cancelled" in panel.status.text()

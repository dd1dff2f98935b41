"""Going to an AI finding in the main window on a demo study (issue 20, point 6): the finding
fills about a third of the view (or the zoom stops at 4 screen pixels per image pixel), the
window its label calls for is set (lung for a lung nodule), and a reader who turns that off
keeps their window, also after a restart (the choice is kept in the settings)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from medview.ai.models import registry
from medview.ai.runtime.inference import clear_kept
from medview.viewer.ai_results import FOCUS_FRACTION, MAX_FOCUS_ZOOM
from tests.ai.seg_models import write_bright_model
from tests.ui.main_window_fixtures import make_window, open_and_wait
from tests.ui.test_ai_panel import click_row, click_run

torch.set_num_threads(1)


@pytest.fixture
def bright_only(tmp_path, monkeypatch, data_dir):
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    clear_kept()
    write_bright_model(registry.user_models_dir() / "bright-seg" / "1.0")
    yield
    clear_kept()


def _extent_mm(finding, view) -> float:
    pm = view.plane_map
    first, last = finding.bbox_index
    corners = [
        pm.from_index(np.asarray(c, float))[1:]
        for c in itertools.product(*zip(first, last, strict=True))
    ]
    rows, cols = [c[0] for c in corners], [c[1] for c in corners]
    return max(
        (max(cols) - min(cols) + 1) * pm.pixel_mm[1], (max(rows) - min(rows) + 1) * pm.pixel_mm[0]
    )


def test_a_finding_fills_a_third_of_the_view_in_its_labels_window(qtbot, demo, bright_only):
    window = make_window(qtbot, (1400, 900))
    open_and_wait(qtbot, window, [str(demo.series_dir)])
    window.dock("AI").raise_()
    shown = click_run(qtbot, window.ai)
    view = window.grid.focused_view
    # the CT chest hanging protocol opens the demo in the lung window: start from another
    window.state.set_window(40, 400, "Abdomen")
    filled = capped = 0
    for finding in shown.findings[:8]:
        click_row(qtbot, window.ai, finding.id)
        (x0, x1), (y0, y1) = view.vb.viewRange()
        share = _extent_mm(finding, view) / min(x1 - x0, y1 - y0)
        per_mm = 1 / view.vb.viewPixelSize()[0]
        at_cap = per_mm == pytest.approx(MAX_FOCUS_ZOOM / min(view.plane_map.pixel_mm), rel=0.03)
        assert share == pytest.approx(FOCUS_FRACTION, rel=0.05) or (at_cap and share < 0.34)
        filled += not at_cap
        capped += at_cap
        assert window.state.window.name == "Lung"  # bright-seg's label 1: lung nodule
    assert filled and capped  # both cases were met on the demo's findings
    window.close()


def test_the_reader_turns_it_off_and_it_stays_off(qtbot, demo, bright_only):
    window = make_window(qtbot, (1400, 900))
    open_and_wait(qtbot, window, [str(demo.series_dir)])
    window.dock("AI").raise_()
    shown = click_run(qtbot, window.ai)
    box = window.ai.window_box
    assert box.isChecked()
    box.click()  # as a mouse click does
    window.state.set_window(40, 400, "Abdomen")
    click_row(qtbot, window.ai, shown.findings[0].id)
    assert window.state.window.name == "Abdomen"
    window.close()
    again = make_window(qtbot, (1400, 900))  # a restart on the same settings
    assert not again.ai.window_box.isChecked()
    again.close()

"""AI findings into the labels from the AI panel: "Accept into labels" copies one finding's
voxels into a segment named after its label that remembers the model, not reviewed until a
person confirms or edits it; "Accept all" takes every finding not rejected; the findings'
decisions become "accepted". Screenshots of the Segments panel with a painted segment and an
accepted finding go to tmp for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6 import QtCore, QtWidgets

from medview.ai.models import registry
from medview.ai.runtime.inference import clear_kept
from medview.ui.panels import findings_table as ft
from medview.ui.theme import apply_dark_theme
from tests.ai.seg_models import write_bright_model
from tests.ui.annotation_fixtures import click, paint
from tests.ui.main_window_fixtures import make_window
from tests.ui.test_ai_panel import KEY, blobs

torch.set_num_threads(1)
Qt = QtCore.Qt
RUN_MS = 30_000
SHOTS = Path(os.environ.get("MEDVIEW_SCREENSHOTS", "/tmp/medview-shots"))


@pytest.fixture
def with_ai(qtbot, data_dir, monkeypatch):
    """A main window on blobs() with bright-seg's result shown in the AI panel."""
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: data_dir / "no-bundled")
    clear_kept()
    write_bright_model(registry.user_models_dir() / "bright-seg" / "1.0")
    registry.activate("bright-seg", "1.0")
    window = make_window(qtbot, (1400, 900))
    window.set_layout("1x3")
    ann = window.annotation
    window.ai.refresh_models()
    window.state.set_volume(blobs(), KEY)
    window.dock("AI").raise_()
    with qtbot.waitSignal(window.ai.result_shown, timeout=RUN_MS):
        click(qtbot, window.ai.run_button)
    yield window, ann
    window.ai.shutdown()
    ann.shutdown()
    clear_kept()


def select(qtbot, window, finding_id: int) -> None:
    table = window.ai.table
    index = table.proxy.index(table.proxy_row(finding_id), ft.LABEL)
    qtbot.mouseClick(
        table.view.viewport(), Qt.MouseButton.LeftButton, pos=table.view.visualRect(index).center()
    )


def test_accept_one_finding_into_labels_then_confirm(qtbot, with_ai):
    window, ann = with_ai
    ed, results = ann.editor, window.ai.results
    finding = max(results.findings, key=lambda f: f.voxel_count)
    select(qtbot, window, finding.id)
    click(qtbot, window.ai.table.label_buttons["selected"])
    (seg,) = ed.label_map.segments.values()
    assert seg.name == "lung nodule" and seg.made_by == "bright-seg:1.0" and not seg.reviewed
    assert window.state.layers[-1] is ed.layer  # the reader's labels over the AI's layers
    assert int(np.count_nonzero(ed.label_map.array == seg.value)) == finding.voxel_count
    assert results.finding(finding.id).decision == "accepted"
    assert (
        window.ai.table.proxy.index(window.ai.table.proxy_row(finding.id), ft.DECISION).data()
        == "✓ accepted"
    )
    panel = ann.panel
    ann.dock.raise_()
    assert "not reviewed" in panel.detail.text() and "bright-seg:1.0" in panel.detail.text()
    assert ed.undo_name.startswith("Accept lung nodule")
    button = panel.table.confirm_button(seg.value)
    qtbot.waitUntil(button.isVisible, timeout=10_000)
    shot(panel, "segments-ai-unreviewed.png")
    click(qtbot, button)
    assert ed.segment(seg.value).reviewed and panel.table.confirm_button(seg.value) is None
    assert "reviewed" in panel.detail.text() and "not reviewed" not in panel.detail.text()


def test_accept_all_skips_rejected_and_an_edit_reviews(qtbot, with_ai):
    window, ann = with_ai
    ed, results = ann.editor, window.ai.results
    first, *rest = results.findings
    window.ai.decide([first.id], "rejected")
    click(qtbot, window.ai.table.label_buttons["all"])
    (seg,) = ed.label_map.segments.values()
    assert int(np.count_nonzero(ed.label_map.array == seg.value)) == sum(
        f.voxel_count for f in rest
    )
    assert [f.decision for f in results.findings] == ["rejected"] + ["accepted"] * len(rest)
    ann.dock.raise_()
    ed.set_active(seg.value)
    click(qtbot, ann.panel.tools.buttons["brush"])
    ann.panel.tools.size.setValue(4.0)
    native = next(p for p, m in window.state.maps.items() if m.normal_axis == 0)
    paint(window, (10, 10), (10, 20), native)  # a person's edit reviews the AI segment
    assert ed.segment(seg.value).reviewed
    ann.panel.add_segment()
    ann.panel.tools.pick("brush")
    ann.panel.tools.size.setValue(10.0)
    paint(window, (40, 40), (50, 50), native)
    assert np.count_nonzero(ed.label_map.array == ed.active) > 40
    shot(ann.panel, "segments-painted-and-ai.png")
    shot(window, "window-painted-and-ai.png")


def shot(widget, name: str) -> None:
    """Grab `widget` as the app shows it (dark theme), then put the test's look back."""
    app = QtWidgets.QApplication.instance()
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    apply_dark_theme(app)
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        assert widget.grab().save(str(SHOTS / name))
    finally:
        app.setStyle(style)
        app.setPalette(palette)
        app.setStyleSheet(sheet)

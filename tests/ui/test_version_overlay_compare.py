"""The comparison view of two model versions on the open study, with real clicks, wheel and
drags: from the Versions list ("Compare on this study"), both versions run as one job, each
view shows its version's mask (and the other's outline), the views scroll, window and zoom
together, the findings only one version has are listed and centre both views, the metrics
stand side by side; no study gives one sentence; cancel leaves no thread; a second
comparison reuses the kept results. Last, a screenshot with the bundled lesion-seg 1.0 and
1.1 on a 40-slice demo study."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6 import QtCore

from medview.ai.models import registry
from medview.ai.runtime.inference import clear_kept
from medview.ai.runtime.loading import LoadedModel
from medview.io.dicom.index import scan
from medview.io.dicom.volume import load_series
from medview.ui.panels.model_versions import ModelVersions
from medview.ui.version_overlay_compare import VersionOverlayCompare
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ai.seg_models import BRIGHT_NAME, bright_unet
from tests.ai.tiny_models import card_dict, write_folder
from tests.ui.qt_input import drag, grab_rgb, shown, wheel

torch.set_num_threads(1)
Qt = QtCore.Qt
LEFT = Qt.MouseButton.LeftButton
RUN_MS = 60_000
SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))


def write_version(version: str, nodule_bias: float, **card: object) -> Path:
    """bright-seg with label 1's bias moved: a lower bias lights up more and larger
    nodules, so two versions' masks differ where the image is moderately bright."""
    net = bright_unet()
    with torch.no_grad():
        net.model[2].conv.bias[1] = nodule_bias
    data = card_dict(BRIGHT_NAME, version, input_size=None, **card)
    return write_folder(registry.user_models_dir() / BRIGHT_NAME / version, net, card=data)


@pytest.fixture
def versions(tmp_path, monkeypatch):
    """bright-seg 1.0 and its "fine-tune" 1.1 (parent 1.0, metrics on the same validation
    studies), and no bundled models."""
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    clear_kept()
    write_version("1.0", -6.5, validation={"dice_mean": 0.61})
    write_version(
        "1.1",
        -5.0,
        parent_version="1.0",
        validation={
            "dice_mean": 0.72,
            "fine_tune": {
                "parent": f"{BRIGHT_NAME}:1.0",
                "parent_metrics": {"dice_mean": 0.58},
                "val_studies": ["a", "b"],
                "val_hash": "h",
            },
        },
    )
    registry.activate(BRIGHT_NAME, "1.0")
    yield
    clear_kept()


@pytest.fixture(scope="module")
def study(demo):
    series = scan([demo.series_dir]).studies[0].series[0]
    return load_series(series), series.key


@pytest.fixture
def panel(qtbot, versions, study):
    state = ViewerState()
    state.set_volume(*study)
    state.set_slice(Plane.AXIAL, 10)
    p = shown(qtbot, ModelVersions(), 640, 300)
    p.set_viewer(state)
    p.show_model(BRIGHT_NAME)
    p.select("1.0", "1.1")
    return p


def start(qtbot, panel: ModelVersions) -> VersionOverlayCompare:
    qtbot.mouseClick(panel.study_button, LEFT)
    window = panel.on_study
    assert window is not None
    qtbot.addWidget(window)
    qtbot.waitExposed(window)
    return window


def wait_done(qtbot, window: VersionOverlayCompare) -> None:
    qtbot.waitUntil(lambda: all(window.runs) and not window.busy(), timeout=RUN_MS)
    qtbot.waitUntil(lambda: window._pool.activeThreadCount() == 0, timeout=5000)


def test_both_versions_on_the_open_study_side_by_side(qtbot, panel):
    window = start(qtbot, panel)
    assert window.busy() and window.cancel_button.isEnabled()
    wait_done(qtbot, window)
    a, b = window.runs
    assert (a.result.card.ref, b.result.card.ref) == ("bright-seg:1.0", "bright-seg:1.1")
    assert np.any(a.label_map != b.label_map)  # the versions differ...
    assert a.label_map.sum() < b.label_map.sum()  # ...B (lower bias) finds more
    # each view: its own mask, then the other's outline on top, each naming its model
    for side, state in enumerate(window.states):
        own, other = state.layers
        assert own.array is window.runs[side].label_map and not own.outline
        assert other.array is window.runs[1 - side].label_map and other.outline
        assert own.made_by == window.runs[side].result.card.ref
    # what is drawn differs where the masks differ: a slice where they do
    k = int(np.argmax((a.label_map != b.label_map).sum(axis=(1, 2))))
    window.states[0].set_slice(Plane.AXIAL, k)
    qtbot.wait(50)
    drawn = [v.overlay_items[0].image for v in window.views]
    assert np.any(drawn[0] != drawn[1])
    assert np.array_equal(drawn[0], window.views[0].plane_map.image(a.label_map, k))
    # counts, metrics and the disclaimer
    assert f"{len(a.result.findings)} finding(s)" in window.titles[0].text()
    assert f"{len(b.result.findings)} finding(s)" in window.titles[1].text()
    assert "not a diagnosis" in window.header.text() and "bright-seg:1.1" in window.header.text()
    assert window.value("findings on this study", 1) == str(len(a.result.findings))
    assert window.value("findings on this study", 2) == str(len(b.result.findings))
    assert window.value("dice_mean", 1) == "0.58"  # the parent on the fine-tune's studies
    assert window.value("dice_mean", 2) == "0.72"
    assert "2 validation studies" in window.metrics_note.text()
    # the findings only one version has; a click centres both views on it
    assert window.diffs and all(d.side == 1 for d in window.diffs)
    assert window.diff_list.count() == len(window.diffs)
    row = len(window.diffs) - 1
    finding = window.diffs[row].finding
    item = window.diff_list.item(row)
    qtbot.mouseClick(
        window.diff_list.viewport(), LEFT, pos=window.diff_list.visualItemRect(item).center()
    )
    for state in window.states:
        assert state.slice_index(Plane.AXIAL) == round(finding.centroid_index[0])
    ranges = [v.vb.viewRange() for v in window.views]
    assert np.allclose(ranges[0], ranges[1])
    assert window.views[0].zoom() > 1.5  # zoomed in on a small finding
    assert "only B" in window.status.text()
    window.close()
    assert window._pool.activeThreadCount() == 0


def test_the_views_scroll_window_and_zoom_together(qtbot, panel):
    window = start(qtbot, panel)
    wait_done(qtbot, window)
    va, vb = window.views
    sa, sb = window.states
    before = sa.slice_index(Plane.AXIAL)
    wheel(va.viewport(), (100, 100), -3)  # scroll A...
    assert sa.slice_index(Plane.AXIAL) == before + 3
    assert sb.slice_index(Plane.AXIAL) == before + 3  # ...B follows
    wheel(vb.viewport(), (100, 100), 1)  # and the other way round
    assert sa.slice_index(Plane.AXIAL) == before + 2
    width = sa.window.width
    drag(vb.viewport(), (100, 100), (160, 100))  # window/level on B
    assert sb.window.width > width and sa.window == sb.window
    zoom = vb.zoom()
    wheel(va.viewport(), (120, 120), 2, Qt.KeyboardModifier.ControlModifier)  # zoom A
    qtbot.wait(20)
    assert vb.zoom() > 1.1 * zoom  # B zooms with it
    assert np.allclose(va.vb.viewRange(), vb.vb.viewRange())
    window.mask_combo.setCurrentIndex(1)  # outline
    window.mask_combo.activated.emit(1)
    assert sa.layers[0].outline and sb.layers[0].outline
    window.other_box.setChecked(False)
    assert not sa.layers[1].visible and not sb.layers[1].visible
    window.plane_combo.setCurrentIndex(1)
    window.plane_combo.activated.emit(1)
    assert [v.plane for v in window.views] == [Plane.CORONAL, Plane.CORONAL]
    wheel(window.views[0].viewport(), (100, 100), -1)
    assert sa.slice_index(Plane.CORONAL) == sb.slice_index(Plane.CORONAL)
    window.close()


def test_no_study_open_says_so_in_one_sentence(qtbot, versions):
    p = shown(qtbot, ModelVersions(), 640, 300)
    p.set_viewer(ViewerState())
    p.show_model(BRIGHT_NAME)
    with qtbot.waitSignal(p.message) as said:
        qtbot.mouseClick(p.study_button, LEFT)
    text = said.args[0]
    assert text.startswith("Open a study first") and text.count(".") == 1
    assert p.note.text() == text and p.on_study is None


def test_the_compare_dialog_starts_it_too(qtbot, panel):
    dialog = panel.compare()
    qtbot.addWidget(dialog)
    dialog.b.setCurrentText("bright-seg:1.0")
    dialog.a.setCurrentText("bright-seg:1.1")
    qtbot.mouseClick(dialog.study_button, LEFT)
    window = panel.on_study
    qtbot.addWidget(window)
    assert [e.ref for e in window.entries] == ["bright-seg:1.1", "bright-seg:1.0"]
    window.cancel()
    qtbot.waitUntil(lambda: not window.busy(), timeout=RUN_MS)
    window.close()


def test_cancel_stops_the_job_and_leaves_no_thread(qtbot, panel, monkeypatch):
    real = LoadedModel.predict

    def slow(self, batch):
        time.sleep(0.2)
        return real(self, batch)

    monkeypatch.setattr(LoadedModel, "predict", slow)
    window = start(qtbot, panel)
    qtbot.waitUntil(lambda: window.progress.value() > 0, timeout=RUN_MS)
    sa = window.states[0]
    before = sa.slice_index(Plane.AXIAL)
    wheel(window.views[0].viewport(), (100, 100), -1)  # the views stay usable meanwhile
    assert sa.slice_index(Plane.AXIAL) == before + 1 and window.busy()
    t0 = time.perf_counter()
    with qtbot.waitSignal(window.worker.finished, timeout=5000):
        qtbot.mouseClick(window.cancel_button, LEFT)
    assert time.perf_counter() - t0 < 2.0
    qtbot.waitUntil(lambda: window._pool.activeThreadCount() == 0, timeout=5000)
    assert "Cancelled" in window.status.text() and window.run_button.isEnabled()
    assert not all(window.runs)
    monkeypatch.setattr(LoadedModel, "predict", real)
    qtbot.mouseClick(window.run_button, LEFT)  # Run finishes what is missing
    wait_done(qtbot, window)
    window.close()
    clear_kept()
    monkeypatch.setattr(LoadedModel, "predict", slow)
    window = start(qtbot, panel)  # closed while it runs: the job ends with the window
    qtbot.waitUntil(lambda: window.progress.value() > 0, timeout=RUN_MS)
    pool = window._pool
    t0 = time.perf_counter()
    window.close()
    assert pool.activeThreadCount() == 0 and time.perf_counter() - t0 < 2.0
    qtbot.waitUntil(lambda: panel.on_study is None, timeout=5000)  # and it is gone


def test_a_version_that_fails_to_load_is_one_sentence_and_the_other_stays(qtbot, panel):
    write_folder(
        registry.user_models_dir() / BRIGHT_NAME / "1.2",
        card=card_dict(BRIGHT_NAME, "1.2", input_size=None),
        payload=b"not safetensors at all",
    )
    panel.show_model(BRIGHT_NAME)
    panel.select("1.0", "1.2")
    window = start(qtbot, panel)
    qtbot.waitUntil(lambda: not window.busy(), timeout=RUN_MS)
    text = window.status.text()
    assert "weights.safetensors" in text and "\n" not in text and "Traceback" not in text
    assert window.runs[0] is not None and window.runs[1] is None
    assert "not run" in window.titles[1].text() and window.run_button.isEnabled()
    assert window.diff_list.count() == 0 and window.value("findings on this study", 2) == "—"
    window.close()


def test_a_second_comparison_reuses_the_kept_results(qtbot, panel, monkeypatch):
    wait_done(qtbot, start(qtbot, panel))
    calls = []
    real = LoadedModel.predict
    monkeypatch.setattr(
        LoadedModel, "predict", lambda self, batch: calls.append(1) or real(self, batch)
    )
    again = start(qtbot, panel)  # replaces the first window
    wait_done(qtbot, again)
    assert calls == [] and all(r.result.reused for r in again.runs)
    assert "kept result" in again.status.text()
    again.close()


def test_in_the_main_window_the_ai_panels_kept_result_is_reused(qtbot, versions, demo):
    from tests.ui.main_window_fixtures import make_window, open_and_wait

    window = make_window(qtbot, (1200, 800))
    versions_list = window.training.versions
    versions_list.show_model(BRIGHT_NAME)
    versions_list.select("1.0", "1.1")
    qtbot.mouseClick(versions_list.study_button, LEFT)  # nothing open yet
    assert window.status_label.text().startswith("Open a study first")
    open_and_wait(qtbot, window, [str(demo.series_dir)])
    window.dock("AI").raise_()
    with qtbot.waitSignal(window.ai.result_shown, timeout=RUN_MS):
        qtbot.mouseClick(window.ai.run_button, LEFT)  # bright-seg:1.0, the active one
    compare = start(qtbot, versions_list)
    wait_done(qtbot, compare)
    assert [r.result.reused for r in compare.runs] == [True, False]
    assert compare.volume is window.state.volume  # the open study, not a copy
    main_slice = window.state.slice_index(Plane.AXIAL)
    wheel(compare.views[0].viewport(), (100, 100), -2)  # the main viewer stays as it was
    assert window.state.slice_index(Plane.AXIAL) == main_slice
    compare.close()
    window.close()


@pytest.fixture(scope="module")
def demo40(tmp_path_factory):
    from medview.demo import generate_demo_study

    return generate_demo_study(tmp_path_factory.mktemp("demo40"), seed=7, slices=40)


def test_screenshot_bundled_versions(qtbot, tmp_path, monkeypatch, demo40):
    """lesion-seg 1.0 and 1.1 (bundled) on a 40-slice demo study, saved for a look."""
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    clear_kept()
    series = scan([demo40.series_dir]).studies[0].series[0]
    state = ViewerState()
    state.set_volume(load_series(series), series.key)
    p = shown(qtbot, ModelVersions(), 640, 300)
    p.set_viewer(state)
    p.show_model("lesion-seg")
    p.select("1.0", "1.1")
    window = start(qtbot, p)
    window.resize(1400, 760)
    wait_done(qtbot, window)
    qtbot.wait(100)
    window.grab().save(str(SHOTS / "version_overlay_compare.png"))
    rgb = grab_rgb(window.views[0])
    assert rgb.std() > 10  # an image was drawn
    if window.diffs:
        window.go_to(0)
        qtbot.wait(100)
        window.grab().save(str(SHOTS / "version_overlay_compare_finding.png"))
    window.close()
    clear_kept()

"""AIPanel with real clicks: run a (tiny, hand-set) model on a volume with known blobs, see
its findings and overlays in every plane, move the threshold without running the model
again, click through the findings, accept and reject them (kept with the series), cancel a
run, refuse a model that does not fit, explain a slice, and get from the GUI exactly what
the job gives directly. Last, the panel in the main window on a demo study."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from PySide6 import QtCore, QtGui, QtWidgets

from medview.ai.models import registry
from medview.ai.runtime.inference import clear_kept
from medview.ai.runtime.loading import LoadedModel
from medview.core.jobs import CancelToken, JobContext
from medview.io.saved import findings_file as findings_path
from medview.jobs.inference import infer_job
from medview.ui.panels import findings_table as ft
from medview.ui.panels.ai_panel import AIPanel
from medview.viewer.ai_results import focus_rect_mm
from medview.viewer.finding_store import same_finding
from medview.viewer.planes import Plane
from tests.ai.seg_models import bright_unet, write_bright_model
from tests.ai.tiny_models import card_dict, write_folder
from tests.ui.ai_panel_fixtures import KEY, blobs
from tests.ui.qt_input import wheel

torch.set_num_threads(1)
Qt = QtCore.Qt
RUN_MS = 30_000


def click_run(qtbot, panel: AIPanel):
    with qtbot.waitSignal(panel.result_shown, timeout=RUN_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    return panel.results


def click_row(qtbot, panel: AIPanel, finding_id: int, button=Qt.MouseButton.LeftButton):
    table = panel.table
    index = table.proxy.index(table.proxy_row(finding_id), ft.LABEL)
    pos = table.view.visualRect(index).center()
    qtbot.mouseClick(table.view.viewport(), button, pos=pos)
    return pos


def count_predictions(monkeypatch, delay_s: float = 0.0) -> list:
    calls = []
    real = LoadedModel.predict

    def counted(self, batch):
        calls.append(len(batch))
        time.sleep(delay_s)
        return real(self, batch)

    monkeypatch.setattr(LoadedModel, "predict", counted)
    return calls


def no_worker_left(qtbot, panel: AIPanel) -> None:
    qtbot.waitUntil(lambda: not panel.busy() and panel._pool.activeThreadCount() == 0, timeout=5000)


def test_run_shows_findings_and_overlays_in_every_plane(qtbot, viewer):
    state, views, panel = viewer
    assert panel.model_combo.currentText().startswith("bright-seg:1.0")
    seen = []
    panel.progress.valueChanged.connect(seen.append)
    shown = click_run(qtbot, panel)
    assert len(set(v for v in seen if v > 0)) >= 4  # progress per batch (16 slices)
    assert len(shown.findings) == 3 and panel.table.proxy.rowCount() == 3
    assert {f.label_name for f in shown.findings} == {"lung nodule"}
    assert [x.name for x in state.layers] == [
        "AI bright-seg:1.0 — probability",
        "AI bright-seg:1.0 — findings",
    ]
    assert "not a diagnosis" in panel.header.text() and "bright-seg:1.0" in panel.header.text()
    assert "not a diagnosis" in panel.display.legend.text()
    click_row(qtbot, panel, shown.findings[1].id)
    for view in views:  # the finding's mask is drawn in each plane, over the image
        assert len(view.overlay_items) == 2
        drawn = view.overlay_items[1].image
        assert drawn.shape == view.image_item.image.shape and (drawn == 1).any()
    no_worker_left(qtbot, panel)


def test_device_list_offers_what_this_machine_has(qtbot, viewer):
    _, _, panel = viewer
    combo = panel.device_combo
    assert [combo.itemData(i) for i in range(combo.count())] == ["auto", "cpu", "cuda", "mps"]
    assert panel._devices is None  # torch is not loaded for it before the reader asks
    items = combo.model()
    assert items.item(2).toolTip() == "Looking for GPUs…"
    qtbot.mouseClick(combo, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: items.item(2).toolTip() != "Looking for GPUs…", timeout=RUN_MS)
    combo.hidePopup()
    enabled = {combo.itemData(i) for i in range(combo.count()) if items.item(i).isEnabled()}
    assert {"auto", "cpu"} <= enabled
    assert ("cuda" in enabled) == torch.cuda.is_available()


def test_threshold_moves_mask_and_table_without_the_model(qtbot, viewer, monkeypatch):
    _state, _views, panel = viewer
    calls = count_predictions(monkeypatch)
    shown = click_run(qtbot, panel)
    ran, before = len(calls), shown.mask_layer.array.copy()
    rows = panel.table.proxy.rowCount()
    picked = max(shown.findings, key=lambda f: f.volume_ml)
    click_row(qtbot, panel, picked.id)
    moves = []
    panel.display.mask_moved.connect(moves.append)
    panel.display.slider.setFocus()
    for _ in range(6):  # 0.50 -> 0.20 in page steps of 0.05
        qtbot.keyClick(panel.display.slider, Qt.Key.Key_PageDown)
    assert panel.display.value.text() == "0.20"
    qtbot.waitUntil(lambda: shown.result.threshold == pytest.approx(0.2), timeout=5000)
    assert len(calls) == ran  # no model run
    assert len(moves) == 1  # six key presses, one update: the slider is debounced
    mask = shown.mask_layer.array
    assert not np.array_equal(before, mask) and (mask == 2).any()
    assert panel.table.proxy.rowCount() == len(shown.findings) > rows
    assert "no model run" in panel.status.text()
    (now,) = [shown.finding(i) for i in panel.table.selected_ids()]
    assert same_finding(now, picked) and now.threshold == pytest.approx(0.2)
    for _ in range(6):
        qtbot.keyClick(panel.display.slider, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: shown.result.threshold == pytest.approx(0.5), timeout=5000)
    assert np.array_equal(before, shown.mask_layer.array) and panel.table.proxy.rowCount() == rows


def test_clicking_a_finding_moves_the_crosshair_and_zooms_every_view(qtbot, viewer):
    state, views, panel = viewer
    shown = click_run(qtbot, panel)
    whole = [v.vb.viewRange() for v in views]
    target = min(shown.findings, key=lambda f: f.volume_ml)
    click_row(qtbot, panel, target.id)
    assert np.array_equal(state.cursor_ijk, np.round(target.centroid_index))
    for view, (wx, wy) in zip(views, whole, strict=True):
        (x0, x1), (y0, y1) = view.vb.viewRange()
        _, row, col = view.plane_map.from_index(np.asarray(target.centroid_index))
        centre = view.pixel_to_mm(row, col)
        assert x0 < centre.x() < x1 and y0 < centre.y() < y1
        fx, fy, fw, fh = focus_rect_mm(target, view.plane_map, (view.vb.width(), view.vb.height()))
        assert x0 <= fx + 0.01 and fx + fw <= x1 + 0.01 and y0 <= fy + 0.01
        assert fy + fh <= y1 + 0.01  # the finding's box and its margin are in view...
        assert x1 - x0 == pytest.approx(fw, rel=0.02) or y1 - y0 == pytest.approx(
            fh, rel=0.02
        )  # ...and fill it one way
        # pixels of 2.4 mm already show at about 5x when the whole image fits: the zoom
        # stays at most there (4 screen pixels per image pixel, or the fit), on the finding
        rows, cols = view.plane_map.screen_shape
        row_mm, col_mm = view.plane_map.pixel_mm
        fit = min(view.vb.width() / (cols * col_mm), view.vb.height() / (rows * row_mm))
        per_mm = 1 / view.vb.viewPixelSize()[0]
        assert per_mm <= max(4.0 / min(row_mm, col_mm), fit) * 1.02
        assert x1 - x0 <= wx[1] - wx[0] + 0.01 and y1 - y0 <= wy[1] - wy[0] + 0.01
    assert f"Finding {target.id}" in panel.status.text()
    # the label calls for the lung window (bright-seg's label 1 is a lung nodule)
    assert target.label_name == "lung nodule"
    assert (state.window.name, state.window.width, state.window.center) == ("Lung", 1500, -600)
    assert "Lung window" in panel.status.text()


def test_going_to_a_finding_keeps_the_readers_window_when_turned_off(qtbot, viewer):
    state, _views, panel = viewer
    shown = click_run(qtbot, panel)
    state.set_window(40, 400, "Abdomen")
    assert panel.window_box.isChecked()  # on unless the reader turns it off
    qtbot.mouseClick(
        panel.window_box,
        Qt.MouseButton.LeftButton,
        pos=QtCore.QPoint(8, panel.window_box.height() // 2),
    )
    assert not panel.window_box.isChecked()
    click_row(qtbot, panel, shown.findings[0].id)
    assert state.window.name == "Abdomen" and "window" not in panel.status.text()


def test_findings_sort_by_any_column(qtbot, viewer):
    _, _, panel = viewer
    click_run(qtbot, panel)
    header = panel.table.view.horizontalHeader()
    pos = QtCore.QPoint(header.sectionViewportPosition(ft.VOLUME) + 5, header.height() // 2)
    volumes = []
    for _ in range(2):
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        volumes.append(
            [
                float(panel.table.proxy.index(r, ft.VOLUME).data())
                for r in range(panel.table.proxy.rowCount())
            ]
        )
    assert volumes[0] == sorted(volumes[0]) and volumes[1] == sorted(volumes[1], reverse=True)
    assert volumes[0] != volumes[1]


def test_decisions_are_kept_with_the_series_and_restored(qtbot, viewer):
    state, views, panel = viewer
    shown = click_run(qtbot, panel)
    a, b = shown.findings[0], shown.findings[1]
    click_row(qtbot, panel, a.id)
    qtbot.mouseClick(panel.table.buttons["accepted"], Qt.MouseButton.LeftButton)
    viewport = panel.table.view.viewport()
    pos = click_row(qtbot, panel, b.id)
    QtWidgets.QApplication.sendEvent(
        viewport,
        QtGui.QContextMenuEvent(
            QtGui.QContextMenuEvent.Reason.Mouse, pos, viewport.mapToGlobal(pos)
        ),
    )
    reject = next(x for x in panel.table.menu.actions() if x.text() == "Reject")
    reject.trigger()
    panel.table.menu.close()
    texts = {
        panel.table.proxy.index(r, ft.DECISION).data() for r in range(panel.table.proxy.rowCount())
    }
    assert texts == {"✓ accepted", "✗ rejected", "–"}
    doc = json.loads(findings_path(KEY).read_text("utf-8"))
    saved = {d["id"]: d for d in doc["decisions"]}
    assert saved[a.id]["decision"] == "accepted" and saved[b.id]["decision"] == "rejected"
    assert saved[a.id]["model"] == "bright-seg:1.0" and saved[a.id]["threshold"] == 0.5
    assert saved[a.id]["centroid_lps"] == pytest.approx(list(a.centroid_lps))
    assert {"bbox_index", "label_value", "decided_at", "by"} <= set(saved[a.id])

    panel.shutdown()
    panel.setParent(None)
    panel.deleteLater()
    qtbot.wait(10)
    again = AIPanel(state, lambda: views)  # e.g. the app restarted on this series
    qtbot.addWidget(again)
    qtbot.waitExposed(again) if again.show() else None
    with qtbot.waitSignal(again.result_shown, timeout=RUN_MS):
        pass  # the kept result shows by itself, no click, no model run
    assert "reused" in again.status.text()
    assert {f.id: f.decision for f in again.results.findings} == {
        a.id: "accepted",
        b.id: "rejected",
        shown.findings[2].id: "pending",
    }


def test_cancel_mid_run_stops_within_a_second_and_leaves_nothing(qtbot, viewer, monkeypatch):
    state, views, panel = viewer
    count_predictions(monkeypatch, delay_s=0.3)
    with qtbot.waitSignal(panel.progress.valueChanged, timeout=RUN_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.busy() and panel.cancel_button.isEnabled()
    slice_before = state.slice_index(Plane.AXIAL)  # the reader keeps scrolling meanwhile
    wheel(views[0].viewport(), (100, 100), -2)
    assert state.slice_index(Plane.AXIAL) == slice_before + 2 and panel.busy()
    t0 = time.perf_counter()
    with qtbot.waitSignal(panel.worker.finished, timeout=5000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert time.perf_counter() - t0 < 1.0
    no_worker_left(qtbot, panel)
    assert panel.results is None and state.layers == []
    assert "Cancelled" in panel.status.text() and panel.run_button.isEnabled()


def test_a_run_asked_while_one_runs_is_answered_not_dropped(qtbot, viewer, monkeypatch):
    """The Run button is disabled while a model runs, but other paths (a menu, a shortcut)
    reach run(): they get one sentence, and the running job goes on untouched."""
    _state, _views, panel = viewer
    count_predictions(monkeypatch, delay_s=0.3)
    with qtbot.waitSignal(panel.progress.valueChanged, timeout=RUN_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    running = panel.worker
    panel.run()
    assert panel.status.text() == "A model is still running; wait for it or cancel it first."
    assert panel.worker is running and running.running
    with qtbot.waitSignal(running.finished, timeout=5000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    no_worker_left(qtbot, panel)


def test_a_model_that_does_not_fit_gives_one_message_and_runs_nothing(qtbot, viewer, monkeypatch):
    state, _views, panel = viewer
    calls = count_predictions(monkeypatch)
    write_folder(
        registry.user_models_dir() / "mr-seg" / "1.0",
        bright_unet(),
        card=card_dict("mr-seg", "1.0", input_size=None, modality="MR"),
    )
    panel.refresh_models()
    combo = panel.model_combo
    combo.setCurrentIndex(combo.findText("mr-seg:1.0", Qt.MatchFlag.MatchStartsWith))
    assert "MR" in panel.card_label.text()
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    boxes = [
        w
        for w in QtWidgets.QApplication.topLevelWidgets()
        if isinstance(w, QtWidgets.QMessageBox) and w.isVisible()
    ]
    assert len(boxes) == 1 and boxes[0] is panel.last_message
    assert "is a CT series; model mr-seg:1.0 is made for MR" in panel.last_message.text()
    assert panel.worker is None and calls == [] and state.layers == []
    panel.last_message.close()


def test_a_result_for_a_series_no_longer_shown_is_dropped(qtbot, viewer, monkeypatch):
    state, _views, panel = viewer
    count_predictions(monkeypatch, delay_s=0.2)
    with qtbot.waitSignal(panel.progress.valueChanged, timeout=RUN_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    state.set_volume(blobs(), "another series")
    no_worker_left(qtbot, panel)
    qtbot.wait(50)
    assert panel.results is None and state.layers == [] and panel.table.proxy.rowCount() == 0


def test_same_model_same_series_reuses_and_gui_equals_the_job(qtbot, viewer, models, monkeypatch):
    state, _views, panel = viewer
    calls = count_predictions(monkeypatch)
    first = click_run(qtbot, panel).result
    ran = len(calls)
    second = click_run(qtbot, panel).result
    assert second.reused and len(calls) == ran and "reused" in panel.status.text()
    clear_kept()
    gen = infer_job(state.volume, models, JobContext(CancelToken()), threshold=0.5, series_key=KEY)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        direct = stop.value
    assert not direct.reused and len(calls) > ran
    assert np.array_equal(first.label_map(), direct.label_map())
    for value in (1, 2):
        assert np.array_equal(
            first.segmentation.probability(value), direct.segmentation.probability(value)
        )
    assert [f.to_dict() for f in first.findings] == [f.to_dict() for f in direct.findings]


def test_uncertainty_when_tta_ran(qtbot, viewer):
    state, _views, panel = viewer
    assert not panel.display.uncertainty.isEnabled()
    qtbot.mouseClick(panel.tta_box, Qt.MouseButton.LeftButton)
    shown = click_run(qtbot, panel)
    assert shown.tta and not panel.table.view.isColumnHidden(ft.UNCERTAINTY)
    assert panel.table.proxy.index(0, ft.UNCERTAINTY).data() != ""
    qtbot.mouseClick(panel.display.uncertainty, Qt.MouseButton.LeftButton)
    assert state.layers[-1] is shown.uncertainty_layer and shown.uncertainty_layer.visible
    assert state.layers[-1].name == "AI bright-seg:1.0 — uncertainty"


def test_mask_outline_draws_only_edges(qtbot, viewer):
    _state, views, panel = viewer
    shown = click_run(qtbot, panel)
    click_row(qtbot, panel, shown.findings[0].id)
    filled = int((views[0].overlay_items[1].image > 0).sum())
    combo = panel.display.mask
    combo.setCurrentIndex(combo.findText("Outline"))
    combo.activated.emit(combo.currentIndex())
    outlined = views[0].overlay_items[1].image
    assert shown.mask_layer.outline and 0 < (outlined > 0).sum() < filled


def tiny_classifier(folder):
    from medview.ai.runtime.slice_classifier import SliceClassifier

    torch.manual_seed(0)
    net = SliceClassifier(1, 2, features=(4, 8), embed=8, hidden=4, input_size=16)
    card = card_dict(
        "tiny-cls",
        "1.0",
        task="classification",
        input_size=None,
        architecture="medview.SliceClassifier",
        context_slices=1,
        labels=[{"value": 1, "name": "slice with a lesion"}],
        architecture_args={"features": [4, 8], "embed": 8, "hidden": 4, "input_size": 16},
    )
    return write_folder(folder, net, card=card)


def test_explain_slice_shows_grad_cam_on_that_slice(qtbot, viewer):
    state, _views, panel = viewer
    assert not panel.explain.button.isEnabled()
    assert "No slice classifier" in panel.explain.button.toolTip()
    tiny_classifier(registry.user_models_dir() / "tiny-cls" / "1.0")
    panel.refresh_models()
    assert panel.explain.button.isEnabled()
    state.set_slice(Plane.AXIAL, 5)
    index = round(float(state.cursor_ijk[0]))
    with qtbot.waitSignal(panel.explain.explained, timeout=RUN_MS):
        qtbot.mouseClick(panel.explain.button, Qt.MouseButton.LeftButton)
    layer = state.layers[-1]
    assert layer.name == f"AI tiny-cls:1.0 — Grad-CAM, slice {index + 1}"
    others = np.delete(layer.array, index, axis=0)
    assert others.max() == 0 and layer.made_by == "tiny-cls:1.0"
    assert "lesion probability" in panel.explain.label.text()
    assert "not a diagnosis" in panel.explain.label.text()


@pytest.fixture(scope="module")
def demo_study(tmp_path_factory):
    from medview.demo import generate_demo_study

    return generate_demo_study(tmp_path_factory.mktemp("demo"), seed=5, slices=24)


def _exported(window, path) -> QtGui.QImage:
    assert window.export_png(str(path))
    return QtGui.QImage(str(path))


def _changed_box(a: QtGui.QImage, b: QtGui.QImage) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels that differ between two same-size images."""
    arrays = []
    for img in (a, b):
        img = img.convertToFormat(QtGui.QImage.Format.Format_RGB32)
        arrays.append(
            np.frombuffer(img.constBits(), np.uint8)
            .reshape(img.height(), img.bytesPerLine())[:, : img.width() * 4]
            .copy()
        )
    rows, cols = np.nonzero(arrays[0] != arrays[1])
    return int(cols.min()) // 4, int(rows.min()), int(cols.max()) // 4, int(rows.max())


def test_in_the_main_window_exports_name_the_model(
    qtbot, data_dir, monkeypatch, tmp_path, demo_study
):
    from tests.ui.main_window_fixtures import make_window, open_and_wait

    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    clear_kept()
    write_bright_model(registry.user_models_dir() / "bright-seg" / "1.0")
    window = make_window(qtbot, (1400, 900))
    dock = window.dock("AI")
    assert dock in window.tabifiedDockWidgets(window.dock("Measure"))
    open_and_wait(qtbot, window, [str(demo_study.series_dir)])
    window.set_layout("1")  # one wide view (the CT chest hanging protocol opens 1 x 3)
    dock.raise_()
    shown = click_run(qtbot, window.ai)
    assert len(shown.findings) > 0 and "finding" in window.status_label.text()
    click_row(qtbot, window.ai, shown.findings[0].id)
    for layer in shown.layers:
        layer.opacity = 0.0  # drawn, but invisible: only the corner note differs below
    window.state.layers_changed()
    with_note = _exported(window, tmp_path / "with.png")
    for layer in shown.layers:
        layer.visible = False
    window.state.layers_changed()
    without = _exported(window, tmp_path / "without.png")
    left, top, _, bottom = _changed_box(with_note, without)
    assert left > with_note.width() // 2 and top > with_note.height() * 3 // 4
    assert bottom < with_note.height()
    for layer in shown.layers:
        layer.visible = True
    window.grid.focused_view.setFocus()
    qtbot.keyClick(window.grid.focused_view, Qt.Key.Key_O)  # corner text off...
    assert not window.state.show_overlays
    hidden = _exported(window, tmp_path / "hidden.png")
    for layer in shown.layers:
        layer.visible = False
    window.state.layers_changed()
    bare = _exported(window, tmp_path / "bare.png")
    left, top, _, _ = _changed_box(hidden, bare)  # ...the AI note stays
    assert left > with_note.width() // 2 and top > with_note.height() * 3 // 4
    window.close()
    assert window.ai._pool.activeThreadCount() == 0
    clear_kept()


def test_a_model_that_fails_to_load_gives_one_message(qtbot, viewer):
    state, _views, panel = viewer
    write_folder(
        registry.user_models_dir() / "broken-seg" / "1.0",
        card=card_dict("broken-seg", "1.0", input_size=None),
        payload=b"not safetensors at all",
    )
    panel.refresh_models()
    combo = panel.model_combo
    combo.setCurrentIndex(combo.findText("broken-seg:1.0", Qt.MatchFlag.MatchStartsWith))
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.last_message is not None, timeout=RUN_MS)
    text = panel.last_message.text()
    assert "weights.safetensors" in text and "truncated or damaged" in text
    assert "\n" not in text and "Traceback" not in text
    assert panel.results is None and state.layers == [] and panel.run_button.isEnabled()
    panel.last_message.close()


def test_explain_is_disabled_and_says_why_without_grad_cam(qtbot, viewer, monkeypatch):
    import importlib.util

    _, _, panel = viewer
    tiny_classifier(registry.user_models_dir() / "tiny-cls" / "1.0")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "medview.ai.runtime.gradcam" else real(name, *a),
    )
    panel.refresh_models()
    assert not panel.explain.button.isEnabled()
    assert "medview.ai.runtime.gradcam is missing" in panel.explain.button.toolTip()


def test_the_picker_labels_a_cards_development_numbers(qtbot, viewer):
    """Numbers from seeds that shaped the model stay out of the headline and are labelled
    in the tooltip; the headline says its numbers are held out."""
    _, _, panel = viewer
    validation = {
        "studies": 20,
        "sensitivity_ge_6mm": 0.9,
        "mean_dice_ge_6mm": 0.77,
        "held_out_seeds": list(range(3001, 3021)),
        "development": {
            "note": "Development numbers: they shaped it.",
            "seeds": list(range(1001, 1011)),
            "sensitivity_ge_6mm": 0.944,
            "mean_dice_ge_6mm": 0.816,
        },
    }
    write_folder(
        registry.user_models_dir() / "dev-seg" / "2.0",
        bright_unet(),
        card=card_dict("dev-seg", "2.0", input_size=None, validation=validation),
    )
    panel.refresh_models()
    combo = panel.model_combo
    combo.setCurrentIndex(combo.findText("dev-seg:2.0", Qt.MatchFlag.MatchStartsWith))
    assert panel.card_label.text().endswith(
        "Validation (held out): sensitivity ≥6 mm 0.9 · mean dice ≥6 mm 0.77"
    )
    assert "0.944" not in panel.card_label.text()
    assert (
        "Development numbers (not held out; demo seeds 1001-1010): sensitivity ≥6 mm "
        "0.944 · mean dice ≥6 mm 0.816\nDevelopment numbers: they shaped it."
    ) in panel.card_label.toolTip()


def test_the_picker_shows_the_cards_headline_validation(qtbot, viewer):
    _, _, panel = viewer
    validation = {
        "studies": 10,
        "sensitivity_ge_6mm": 0.95,
        "sensitivity_all": 0.9,
        "false_positives_per_study": 0.4,
        "mean_dice_ge_6mm": 0.83,
    }
    write_folder(
        registry.user_models_dir() / "card-seg" / "2.0",
        bright_unet(),
        card=card_dict("card-seg", "2.0", input_size=None, validation=validation),
    )
    panel.refresh_models()
    assert panel.model_combo.currentText().startswith("bright-seg:1.0")  # the active one
    combo = panel.model_combo
    combo.setCurrentIndex(combo.findText("card-seg:2.0", Qt.MatchFlag.MatchStartsWith))
    assert panel.card_label.text() == (
        "card-seg:2.0 · CT · lung nodule, liver lesion\nValidation: sensitivity ≥6 mm 0.95 · "
        "false positives per study 0.4 · mean dice ≥6 mm 0.83"
    )
    assert "AI assistance — not a diagnosis" in panel.header.text()

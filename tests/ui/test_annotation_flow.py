"""Labels in the main window across a session: autosave off the GUI thread, the status kept
when the series is opened again, recovery after a crash (Recover brings the voxels back,
Discard keeps them aside), the question at start, and a real DICOM series' labels tied to
its source files."""

from __future__ import annotations

import threading

import numpy as np
from PySide6 import QtWidgets

from medview.core.labels import LabelMap
from medview.io.labels import autosave as label_autosave
from medview.io.labels.store import LabelSource, LabelStore
from tests.ui.annotation_fixtures import KEY, click, ct_volume, paint
from tests.ui.main_window_fixtures import make_window, open_and_wait

SAVE_MS = 10_000


def test_autosave_journals_each_stroke_and_snapshots_on_a_worker(
    qtbot, labelled, data_dir, monkeypatch
):
    window, ann = labelled
    threads = []
    real = label_autosave.SnapshotTask.run

    def run(self, on_chunk=None):
        threads.append(threading.current_thread())
        return real(self, on_chunk)

    monkeypatch.setattr(label_autosave.SnapshotTask, "run", run)
    ann.saver.interval_s = 0.2
    folder = ann.store.folder
    assert folder.parent == data_dir / "labels"
    click(qtbot, ann.panel.add_button)
    click(qtbot, ann.panel.tools.buttons["brush"])
    paint(window, (20, 10), (20, 30))
    journals = list(folder.glob("journal-*.log"))
    assert journals and journals[0].stat().st_size > 0  # the stroke, fsynced at release
    with qtbot.waitSignal(ann.saved, timeout=SAVE_MS):
        pass
    assert threads and threads[0] is not threading.main_thread()
    again = LabelStore(KEY).load()
    assert np.array_equal(again.label_map.array, ann.editor.label_map.array)
    assert again.label_map.segments == ann.editor.label_map.segments


def test_status_done_persists_when_the_series_is_opened_again(qtbot, labelled):
    window, ann = labelled
    click(qtbot, ann.panel.add_button)
    click(qtbot, ann.panel.done_button)
    window.state.set_volume(ct_volume("Other"), "another series")
    assert ann.panel.status_label.text() == "Draft"
    window.state.set_volume(ct_volume(), KEY)
    assert ann.panel.status_label.text().startswith("Done — ")
    assert ann.panel.done_button.isChecked()
    assert [s.name for s in ann.editor.label_map.segments.values()] == ["Lesion"]


def crashed_store(voxels: np.ndarray) -> None:
    """What a killed MedView leaves: journaled edits after the last clean save."""
    store = LabelStore(KEY)
    source = LabelSource.from_volume(ct_volume(), KEY)
    lm = LabelMap.empty(voxels.shape, KEY)
    store.start(source)
    store.save(lm, clean=True)
    store.start(source)
    lm.add_segment("Lesion")
    store.append_segments(lm.segments)
    idx = np.flatnonzero(voxels)
    store.append_voxels(idx, voxels.reshape(-1)[idx])
    store.close_journal()


def painted() -> np.ndarray:
    voxels = np.zeros(ct_volume().shape, np.uint8)
    voxels[4, 10:14, 20:26] = 1
    return voxels


def open_crashed(qtbot, data_dir):
    crashed_store(painted())
    window = make_window(qtbot, (1300, 850))
    ann = window.annotation
    qtbot.wait(10)
    if ann.prompt is not None:  # the question at start: answered per series below
        ann.prompt.done(0)
        ann.prompt = None
    ann._recovering.clear()
    window.state.set_volume(ct_volume(), KEY)
    return window, ann


def button(box: QtWidgets.QMessageBox, text: str) -> QtWidgets.QAbstractButton:
    return next(b for b in box.buttons() if b.text() == text)


def test_recover_after_a_crash_restores_the_voxels(qtbot, data_dir):
    window, ann = open_crashed(qtbot, data_dir)
    box = ann.prompt
    assert box is not None and box.isVisible() and ann.editor is None
    assert "MedView closed before saving the labels of Chest 2.5 mm at" in box.text()
    click(qtbot, button(box, "Recover"))
    qtbot.waitUntil(lambda: ann.editor is not None, timeout=10_000)
    assert np.array_equal(ann.editor.label_map.array, painted())
    assert "recovered" in window.status_label.text()
    ann.shutdown()
    assert not LabelStore(KEY).has_unsaved()  # the clean save at close


def test_discard_keeps_the_edits_aside(qtbot, data_dir):
    _window, ann = open_crashed(qtbot, data_dir)
    click(qtbot, button(ann.prompt, "Discard (kept aside)"))
    qtbot.waitUntil(lambda: ann.editor is not None, timeout=10_000)
    assert not ann.editor.label_map.array.any()
    kept = list((data_dir / "labels").glob("*/discarded-*/journal-*.log"))
    assert kept and kept[0].stat().st_size > 0
    ann.shutdown()


def test_at_start_one_question_for_every_crashed_series(qtbot, data_dir):
    crashed_store(painted())
    window = make_window(qtbot, (1300, 850))
    ann = window.annotation
    qtbot.waitUntil(lambda: ann.prompt is not None and ann.prompt.isVisible(), timeout=10_000)
    assert "MedView closed before saving the labels of 1 series" in ann.prompt.text()
    click(qtbot, button(ann.prompt, "Recover"))
    window.state.set_volume(ct_volume(), KEY)  # answered already: no second question
    assert ann.editor is not None and np.array_equal(ann.editor.label_map.array, painted())
    ann.shutdown()


def recovery_boxes(window) -> list[QtWidgets.QMessageBox]:
    return [
        b
        for b in window.findChildren(QtWidgets.QMessageBox)
        if b.isVisible() and b.windowTitle() == "Recover labels?"
    ]


def test_a_series_opened_while_the_start_question_is_open_is_not_asked_again(qtbot, data_dir):
    """kill -9, then MedView started on the same series: the series opens while the question
    at start is still open; it waits for that answer, no second question (issue 20.1)."""
    crashed_store(painted())
    window = make_window(qtbot, (1300, 850))
    ann = window.annotation
    qtbot.waitUntil(lambda: len(recovery_boxes(window)) == 1, timeout=10_000)
    start = ann.prompt
    window.state.set_volume(ct_volume(), KEY)  # the series the labels belong to opens
    qtbot.wait(50)
    assert recovery_boxes(window) == [start] and ann.editor is None
    assert "first" in ann.panel.title.text()
    click(qtbot, button(start, "Recover"))
    qtbot.waitUntil(lambda: ann.editor is not None, timeout=10_000)
    assert np.array_equal(ann.editor.label_map.array, painted())
    qtbot.wait(50)
    assert recovery_boxes(window) == []  # and no question after the answer either
    ann.shutdown()


def test_discard_at_start_applies_to_the_series_that_opened_meanwhile(qtbot, data_dir):
    crashed_store(painted())
    window = make_window(qtbot, (1300, 850))
    ann = window.annotation
    qtbot.waitUntil(lambda: len(recovery_boxes(window)) == 1, timeout=10_000)
    window.state.set_volume(ct_volume(), KEY)
    click(qtbot, button(ann.prompt, "Discard (kept aside)"))
    qtbot.waitUntil(lambda: ann.editor is not None, timeout=10_000)
    assert not ann.editor.label_map.array.any() and recovery_boxes(window) == []
    ann.shutdown()


def test_an_unanswered_question_goes_when_another_series_opens(qtbot, data_dir):
    window, ann = open_crashed(qtbot, data_dir)
    assert len(recovery_boxes(window)) == 1
    window.state.set_volume(ct_volume("Other"), "another series")
    assert recovery_boxes(window) == [] and ann.editor is not None
    window.state.set_volume(ct_volume(), KEY)  # asked again when it reopens
    assert len(recovery_boxes(window)) == 1
    click(qtbot, button(ann.prompt, "Recover"))
    qtbot.waitUntil(lambda: ann.editor is not None, timeout=10_000)
    assert np.array_equal(ann.editor.label_map.array, painted())
    ann.shutdown()


def test_a_dicom_series_keeps_its_source_files(qtbot, window, two_series):
    folder, a, _b = two_series
    ann = window.annotation
    open_and_wait(qtbot, window, [str(folder)])
    assert ann.editor is not None and ann.editor.volume is window.state.volume
    source = ann.store.source
    assert source.series_instance_uid and len(source.source_files) == len(a.paths)
    ann.shutdown()


def test_closing_the_window_leaves_a_clean_save(qtbot, labelled):
    window, ann = labelled
    click(qtbot, ann.panel.add_button)
    click(qtbot, ann.panel.tools.buttons["brush"])
    paint(window, (20, 10), (20, 30))
    labels = ann.editor.label_map.array.copy()
    assert LabelStore(KEY).has_unsaved()  # journaled, not yet a clean save
    window.close()
    store = LabelStore(KEY)
    assert not store.has_unsaved()
    assert np.array_equal(store.load().label_map.array, labels)

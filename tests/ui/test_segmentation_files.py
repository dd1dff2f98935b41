"""File > Import / Export segmentation in the main window: a painted label map goes out as
NIfTI (with its segment table) and as DICOM SEG of a real DICOM series, and comes back in
voxel for voxel; a bad file and a label map of another grid end in one sentence; an import
never overwrites the reader's labels."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medview.jobs.label_files import NIFTI, SEG
from tests.ui.annotation_fixtures import click, paint
from tests.ui.main_window_fixtures import open_and_wait

JOB_MS = 30_000


def run(qtbot, files, start):
    # the last job's result comes a moment before its thread ends; a request before that
    # is answered "still running" (test_a_request_while_busy_is_answered)
    qtbot.waitUntil(lambda: not files.busy(), timeout=JOB_MS)
    with qtbot.waitSignal(files.done, timeout=JOB_MS) as blocker:
        start()
    return blocker.args[0]


def painted(qtbot, window, ann):
    click(qtbot, ann.panel.add_button)
    click(qtbot, ann.panel.tools.buttons["brush"])
    ann.panel.tools.size.setValue(3.0)
    native = next(p for p, m in window.state.maps.items() if m.normal_axis == 0)
    paint(window, (5, 5), (12, 20), native)
    labels = ann.editor.label_map.array.copy()
    assert labels.any()
    return labels


def one_sentence(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text and len(text) < 400


def test_nifti_export_and_import_round_trip(qtbot, labelled, tmp_path):
    window, ann = labelled
    labels = painted(qtbot, window, ann)
    out = tmp_path / "out" / "labels.nii.gz"
    out.parent.mkdir()
    said = run(qtbot, ann.files, lambda: ann.files.export_to(NIFTI, str(out)))
    assert said.startswith(f"Segmentation saved to {out}")
    assert sorted(p.name for p in out.parent.iterdir()) == ["labels.nii.gz", "labels.segments.json"]
    image = sitk.ReadImage(str(out))
    assert image.GetSize() == labels.shape[::-1]
    assert int((sitk.GetArrayFromImage(image) > 0).sum()) == int(labels.astype(bool).sum())
    click(qtbot, ann.panel.remove_button)  # the series' labels empty: the import takes over
    assert not ann.editor.label_map.array.any()
    said = run(qtbot, ann.files, lambda: ann.files.import_from(str(out)))
    assert said.startswith("Imported 1 segment(s) from labels.nii.gz")
    assert np.array_equal(ann.editor.label_map.array, labels)
    assert [s.name for s in ann.editor.label_map.segments.values()] == ["Lesion"]
    assert ann.panel.table.rowCount() == 1


def test_dicom_seg_export_and_import_round_trip(qtbot, window, two_series, tmp_path):
    folder, _a, _b = two_series
    open_and_wait(qtbot, window, [str(folder)])
    ann = window.annotation
    ann.dock.raise_()
    labels = painted(qtbot, window, ann)
    assert ann.files.export_actions[SEG].isEnabled() or not ann.files.busy()
    out = tmp_path / "seg" / "labels.dcm"
    out.parent.mkdir()
    said = run(qtbot, ann.files, lambda: ann.files.export_to(SEG, str(out)))
    assert said.startswith(f"Segmentation saved to {out}") and out.is_file()
    ann.editor.remove_segment(ann.editor.active)
    said = run(qtbot, ann.files, lambda: ann.files.import_from(str(out)))
    assert said.startswith("Imported 1 segment(s) from labels.dcm"), said
    assert np.array_equal(ann.editor.label_map.array > 0, labels > 0)
    ann.shutdown()


def test_a_bad_file_and_a_wrong_grid_end_in_one_sentence(qtbot, labelled, tmp_path):
    window, ann = labelled
    bad = tmp_path / "notes.dcm"
    bad.write_text("not a segmentation")
    said = run(qtbot, ann.files, lambda: ann.files.import_from(str(bad)))
    assert str(bad) in said and one_sentence(said)
    assert "choose a DICOM SEG" in said and "force" not in said
    assert window.last_message.text() == said and window.last_message.isVisible()
    window.last_message.close()
    other = tmp_path / "other.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((3, 4, 5), np.uint8)), str(other))
    said = run(qtbot, ann.files, lambda: ann.files.import_from(str(other)))
    assert str(other) in said and one_sentence(said)
    assert not ann.editor.label_map.segments  # nothing changed


def test_an_import_never_overwrites_the_readers_labels(qtbot, labelled, tmp_path):
    window, ann = labelled
    labels = painted(qtbot, window, ann)
    out = tmp_path / "mine.nii.gz"
    run(qtbot, ann.files, lambda: ann.files.export_to(NIFTI, str(out)))
    said = run(qtbot, ann.files, lambda: ann.files.import_from(str(out)))
    assert said.startswith("Imported 1 segment(s)")
    assert np.array_equal(ann.editor.label_map.array, labels)  # the reader's voxels won
    assert [s.name for s in ann.editor.label_map.segments.values()] == ["Lesion", "Lesion"]
    assert ann.panel.table.rowCount() == 2
    assert ann.panel.undo_button.toolTip().startswith("Undo: Import mine.nii.gz")
    click(qtbot, ann.panel.undo_button)
    assert len(ann.editor.label_map.segments) == 1


def test_a_request_while_busy_is_answered(qtbot, labelled, tmp_path):
    window, ann = labelled
    painted(qtbot, window, ann)
    with qtbot.waitSignal(ann.files.done, timeout=JOB_MS):
        first = ann.files.export_to(NIFTI, str(tmp_path / "a.nii.gz"))
        assert first is not None and ann.files.busy()
        said = []
        ann.files.done.connect(said.append)
        assert ann.files.import_from(str(tmp_path / "a.nii.gz")) is None
        assert said and "still running" in said[0] and one_sentence(said[0])

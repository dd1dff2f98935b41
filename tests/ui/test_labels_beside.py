"""MedView's own demo folder opened as a reader would (issue 14, section 2): the files beside
the series that are not DICOM are one quiet note, not red errors; its ground truth label map
is offered as a layer ("Labels found beside this series: Show / Import into labels"), shown
through the Layers panel and imported through File > Import segmentation's code. A file that
claims to be DICOM and is broken stays an error, and labels that do not fit are not offered."""

from __future__ import annotations

import os

import numpy as np
import pytest
from dicom_factory import write_ct_series

from medview.core.volume import Volume, VolumeMetadata
from medview.io.image_files import read_image, write_volume
from tests.ui.annotation_fixtures import click
from tests.ui.main_window_fixtures import open_and_wait

WAIT_MS = 15_000

NOT_READ = (
    "4 other files not read (README.txt, labels.nii.gz, labels.segments.json, lesions.json): "
    "not DICOM"
)


@pytest.fixture(scope="module")
def demo_out(demo):
    """The 24-slice demo study (tests/conftest.py): its lesions lie on slices 5 to 20."""
    return demo


def test_demo_folder_has_no_red_error_and_offers_its_ground_truth(qtbot, window, demo_out):
    open_and_wait(qtbot, window, [str(demo_out.out_dir)])
    assert window.warnings.messages("error") == []
    assert window.warnings.messages("warning") == []
    notes = window.warnings.messages("info")
    assert NOT_READ in notes
    layers = window.layers
    qtbot.waitUntil(lambda: layers.offer.isVisible(), timeout=WAIT_MS)
    assert layers.offer_text.text() == "Labels found beside this series: <b>labels.nii.gz</b>"
    assert any(
        "Labels found beside this series: labels.nii.gz" in m
        for m in window.warnings.messages("info")
    )
    assert window.state.layers == [] or all(
        lay is not layers.offered_layer for lay in window.state.layers
    )  # offered, not forced

    truth = read_image(demo_out.labels_path).array
    assert truth.any()
    click(qtbot, layers.offer_show)
    shown = window.state.layers[-1]
    assert shown is layers.offered_layer and shown.kind == "labels" and shown.visible
    np.testing.assert_array_equal(shown.array, truth)
    assert not layers.offer_show.isEnabled()  # shown already
    shot = os.environ.get("MEDVIEW_SCREENSHOT_DIR")
    if shot:
        view = window.grid.focused_view
        view.state.set_slice(view.plane, int(np.argmax((truth > 0).sum(axis=(1, 2)))))
        qtbot.wait(100)
        window.grab().save(os.path.join(shot, "demo-folder-ground-truth.png"))

    ann = window.annotation
    with qtbot.waitSignal(ann.files.done, timeout=WAIT_MS):
        click(qtbot, layers.offer_import)
    assert ann.editor is not None
    np.testing.assert_array_equal(ann.editor.label_map.array, truth)
    assert sorted(ann.editor.label_map.segments) == sorted(set(np.unique(truth)) - {0})
    # the demo's segment table names and codes them (they read "Segment 1/2" without it)
    names = {v: seg.name for v, seg in ann.editor.label_map.segments.items()}
    assert names == {1: "lung nodule", 2: "liver lesion"}
    assert ann.editor.label_map.segments[1].type.value == "27925004"  # SNOMED CT: nodule
    ann.shutdown()


def test_info_names_the_other_files_once_and_skips_nothing(demo_out, capsys):
    from medview.cli import main

    assert main(["info", str(demo_out.out_dir)]) == 0
    out = capsys.readouterr().out
    assert NOT_READ in out
    assert "Skipped" not in out and "is not a DICOM file" not in out


def test_a_broken_file_that_claims_dicom_is_still_an_error(qtbot, window, tmp_path):
    write_ct_series(tmp_path / "s", n=4)
    (tmp_path / "s" / "broken.dcm").write_text("this says it is DICOM by its name")
    (tmp_path / "s" / "notes.txt").write_text("not an image")
    open_and_wait(qtbot, window, [str(tmp_path / "s")])
    errors = window.warnings.messages("error")
    assert len(errors) == 1 and "broken.dcm" in errors[0] and "not a DICOM file" in errors[0]
    assert any(
        m.startswith("1 other file not read (notes.txt)") for m in window.warnings.messages("info")
    )


def test_labels_that_do_not_fit_the_series_are_not_offered(qtbot, window, tmp_path):
    written = write_ct_series(tmp_path / "study" / "series", n=4)
    wrong = Volume(np.ones((3, 24, 32), np.uint8), written.expected_affine, VolumeMetadata())
    write_volume(wrong, tmp_path / "study" / "labels.nii.gz")
    open_and_wait(qtbot, window, [str(tmp_path / "study")])
    layers = window.layers
    qtbot.waitUntil(lambda: "do not fit" in layers.status.text(), timeout=WAIT_MS)
    assert not layers.offer.isVisible() and layers.offered_layer is None
    assert "labels.nii.gz" in layers.status.text()


def test_labels_beside_dicom_files_are_offered_too(qtbot, window, tmp_path):
    """The other layout `medview train` reads: the label map beside the DICOM files."""
    written = write_ct_series(tmp_path / "study", n=4)
    truth = np.zeros((4, 24, 32), np.uint8)
    truth[1:3, 5:9, 6:12] = 2
    write_volume(
        Volume(truth, written.expected_affine, VolumeMetadata()),
        tmp_path / "study" / "labels.nii.gz",
    )
    open_and_wait(qtbot, window, [str(tmp_path / "study")])
    qtbot.waitUntil(lambda: window.layers.offer.isVisible(), timeout=WAIT_MS)
    click(qtbot, window.layers.offer_show)
    np.testing.assert_array_equal(window.state.layers[-1].array, truth)

"""The PACS from the main window, against a real PACS (Orthanc), driven as a reader would:
File > PACS: Query / Retrieve… finds the demo study, Retrieve opens it in the viewer; the AI
runs, its findings go into the labels, the labels are marked done; File > Send to PACS…
sends the labels' SEG (marked done), the AI's SEG and the findings report, and Orthanc's
own REST API lists the three new series in the study. A node that is down is one sentence
and nothing is sent."""

from __future__ import annotations

import pydicom
import pytest

from medview.ai.models import registry
from medview.ai.runtime.inference import clear_kept
from medview.net.nodes import save_nodes
from medview.ui.pacs_actions import AI_SEG, LABELS, REPORT
from tests.ai.seg_models import write_bright_model
from tests.net.orthanc import dimse_node, free_port
from tests.net.pacs_search import find_stored_study
from tests.net.test_pacs_gui import shot
from tests.ui.annotation_fixtures import click
from tests.ui.main_window_fixtures import make_window

pytestmark = pytest.mark.external
RUN_MS = 60_000


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _orthanc_series(orthanc, study_uid: str) -> dict[str, dict]:
    """Orthanc's series of the study: SeriesInstanceUID -> its main DICOM tags and the
    first instance's content label (read from Orthanc, not from MedView)."""
    (found,) = [
        f for f in orthanc.rest("/tools/lookup", "POST", data=study_uid) if f["Type"] == "Study"
    ]
    out = {}
    for s in orthanc.rest(f"/studies/{found['ID']}/series?expand"):
        first = s["Instances"][0]
        tags = orthanc.rest(f"/instances/{first}/simplified-tags")
        out[s["MainDicomTags"]["SeriesInstanceUID"]] = {
            "modality": s["MainDicomTags"].get("Modality"),
            "content_label": tags.get("ContentLabel", ""),
        }
    return out


def test_retrieve_open_and_send_results_back(
    qtbot, orthanc, study_as_stored, data_dir, monkeypatch
):
    stored_study = study_as_stored
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: data_dir / "no-bundled")
    clear_kept()
    write_bright_model(registry.user_models_dir() / "bright-seg" / "1.0")
    registry.activate("bright-seg", "1.0")
    node = dimse_node(orthanc)
    save_nodes([node])
    window = make_window(qtbot, (1400, 900))
    study = stored_study.study_instance_uid
    before = _orthanc_series(orthanc, study)
    # File > PACS: search the node, retrieve: the study opens in the viewer
    pacs, studies = find_stored_study(qtbot, window, stored_study)
    assert pacs.tabs.currentWidget() is studies  # a node is saved: the studies come first
    with qtbot.waitSignal(
        window.image_shown, timeout=RUN_MS, check_params_cb=lambda what: what == "volume"
    ):
        click(qtbot, studies.retrieve_button)
    qtbot.waitUntil(studies.search_button.isEnabled, timeout=RUN_MS)
    shot(pacs, "mw-pacs-retrieved")
    pacs.hide()
    assert window.state.volume.shape[0] == stored_study.n_slices
    assert window.series.series_instance_uid == str(
        pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm"))).SeriesInstanceUID
    )
    # the AI, its findings into the labels, the labels marked done
    window.ai.refresh_models()
    window.dock("AI").raise_()
    with qtbot.waitSignal(window.ai.result_shown, timeout=RUN_MS):
        click(qtbot, window.ai.run_button)
    results = window.ai.results
    assert results.findings, "the bright model finds the demo study's bright structures"
    click(qtbot, window.ai.table.label_buttons["all"])
    window.annotation.set_done(True)
    assert window.annotation.store.status.state == "done"
    shot(window, "mw-ai-labels-done")
    # File > Send to PACS…: everything offered, ticked, and sent
    dialog = window.pacs.send_dialog()
    assert {k for k, b in dialog.checks.items() if b.isEnabled()} == {LABELS, AI_SEG, REPORT}
    assert "marked done" in dialog.checks[LABELS].text()
    shot(dialog, "mw-send-dialog")
    dialog.checks[AI_SEG].setChecked(False)  # the report refers to the AI's SEG
    assert not dialog.checks[REPORT].isEnabled() and not dialog.checks[REPORT].isChecked()
    dialog.checks[AI_SEG].setChecked(True)
    assert dialog.checks[REPORT].isChecked()
    with qtbot.waitSignal(window.pacs.sent, timeout=RUN_MS) as sent:
        click(qtbot, dialog.send_button)
    assert sent.args[0].sent == 3
    assert "to orthanc (3 instances)" in window.status_label.text()
    after = _orthanc_series(orthanc, study)
    new = {uid: s for uid, s in after.items() if uid not in before}
    assert sorted(s["modality"] for s in new.values()) == ["SEG", "SEG", "SR"]
    assert sorted(s["content_label"] for s in new.values() if s["modality"] == "SEG") == [
        "MEDVIEW_AI",
        "MEDVIEW_DONE",
    ]  # the reader's labels marked done; the AI's SEG
    # a node that is down: one sentence, nothing sent
    qtbot.waitUntil(lambda: not window.pacs.worker.running)
    down = dimse_node(orthanc, name="down", port=free_port())
    worker = window.pacs.send(down, {LABELS})
    with qtbot.waitSignal(worker.failed, timeout=RUN_MS) as failed:
        pass
    assert "down: nothing answers" in failed.args[0]
    assert _orthanc_series(orthanc, study).keys() == after.keys()
    window.ai.shutdown()
    window.annotation.shutdown()
    clear_kept()

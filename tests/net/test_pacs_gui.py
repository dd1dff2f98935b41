"""The PACS pages driven as a reader would, with pytest-qt, against a real PACS: add the
local Orthanc in the node settings and Echo it; search local and remote studies in one list;
retrieve a study (it then lists as local); an unverified TLS node shows its warning; a secret
never lands in the saved node list."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pydicom
import pytest

from medview.net.nodes import WebNode, load_nodes
from tests.net.orthanc import dimse_node, free_port

pytestmark = pytest.mark.external
SHOTS = os.environ.get("MEDVIEW_SHOTS")  # a folder to save screenshots into, when set


def shot(widget, name: str) -> None:
    if SHOTS:
        widget.grab().save(os.path.join(SHOTS, f"{name}.png"))


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_add_the_pacs_and_echo_it(qtbot, orthanc, data_dir):
    from medview.ui.panels.pacs_nodes import INSECURE, PacsNodesPage

    page = PacsNodesPage()
    qtbot.addWidget(page)
    page.resize(900, 420)
    page.fields["name"].setText("orthanc")
    page.fields["called_ae"].setText(orthanc.aet)
    page.fields["host"].setText("127.0.0.1")
    page.port.setValue(orthanc.dicom_port)
    page.fields["our_ae"].setText(orthanc.medview_aet)
    page.our_port.setValue(orthanc.medview_port)
    qtbot.mouseClick(page.save_button, qtbot_button())
    assert [n.name for n in load_nodes()] == ["orthanc"]
    with qtbot.waitSignal(page.echoed, timeout=20000) as echoed:
        qtbot.mouseClick(page.echo_button, qtbot_button())
    assert echoed.args[0].startswith("orthanc answered in ")
    shot(page, "pacs-nodes-echo")
    page.port.setValue(free_port())
    qtbot.waitUntil(page.echo_button.isEnabled)  # the first test has ended
    with qtbot.waitSignal(page.echoed, timeout=20000) as down:
        qtbot.mouseClick(page.echo_button, qtbot_button())
    assert "the node is down or the port is wrong" in down.args[0]
    # a DICOMweb node with a token and TLS unverified
    page.kind.setCurrentIndex(1)
    page.fields["name"].setText("web")
    page.fields["url"].setText("https://pacs.example/dicom-web")
    page.auth.setCurrentText("bearer")
    page.fields["secret"].setText("s3cret-token")
    page.verify.setChecked(False)
    assert page.warning.isVisibleTo(page) and page.warning.text() == INSECURE
    qtbot.mouseClick(page.save_button, qtbot_button())
    shot(page, "pacs-nodes-insecure")
    saved = (data_dir / "pacs" / "nodes.json").read_text()
    assert "s3cret-token" not in saved
    assert json.loads(saved)["nodes"][1]["verify_tls"] is False
    assert page.list.item(1).text() == "⚠ web (TLS not verified)"
    assert isinstance(load_nodes()[1], WebNode) and load_nodes()[1].insecure


def qtbot_button():
    from PySide6 import QtCore

    return QtCore.Qt.MouseButton.LeftButton


def test_search_retrieve_and_see_it_local(qtbot, orthanc, stored_study, data_dir):
    from medview.ui.panels.pacs_studies import LOCAL, PacsStudies

    node = dimse_node(orthanc)
    panel = PacsStudies([node])
    qtbot.addWidget(panel)
    panel.resize(1100, 420)
    pid = str(pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm"))).PatientID)
    panel.edits["patient_id"].setText(pid)
    with qtbot.waitSignal(panel.searched, timeout=30000) as found:
        qtbot.mouseClick(panel.search_button, qtbot_button())
    rows = found.args[0].rows
    assert [(r.source, r.study_uid) for r in rows] == [("orthanc", stored_study.study_instance_uid)]
    assert panel.table.rowCount() == 1 and panel.table.item(0, 0).text() == "orthanc"
    assert panel.table.item(0, 6).text() == str(stored_study.n_slices)
    qtbot.waitUntil(panel.retrieve_button.isEnabled)  # the search job has ended
    shot(panel, "pacs-studies-remote")
    panel.table.selectRow(0)
    with qtbot.waitSignal(panel.retrieved, timeout=60000) as first:
        qtbot.mouseClick(panel.retrieve_button, qtbot_button())
    assert first.args[0].endswith(stored_study.study_instance_uid)
    qtbot.waitUntil(lambda: panel.search_button.isEnabled(), timeout=60000)
    assert panel.note.text() == f"{stored_study.n_slices} instances retrieved, 0 were here already."
    panel.source.setCurrentText(LOCAL)
    with qtbot.waitSignal(panel.searched, timeout=30000) as local:
        qtbot.mouseClick(panel.search_button, qtbot_button())
    assert [(r.source, r.instance_count) for r in local.args[0].rows] == [
        ("local", stored_study.n_slices)
    ]
    panel.source.setCurrentIndex(0)  # all sources: the study twice, local and remote
    qtbot.waitUntil(panel.search_button.isEnabled)
    with qtbot.waitSignal(panel.searched, timeout=30000) as both:
        qtbot.mouseClick(panel.search_button, qtbot_button())
    assert sorted(r.source for r in both.args[0].rows) == ["local", "orthanc"]
    qtbot.waitUntil(panel.search_button.isEnabled)
    shot(panel, "pacs-studies-both")
    # a node that is down is a note beside the local results, not a failed search
    panel.set_nodes([dimse_node(orthanc, name="down", port=free_port())])
    qtbot.waitUntil(panel.search_button.isEnabled)
    with qtbot.waitSignal(panel.searched, timeout=30000) as partial:
        qtbot.mouseClick(panel.search_button, qtbot_button())
    assert [r.source for r in partial.args[0].rows] == ["local"]
    assert "down: nothing answers" in panel.note.text()


def test_rows_found_so_far_are_listed_until_the_search_ends(qtbot, data_dir):
    """What a DIMSE node answered so far is in the table, with a note that says so; the
    end of the search replaces both."""
    from medview.jobs.pacs import RowsSoFar, SearchResult
    from medview.net.query import StudyRow
    from medview.ui.panels.pacs_studies import PacsStudies

    panel = PacsStudies([])
    qtbot.addWidget(panel)
    rows = [StudyRow(study_uid=f"1.2.{k}", source="pacs", date="20240102") for k in range(3)]
    panel._show_so_far(RowsSoFar(rows[:1]))
    assert (panel.table.rowCount(), panel.note.text()) == (1, "1 study so far…")
    panel._show_so_far(RowsSoFar(rows[:2]))
    assert (panel.table.rowCount(), panel.note.text()) == (2, "2 studies so far…")
    with qtbot.waitSignal(panel.searched):
        panel._show(SearchResult(rows, ["down: nothing answers."]))
    assert (panel.table.rowCount(), panel.note.text()) == (3, "3 studies. down: nothing answers.")
    assert panel.table.item(0, 2).text() == "2024-01-02"


def test_pacs_window_offers_a_node_saved_in_its_nodes_tab(qtbot, orthanc, data_dir):
    from medview.ui.pacs_window import PacsWindow

    win = PacsWindow()
    qtbot.addWidget(win)
    assert win.tabs.currentWidget() is win.nodes_page  # no node yet
    page = win.nodes_page
    page.fields["name"].setText("orthanc")
    page.fields["called_ae"].setText(orthanc.aet)
    page.fields["host"].setText("127.0.0.1")
    page.port.setValue(orthanc.dicom_port)
    qtbot.mouseClick(page.save_button, qtbot_button())
    sources = [win.studies.source.itemText(i) for i in range(win.studies.source.count())]
    assert sources == ["All sources", "Local only", "orthanc"]
    win.tabs.setCurrentWidget(win.studies)
    shot(win, "pacs-window")


def test_a_studys_first_series_opens_while_the_rest_arrives(
    qtbot, orthanc, study_as_stored, data_dir, tmp_path
):
    """A study of two image series: the first is announced (its folder, whole) before the
    retrieval ends, then the study."""
    from pydicom.uid import generate_uid

    from medview.net import dimse
    from medview.ui.panels.pacs_studies import PacsStudies

    stored = study_as_stored
    second = tmp_path / "second"
    second.mkdir()
    series_uid = generate_uid()
    for f in sorted(stored.series_dir.glob("*.dcm")):  # a copy as a second series
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, 2
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(second / f.name)
    node = dimse_node(orthanc)
    assert dimse.send(node, sorted(second.glob("*.dcm"))) == stored.n_slices
    panel = PacsStudies([node])
    qtbot.addWidget(panel)
    pid = str(pydicom.dcmread(next(stored.series_dir.glob("*.dcm"))).PatientID)
    panel.edits["patient_id"].setText(pid)
    with qtbot.waitSignal(panel.searched, timeout=30000):
        qtbot.mouseClick(panel.search_button, qtbot_button())
    qtbot.waitUntil(panel.retrieve_button.isEnabled)
    panel.table.selectRow(0)
    announced = []
    panel.retrieved.connect(
        lambda folder: announced.append(
            (folder, len(list(Path(folder).glob("*.dcm"))), panel.search_button.isEnabled())
        )
    )
    qtbot.mouseClick(panel.retrieve_button, qtbot_button())
    qtbot.waitUntil(lambda: len(announced) == 2, timeout=60000)
    (first, n_first, idle_first), (study, _, _) = announced
    assert Path(first).parent == Path(study) and study.endswith(stored.study_instance_uid)
    assert n_first == stored.n_slices  # whole when announced
    assert not idle_first  # while the second series was still arriving

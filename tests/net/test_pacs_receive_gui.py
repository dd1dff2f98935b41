"""MedView's storage SCP from the PACS window, against a real PACS: with "Receive studies
pushed to MedView" on, Orthanc pushes the demo study (C-STORE) and it appears in the study
list as local while it arrives; without a saved DIMSE node nobody may send, one sentence;
a port another program holds is one sentence and the box stays off."""

from __future__ import annotations

import socket

import pytest

from medview.net.nodes import save_nodes
from tests.net.orthanc import dimse_node
from tests.net.test_pacs_gui import shot

pytestmark = pytest.mark.external


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_a_pushed_study_appears_as_it_arrives(qtbot, orthanc, stored_study, data_dir):
    from medview.ui.pacs_window import PacsWindow
    from medview.ui.panels.pacs_studies import LOCAL

    window = PacsWindow()
    qtbot.addWidget(window)
    receive = window.receive
    receive.toggle.setChecked(True)  # no node saved yet
    assert not receive.receiving and not receive.toggle.isChecked()
    assert receive.note.text() == (
        "No DIMSE node is saved, so no one may send: add the PACS under Nodes first."
    )
    save_nodes([dimse_node(orthanc)])
    with socket.socket() as held:  # another program on the port
        held.bind(("", 0))
        held.listen()
        receive.port.setValue(held.getsockname()[1])
        receive.toggle.setChecked(True)
        assert not receive.receiving and not receive.toggle.isChecked()
        assert "cannot listen there" in receive.note.text()
    receive.port.setValue(orthanc.medview_port)  # where Orthanc knows MedView
    receive.ae.setText(orthanc.medview_aet)
    receive.toggle.setChecked(True)
    assert receive.receiving and not receive.port.isEnabled()
    try:
        studies = window.studies
        studies.source.setCurrentText(LOCAL)
        (found,) = [
            f
            for f in orthanc.rest("/tools/lookup", "POST", data=stored_study.study_instance_uid)
            if f["Type"] == "Study"
        ]
        with qtbot.waitSignal(
            studies.searched, timeout=60_000, check_params_cb=lambda r: bool(r.rows)
        ) as listed:
            orthanc.rest(
                "/modalities/medview/store",
                "POST",
                json={"Resources": [found["ID"]], "Synchronous": False},
            )
        assert listed.args[0].rows[0].study_uid == stored_study.study_instance_uid
        qtbot.waitUntil(
            lambda: receive.note.text() == f"{stored_study.n_slices} instances received.",
            timeout=60_000,
        )
        qtbot.waitUntil(
            lambda: (
                studies.table.rowCount() == 1
                and studies.table.item(0, 6).text() == str(stored_study.n_slices)
            ),
            timeout=10_000,
        )
        window.tabs.setCurrentWidget(studies)
        shot(window, "pacs-window-received")
    finally:
        receive.stop()
    assert not receive.receiving and receive.port.isEnabled()

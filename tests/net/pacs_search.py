"""What the main-window PACS tests do first: File > PACS: Query / Retrieve…, search the
test PACS ("orthanc", saved as a node beforehand) for the stored study's patient, and select
the study found."""

from __future__ import annotations

import pydicom

from tests.ui.annotation_fixtures import click


def find_stored_study(qtbot, window, stored_study):
    """(the PACS window, its studies page) with the stored study found and selected."""
    pacs = window.pacs.open_pacs()
    studies = pacs.studies
    studies.source.setCurrentIndex(studies.source.findData("orthanc"))
    pid = str(pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm"))).PatientID)
    studies.edits["patient_id"].setText(pid)
    with qtbot.waitSignal(studies.searched, timeout=30_000):
        click(qtbot, studies.search_button)
    qtbot.waitUntil(studies.retrieve_button.isEnabled)
    studies.table.selectRow(0)
    return pacs, studies

"""MedView's storage SCP and the network libraries' logs: a flood of associations is bounded,
the libraries' loggers stay at WARNING (no patient names or IDs in the log) unless network
debugging is on."""

from __future__ import annotations

import logging

import pydicom
import pytest
from pynetdicom import AE

from medview.net import dimse
from medview.net.logs import quiet_network_loggers
from medview.net.query import StudyQuery
from medview.net.scp import StorageSCP
from tests.net.orthanc import dimse_node, free_port

pytestmark = pytest.mark.external


def test_associations_beyond_the_bound_are_refused(tmp_path):
    with StorageSCP(tmp_path, port=free_port(), allowed_aes=["FLOOD"], max_associations=2) as scp:
        ae = AE(ae_title="FLOOD")
        ae.add_requested_context("1.2.840.10008.1.1")
        held = [ae.associate("127.0.0.1", scp.port, ae_title="MEDVIEW") for _ in range(5)]
        try:
            assert sum(a.is_established for a in held) == 2
            assert sum(a.is_rejected for a in held) == 3
        finally:
            for a in held:
                if a.is_established:
                    a.release()
        # and then it takes new ones again
        again = ae.associate("127.0.0.1", scp.port, ae_title="MEDVIEW")
        assert again.is_established
        again.release()


def test_library_logs_stay_quiet_unless_debugging(orthanc, stored_study, caplog, monkeypatch):
    name = str(pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm"))).PatientName)
    caplog.set_level(logging.DEBUG)
    rows = dimse.find_studies(dimse_node(orthanc), StudyQuery())
    assert any(r.patient_name == name for r in rows)
    assert logging.getLogger("pynetdicom").level == logging.WARNING
    assert name not in caplog.text and "SYNTH" not in caplog.text
    monkeypatch.setenv("MEDVIEW_NET_DEBUG", "1")
    quiet_network_loggers()
    assert logging.getLogger("pynetdicom").level == logging.DEBUG
    # debugging logs the C-FIND answers (net.find_scu), as pynetdicom's logging did
    dimse.find_studies(dimse_node(orthanc), StudyQuery())
    assert name in caplog.text
    monkeypatch.delenv("MEDVIEW_NET_DEBUG")
    quiet_network_loggers()
    assert logging.getLogger("dicomweb_client").level == logging.WARNING

"""net.find_scu, the C-FIND that runs in the caller's thread: against Orthanc it lists what
pynetdicom listed, and a search stopped early leaves the node serving; the peers a reader
meets (down, refusing us, silent, not DICOM, hostile PDU sizes) end in one sentence."""

from __future__ import annotations

import dataclasses
import time

import pydicom
import pytest

from medview.net import dimse
from medview.net.errors import NetworkError
from medview.net.query import StudyQuery
from tests.net.orthanc import dimse_node, free_port
from tests.net.test_pdu_limit import HUGE, header, node_at, raw_peer, stream

pytestmark = pytest.mark.external


def test_the_listing_is_pynetdicoms(orthanc, stored_study):
    from pynetdicom import AE

    node = dimse_node(orthanc)
    rows = dimse.find_studies(node, StudyQuery())
    ae = AE(ae_title=node.our_ae)
    ae.add_requested_context(dimse.FIND_MODEL)
    assoc = ae.associate(node.host, node.port, ae_title=node.called_ae)
    try:
        answers = [
            ident
            for status, ident in assoc.send_c_find(
                dimse.study_identifier(StudyQuery()), dimse.FIND_MODEL
            )
            if status and status.Status in (0xFF00, 0xFF01)
        ]
    finally:
        assoc.release()
    assert sorted(r.study_uid for r in rows) == sorted(str(a.StudyInstanceUID) for a in answers)
    ds = pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm")))
    row = next(r for r in rows if r.study_uid == stored_study.study_instance_uid)
    assert (row.patient_name, row.patient_id) == (str(ds.PatientName), str(ds.PatientID))


def test_a_search_stopped_early_leaves_the_node_serving(orthanc, stored_study):
    node = dimse_node(orthanc)
    answers = dimse.iter_studies(node, StudyQuery())
    next(answers)
    answers.close()  # the reader cancelled: the association is aborted
    assert dimse.find_studies(node, StudyQuery())


def test_a_refused_ae_title(orthanc):
    with pytest.raises(NetworkError, match=r"refused the association.*STRANGER"):
        dimse.find_studies(dimse_node(orthanc, our_ae="STRANGER"), StudyQuery())


def test_a_node_that_is_down():
    with pytest.raises(NetworkError, match=r"nothing answers at 127\.0\.0\.1"):
        dimse.find_studies(node_at(free_port()), StudyQuery())


@pytest.mark.parametrize(
    ("answer", "sentence"),
    [
        (
            lambda c: c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
            "closed the connection without accepting the association; is it a DICOM node",
        ),
        (lambda c: time.sleep(3), r"did not answer the association request within 1\.5 s"),
        (
            lambda c: stream(c, header(0x02, HUGE)),
            r"sent a PDU of 4,294,967,280 bytes, more than the 1,048,576 MedView accepts",
        ),
    ],
    ids=["not-dicom", "silent", "oversized"],
)
def test_peers_that_fail_are_one_sentence(answer, sentence):
    with raw_peer(answer) as port:
        node = dataclasses.replace(node_at(port), timeout_s=1.5)
        started = time.monotonic()
        with pytest.raises(NetworkError, match=sentence):
            dimse.find_studies(node, StudyQuery())
        assert time.monotonic() - started < 5

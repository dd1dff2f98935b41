"""DIMSE against a real PACS (Orthanc): echo, C-STORE, C-FIND, C-GET, C-MOVE to MedView's
storage SCP, and the failures a reader meets (node down, refused AE title, no answer)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pydicom
import pytest

from medview.net import dimse
from medview.net.errors import NetworkError
from medview.net.query import StudyQuery
from medview.net.scp import StorageSCP
from tests.net.orthanc import dimse_node, free_port

pytestmark = pytest.mark.external


def test_echo_round_trip(orthanc):
    assert 0 < dimse.echo(dimse_node(orthanc)) < 5


def test_stored_demo_study_is_in_the_pacs(orthanc, stored_study):
    found = orthanc.rest("/tools/lookup", "POST", data=stored_study.study_instance_uid)
    study = next(f for f in found if f["Type"] == "Study")
    stats = orthanc.rest(f"/studies/{study['ID']}/statistics")
    assert int(stats["CountInstances"]) == stored_study.n_slices


def test_find_study_and_series(orthanc, stored_study):
    node = dimse_node(orthanc)
    ds = pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm")))
    rows = dimse.find_studies(node, StudyQuery(patient_id=str(ds.PatientID)))
    row = next(r for r in rows if r.study_uid == stored_study.study_instance_uid)
    assert row.patient_name == str(ds.PatientName)
    assert row.instance_count == stored_study.n_slices
    assert "CT" in row.modalities
    assert row.date == ds.StudyDate
    # a date range that excludes the study, and one that includes it
    assert not any(
        r.study_uid == row.study_uid
        for r in dimse.find_studies(node, StudyQuery(date_from="19000101", date_to="19000102"))
    )
    assert any(
        r.study_uid == row.study_uid
        for r in dimse.find_studies(
            node, StudyQuery(date_from=ds.StudyDate, date_to=ds.StudyDate, modality="CT")
        )
    )
    series = dimse.find_series(node, stored_study.study_instance_uid)
    assert [s.series_uid for s in series] == [stored_study.series_instance_uid]
    assert series[0].instances == stored_study.n_slices
    sops = dimse.find_instances(
        node, stored_study.study_instance_uid, stored_study.series_instance_uid
    )
    assert sorted(sops) == sorted(
        str(pydicom.dcmread(p).SOPInstanceUID) for p in stored_study.series_dir.glob("*.dcm")
    )


def _sink(received: dict):
    def sink(study, series, sop, encoded):
        received[sop] = (study, series, encoded)

    return sink


def test_c_get_returns_every_instance_byte_equal_pixels(orthanc, stored_study):
    received: dict = {}
    done, failed = dimse.get(dimse_node(orthanc), stored_study.study_instance_uid, _sink(received))
    assert (done, failed) == (stored_study.n_slices, 0)
    originals = {
        str(d.SOPInstanceUID): d
        for d in (pydicom.dcmread(p) for p in stored_study.series_dir.glob("*.dcm"))
    }
    assert set(received) == set(originals)
    from io import BytesIO

    for sop, (study, series, encoded) in received.items():
        assert (study, series) == (
            stored_study.study_instance_uid,
            stored_study.series_instance_uid,
        )
        got = pydicom.dcmread(BytesIO(encoded))
        assert (got.pixel_array == originals[sop].pixel_array).all()


def test_c_get_of_chosen_instances_only(orthanc, stored_study):
    node = dimse_node(orthanc)
    sops = sorted(
        dimse.find_instances(
            node, stored_study.study_instance_uid, stored_study.series_instance_uid
        )
    )[:3]
    received: dict = {}
    dimse.get(
        node,
        stored_study.study_instance_uid,
        _sink(received),
        series_uid=stored_study.series_instance_uid,
        sop_uids=sops,
    )
    assert sorted(received) == sops


def test_c_move_to_medview_storage_scp(orthanc, stored_study, tmp_path):
    node = dimse_node(orthanc)
    with StorageSCP(
        tmp_path, ae_title=node.our_ae, port=node.our_port, allowed_aes=[orthanc.aet]
    ) as scp:
        done, failed = dimse.move(node, stored_study.study_instance_uid)
        assert scp.received.stored == stored_study.n_slices
    assert (done, failed) == (stored_study.n_slices, 0)
    files = list(
        (tmp_path / stored_study.study_instance_uid / stored_study.series_instance_uid).glob(
            "*.dcm"
        )
    )
    assert len(files) == stored_study.n_slices
    assert not list(tmp_path.rglob("*.tmp"))


def test_node_down_is_one_sentence(orthanc):
    node = dimse_node(orthanc, port=free_port())
    with pytest.raises(NetworkError, match=r"nothing answers .* the node is down"):
        dimse.echo(node)


def test_a_search_shows_the_rows_found_so_far(orthanc, stored_study):
    """search_job emits the rows found while a DIMSE node is still answering (the first at
    once), each a beginning of the final list."""
    from medview.core.jobs import CancelToken, JobContext
    from medview.jobs.pacs import RowsSoFar, search_job
    from tests.job_driver import drive

    seen: list = []
    ctx = JobContext(CancelToken(), event=seen.append)
    result, _ = drive(search_job([dimse_node(orthanc)], StudyQuery(), ctx, include_local=False))
    assert stored_study.study_instance_uid in {r.study_uid for r in result.rows}
    assert seen and all(isinstance(e, RowsSoFar) for e in seen)
    assert all(e.rows == result.rows[: len(e.rows)] for e in seen)
    assert len(seen[0].rows) == 1


def test_a_search_cancelled_while_a_node_answers_aborts_it(orthanc, stored_study):
    """Cancelled at the first row: the job ends at once (the association is aborted, not
    released behind the rest of the answers) and the node answers the next query."""
    from medview.core.jobs import CancelToken, JobCancelled, JobContext
    from medview.jobs.pacs import search_job
    from tests.job_driver import drive

    token = CancelToken()
    ctx = JobContext(token, event=lambda _rows: token.cancel())
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        drive(search_job([dimse_node(orthanc)], StudyQuery(), ctx, include_local=False))
    assert time.monotonic() - started < 5
    assert dimse.find_studies(dimse_node(orthanc), StudyQuery())


@pytest.mark.parametrize("late", [False, True], ids=["as-it-comes", "closed-before-looked-at"])
def test_refused_ae_title(orthanc, monkeypatch, late):
    """Orthanc sends A-ASSOCIATE-RJ and closes the connection at once. pynetdicom's
    requesting thread may look after the close and take it for an abort (2 tries in 100):
    `late` makes that happen every time by holding the thread back after the request."""
    if late:
        from pynetdicom.acse import ACSE

        send = ACSE.send_request

        def send_then_wait(self):
            send(self)
            time.sleep(0.3)

        monkeypatch.setattr(ACSE, "send_request", send_then_wait)
    with pytest.raises(NetworkError, match=r"refused the association.*STRANGER"):
        dimse.echo(dimse_node(orthanc, our_ae="STRANGER"))
    with pytest.raises(NetworkError, match=r"refused the association.*NOTORTHANC"):
        dimse.echo(dimse_node(orthanc, called_ae="NOTORTHANC"))


def test_silent_peer_times_out(tmp_path):
    """A peer that accepts the connection and never answers: one sentence, no hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    from medview.net.nodes import DimseNode

    node = DimseNode(
        name="silent",
        called_ae="SILENT",
        host="127.0.0.1",
        port=server.getsockname()[1],
        timeout_s=1.5,
    )
    started = time.monotonic()
    try:
        with pytest.raises(NetworkError, match=r"did not answer .* within 1.5 s"):
            dimse.echo(node)
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        server.close()
    assert time.monotonic() - started < 10


def test_a_peer_that_is_not_dicom_is_one_sentence():
    """A server that answers the association request with bytes that are not a PDU."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def answer():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 64)
                conn.close()

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    from medview.net.nodes import DimseNode

    node = DimseNode(
        name="web-server",
        called_ae="X",
        host="127.0.0.1",
        port=server.getsockname()[1],
        timeout_s=5,
    )
    try:
        with pytest.raises(
            NetworkError,
            match="closed the connection without accepting the association; is it a DICOM node",
        ):
            dimse.echo(node)
    finally:
        stop.set()
        t.join()
        server.close()

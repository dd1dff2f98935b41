"""DICOMweb against a real PACS (Orthanc's DICOMweb plugin): QIDO-RS, WADO-RS, STOW-RS, and
the failures (server down, wrong credentials)."""

from __future__ import annotations

import time
from io import BytesIO

import pydicom
import pytest

from medview.net import web
from medview.net.errors import NetworkError
from medview.net.nodes import WebNode
from medview.net.query import StudyQuery
from tests.net.orthanc import free_port

pytestmark = pytest.mark.external


def web_node(orthanc, **kw) -> WebNode:
    return WebNode(**({"name": "orthanc-web", "url": orthanc.dicomweb_url, "timeout_s": 10.0} | kw))


def test_qido_finds_the_study_with_its_counts(orthanc, stored_study):
    ds = pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm")))
    rows = web.find_studies(web_node(orthanc), StudyQuery(patient_id=str(ds.PatientID)))
    row = next(r for r in rows if r.study_uid == stored_study.study_instance_uid)
    assert row.patient_name == str(ds.PatientName)
    assert row.instance_count == stored_study.n_slices
    assert row.date == ds.StudyDate
    assert not web.find_studies(
        web_node(orthanc),
        StudyQuery(
            study_uid=stored_study.study_instance_uid, date_from="19000101", date_to="19000101"
        ),
    )
    series = web.find_series(web_node(orthanc), stored_study.study_instance_uid)
    assert [s.series_uid for s in series] == [stored_study.series_instance_uid]
    assert (
        len(
            web.find_instances(
                web_node(orthanc), stored_study.study_instance_uid, stored_study.series_instance_uid
            )
        )
        == stored_study.n_slices
    )


def test_wado_returns_the_series_pixel_equal(orthanc, stored_study):
    received = {}

    def sink(study, series, sop, encoded):
        received[sop] = pydicom.dcmread(BytesIO(encoded))

    n = web.get(
        web_node(orthanc),
        stored_study.study_instance_uid,
        sink,
        series_uid=stored_study.series_instance_uid,
    )
    assert n == len(received) == stored_study.n_slices
    for p in stored_study.series_dir.glob("*.dcm"):
        original = pydicom.dcmread(p)
        got = received[str(original.SOPInstanceUID)]
        assert (got.pixel_array == original.pixel_array).all()
        assert got.ImagePositionPatient == original.ImagePositionPatient
    few = sorted(received)[:2]
    received.clear()
    web.get(
        web_node(orthanc),
        stored_study.study_instance_uid,
        sink,
        series_uid=stored_study.series_instance_uid,
        sop_uids=few,
    )
    assert sorted(received) == few


def test_echo_and_server_down(orthanc):
    assert web.echo(web_node(orthanc)) < 5
    down = web_node(orthanc, url=f"http://127.0.0.1:{free_port()}/dicom-web")
    started = time.monotonic()
    with pytest.raises(NetworkError, match="cannot be reached; the server is down"):
        web.echo(down)
    assert time.monotonic() - started < 6  # not half a minute of retries


def test_missing_secret_and_wrong_path(orthanc):
    with pytest.raises(NetworkError, match="needs a token and none is stored"):
        web.echo(web_node(orthanc, auth="bearer"))
    with pytest.raises(NetworkError, match="HTTP 404"):
        web.echo(web_node(orthanc, url=f"{orthanc.http_url}/no-dicom-web-here"))


def test_malformed_answers_are_one_sentence():
    """A server that answers QIDO-RS with something that is not DICOM JSON."""
    import http.server
    import threading

    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"not": "a list"' if "studies" in self.path else b"[1, 2"
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        node = WebNode(name="garbage", url=f"http://127.0.0.1:{server.server_port}/dw", timeout_s=5)
        with pytest.raises(
            NetworkError, match="answered the QIDO-RS search with a malformed response"
        ):
            web.find_studies(node, StudyQuery())
    finally:
        server.shutdown()
        thread.join()

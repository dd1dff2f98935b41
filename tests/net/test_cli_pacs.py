"""`medview pacs` end to end against a real PACS, and dcmtk as a second, independent peer:
storescu pushes into MedView's storage SCP, findscu and getscu ask Orthanc what MedView asked,
and the answers are compared."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tests.net.orthanc import free_port

pytestmark = pytest.mark.external


def medview(*args, env_dir: Path, timeout=120) -> subprocess.CompletedProcess:
    env = os.environ | {"MEDVIEW_DATA_DIR": str(env_dir)}
    return subprocess.run(
        [sys.executable, "-m", "medview", "--log-file", str(env_dir / "log.txt"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def node_url(orthanc, ae=None) -> str:
    return f"dicom://{ae or orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"


def test_echo_find_get_send_by_the_command_line(orthanc, stored_study, tmp_path):
    from medview.net.nodes import save_nodes
    from tests.net.orthanc import dimse_node

    save_nodes([dimse_node(orthanc, name="hospital")], tmp_path / "pacs" / "nodes.json")
    ok = medview("pacs", "echo", "hospital", env_dir=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert re.fullmatch(r"hospital: answered in \d+ ms\n", ok.stdout)
    ds = pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm")))
    found = medview(
        "pacs",
        "find",
        node_url(orthanc),
        "--patient-id",
        str(ds.PatientID),
        "--modality",
        "CT",
        "--json",
        env_dir=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    studies = json.loads(found.stdout)["studies"]
    row = next(s for s in studies if s["study_uid"] == stored_study.study_instance_uid)
    assert row["instances"] == stored_study.n_slices and "patient_id" not in row
    web = medview(
        "pacs",
        "find",
        orthanc.dicomweb_url,
        "--patient-id",
        str(ds.PatientID),
        "--json",
        "--show-phi",
        env_dir=tmp_path,
    )
    web_row = next(
        s
        for s in json.loads(web.stdout)["studies"]
        if s["study_uid"] == stored_study.study_instance_uid
    )
    assert web_row["patient_id"] == str(ds.PatientID)
    assert {
        k: v for k, v in web_row.items() if k not in ("source", "patient_id", "patient_name")
    } == {k: v for k, v in row.items() if k != "source"}
    for how in ([], ["--move"]):
        out = tmp_path / f"got{len(how)}"
        got = medview(
            "pacs",
            "get",
            "hospital",
            stored_study.study_instance_uid,
            "--out",
            str(out),
            *how,
            env_dir=tmp_path,
        )
        assert got.returncode == 0, got.stderr
        assert got.stdout.startswith(f"{stored_study.n_slices} instances retrieved, 0 already")
        assert len(list(out.rglob("*.dcm"))) == stored_study.n_slices
    sent = medview("pacs", "send", "hospital", str(stored_study.series_dir), env_dir=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == f"{stored_study.n_slices} instances sent to hospital\n"


def test_failures_are_one_line(orthanc, tmp_path):
    down = medview("pacs", "echo", f"dicom://X@127.0.0.1:{free_port()}", env_dir=tmp_path)
    assert down.returncode == 1 and down.stdout == ""
    assert re.fullmatch(
        r"medview: dicom://X@127\.0\.0\.1:\d+: nothing answers at .*; the "
        r"node is down or the port is wrong\n",
        down.stderr,
    )
    bad = medview("pacs", "echo", "dicom://nohost", env_dir=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr == ("medview: dicom://nohost: write a DIMSE node as dicom://AE@host:port\n")
    unknown = medview("pacs", "find", "mypacs", env_dir=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    assert "mypacs: no such PACS node (saved nodes: none saved yet)" in unknown.stderr
    baddate = medview("pacs", "find", node_url(orthanc), "--date", "2020-01-01", env_dir=tmp_path)
    assert baddate.returncode == 1 and "is not YYYYMMDD" in baddate.stderr


def _start_listen(tmp_path: Path, port: int, *extra: str) -> subprocess.Popen:
    env = os.environ | {"MEDVIEW_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medview",
            "--log-file",
            str(tmp_path / "log.txt"),
            "pacs",
            "listen",
            "--port",
            str(port),
            *extra,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stderr.readline()
    assert line.startswith(f"listening as MEDVIEW on port {port}"), line
    return proc


def test_dcmtk_storescu_pushes_into_medview_listen(orthanc, dcmtk, stored_study, tmp_path):
    port = free_port()
    files = sorted(str(p) for p in stored_study.series_dir.glob("*.dcm"))
    hostile = tmp_path / "hostile.dcm"
    ds = pydicom.dcmread(files[0])
    ds.SeriesInstanceUID = "../../../../tmp/evil"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.save_as(hostile)
    proc = _start_listen(tmp_path, port, "--allow", orthanc.dcmtk_aet)
    try:
        push = subprocess.run(
            [
                str(dcmtk / "storescu"),
                "-aet",
                orthanc.dcmtk_aet,
                "-aec",
                "MEDVIEW",
                "127.0.0.1",
                str(port),
                *files,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert push.returncode == 0, push.stderr
        stranger = subprocess.run(
            [
                str(dcmtk / "storescu"),
                "-aet",
                "STRANGER",
                "-aec",
                "MEDVIEW",
                "127.0.0.1",
                str(port),
                files[0],
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stranger.returncode != 0
        assert "Rejected" in stranger.stderr or "rejected" in stranger.stderr
        evil = subprocess.run(
            [
                str(dcmtk / "storescu"),
                "-aet",
                orthanc.dcmtk_aet,
                "-aec",
                "MEDVIEW",
                "127.0.0.1",
                str(port),
                str(hostile),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert evil.returncode != 0  # refused with 0xC000; nothing written (checked below)
    finally:
        proc.send_signal(2)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1  # an instance was refused
    assert err.rstrip().endswith(f"stopped; {len(files)} instances received")
    received = sorted((tmp_path / "pacs" / "received").rglob("*.dcm"))
    assert len(received) == len(files)
    assert all(p.parent.name == stored_study.series_instance_uid for p in received)
    assert not Path("/tmp/evil").exists()
    assert all(
        f.suffix == ".dcm" for f in (tmp_path / "pacs" / "received").rglob("*") if f.is_file()
    )
    # the database indexed them as they arrived
    from medview.net.studydb import StudyDB

    db = StudyDB(tmp_path / "pacs" / "studies.sqlite", tmp_path / "pacs" / "received")
    assert db.studies()[0].instance_count == len(files)


def test_dcmtk_findscu_and_getscu_agree_with_medview(orthanc, dcmtk, stored_study, tmp_path):
    from medview.net import dimse
    from medview.net.query import StudyQuery
    from tests.net.orthanc import dimse_node

    peer = ["-aet", orthanc.dcmtk_aet, "-aec", orthanc.aet, "127.0.0.1", str(orthanc.dicom_port)]
    answers = tmp_path / "find"
    answers.mkdir()
    find = subprocess.run(
        [
            str(dcmtk / "findscu"),
            "-S",
            "-X",
            "-od",
            str(answers),
            *peer,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID",
            "-k",
            "StudyDate",
            "-k",
            "NumberOfStudyRelatedInstances",
            "-k",
            "ModalitiesInStudy",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert find.returncode == 0, find.stderr
    theirs = {
        str(d.StudyInstanceUID): (str(d.StudyDate), int(d.NumberOfStudyRelatedInstances))
        for d in map(pydicom.dcmread, answers.glob("*.dcm"))
    }
    ours = {
        r.study_uid: (r.date, r.instance_count)
        for r in dimse.find_studies(dimse_node(orthanc), StudyQuery())
    }
    assert theirs == ours and stored_study.study_instance_uid in ours
    got = tmp_path / "get"
    got.mkdir()
    get = subprocess.run(
        [
            str(dcmtk / "getscu"),
            "-S",
            "-od",
            str(got),
            *peer,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={stored_study.study_instance_uid}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert get.returncode == 0, get.stderr
    theirs_px = {str(d.SOPInstanceUID): d.pixel_array for d in map(pydicom.dcmread, got.iterdir())}
    mine = {}
    dimse.get(
        dimse_node(orthanc),
        stored_study.study_instance_uid,
        lambda st, se, sop, enc: mine.__setitem__(sop, enc),
    )
    from io import BytesIO

    assert set(mine) == set(theirs_px)
    for sop, enc in mine.items():
        assert (pydicom.dcmread(BytesIO(enc)).pixel_array == theirs_px[sop]).all()


def test_listen_on_a_port_in_use_or_with_no_allowed_ae_is_one_line(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        run = medview("pacs", "listen", "--port", str(port), "--any-ae", env_dir=tmp_path)
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert run.stderr.startswith(f"medview: port {port}: MedView's storage SCP cannot listen there")
    none = medview("pacs", "listen", "--port", str(free_port()), env_dir=tmp_path)
    assert none.returncode == 1
    assert none.stderr == (
        "medview: no calling AE title is allowed: save a DIMSE node, give --allow AE, or --any-ae\n"
    )

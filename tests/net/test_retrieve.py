"""Retrieval as a job against a real PACS: by C-GET, C-MOVE and WADO-RS into the received
folder and the study database; a cut retrieval resumed fetching only what is missing; a full
disk stops with one sentence and keeps what arrived; the database rebuilt when damaged."""

from __future__ import annotations

import errno

import pydicom
import pytest

from medview.core.jobs import CancelToken, JobCancelled, JobContext
from medview.net import retrieve as retrieve_mod
from medview.net import storage
from medview.net.errors import DiskFullError
from medview.net.nodes import WebNode
from medview.net.query import StudyQuery
from medview.net.studydb import StudyDB
from tests.net.orthanc import dimse_node

pytestmark = pytest.mark.external


def _pixels_equal(study, folder):
    got = {str(d.SOPInstanceUID): d for d in map(pydicom.dcmread, folder.rglob("*.dcm"))}
    assert len(got) == study.n_slices
    for p in study.series_dir.glob("*.dcm"):
        ds = pydicom.dcmread(p)
        assert (got[str(ds.SOPInstanceUID)].pixel_array == ds.pixel_array).all()


@pytest.mark.parametrize("how", ["get", "move", "wado"])
def test_retrieve_whole_study(orthanc, stored_study, tmp_path, how):
    node = (
        WebNode(name="web", url=orthanc.dicomweb_url)
        if how == "wado"
        else dimse_node(orthanc, retrieve=how)
    )
    db = StudyDB(tmp_path / "db.sqlite", tmp_path / "received")
    seen, shown = [], []
    ctx = JobContext(CancelToken(), progress=seen.append, event=shown.append)
    result = retrieve_mod.retrieve(
        node, stored_study.study_instance_uid, ctx, db=db, root=tmp_path / "received"
    )
    assert (result.fetched, result.already_here) == (stored_study.n_slices, 0)
    assert len(shown) == stored_study.n_slices  # each instance announced as it arrived
    assert seen[-1].fraction == 1.0 and seen[-1].message == "20 of 20 instances"
    _pixels_equal(stored_study, result.folder)
    rows = db.studies(StudyQuery(study_uid=stored_study.study_instance_uid))
    assert rows[0].instance_count == stored_study.n_slices and rows[0].modalities == ("CT",)
    assert not list((tmp_path / "received").rglob("*.tmp"))
    again = retrieve_mod.retrieve(
        node, stored_study.study_instance_uid, ctx, db=db, root=tmp_path / "received"
    )
    assert (again.fetched, again.already_here) == (0, stored_study.n_slices)


def test_cut_retrieval_resumes_with_only_the_missing(orthanc, stored_study, tmp_path):
    node = dimse_node(orthanc)
    db = StudyDB(tmp_path / "db.sqlite", tmp_path / "received")
    cancel = CancelToken()
    arrived = []

    def on_file(path):
        arrived.append(path)
        if len(arrived) == 7:
            cancel.cancel()

    with pytest.raises(JobCancelled):
        retrieve_mod.retrieve(
            node,
            stored_study.study_instance_uid,
            JobContext(cancel, event=on_file),
            db=db,
            root=tmp_path / "received",
        )
    kept = len(list((tmp_path / "received").rglob("*.dcm")))
    assert 7 <= kept < stored_study.n_slices
    result = retrieve_mod.retrieve(
        node,
        stored_study.study_instance_uid,
        JobContext(CancelToken()),
        db=db,
        root=tmp_path / "received",
    )
    assert result.already_here == kept
    assert result.fetched == stored_study.n_slices - kept
    _pixels_equal(stored_study, result.folder)


def test_full_disk_stops_in_one_sentence_and_keeps_what_arrived(
    orthanc, stored_study, tmp_path, monkeypatch
):
    real = storage.atomic_write_bytes
    calls = []

    def filling(path, data, **kw):
        calls.append(path)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, **kw)

    monkeypatch.setattr(storage, "atomic_write_bytes", filling)
    db = StudyDB(tmp_path / "db.sqlite", tmp_path / "received")
    with pytest.raises(DiskFullError, match="the disk is full; the retrieval stopped"):
        retrieve_mod.retrieve(
            dimse_node(orthanc),
            stored_study.study_instance_uid,
            JobContext(CancelToken()),
            db=db,
            root=tmp_path / "received",
        )
    kept = list((tmp_path / "received").rglob("*.dcm"))
    assert len(kept) == 5
    assert len(db.instances_of(stored_study.series_instance_uid)) == 5
    assert all(pydicom.dcmread(p).SOPInstanceUID for p in kept)


def test_damaged_database_is_rebuilt_from_the_files(orthanc, stored_study, tmp_path):
    db = StudyDB(tmp_path / "db.sqlite", tmp_path / "received")
    retrieve_mod.retrieve(
        dimse_node(orthanc),
        stored_study.study_instance_uid,
        JobContext(CancelToken()),
        db=db,
        root=tmp_path / "received",
    )
    db.close()
    (tmp_path / "db.sqlite").write_bytes(b"this is not SQLite " * 300)
    again = StudyDB(tmp_path / "db.sqlite", tmp_path / "received")
    assert again.notice.startswith("The study database was damaged")
    assert "rebuilt from the 20 received files" in again.notice
    assert (tmp_path / "db.sqlite.damaged-1").exists()
    assert again.studies()[0].instance_count == stored_study.n_slices

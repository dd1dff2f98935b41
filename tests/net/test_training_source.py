"""Training from the PACS: pacs://NODE?query finds the studies that carry a MedView SEG
marked done (the newest per series; a draft is ignored), retrieves them, and makes the folder
of labelled studies training reads, its labels equal to the SEG's voxel for voxel."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from medview.core.errors import InvalidInputError
from medview.core.labels import LabelMap, segment_for
from medview.io.dicom.index import scan
from medview.io.image_files import read_image
from medview.io.labels.seg import export_seg
from medview.net import dimse
from medview.net.nodes import save_nodes
from medview.net.training_source import fetch_training_data, parse_pacs_data
from tests.net.orthanc import dimse_node

pytestmark = pytest.mark.external


def test_the_address_and_its_bad_forms():
    node, q = parse_pacs_data("pacs://hospital?patient_id=P1&modality=CT&date=20200101-")
    assert (node, q.patient_id, q.modality, q.date_from, q.date_to) == (
        "hospital",
        "P1",
        "CT",
        "20200101",
        "",
    )
    with pytest.raises(InvalidInputError, match="names no node"):
        parse_pacs_data("pacs://?modality=CT")
    with pytest.raises(InvalidInputError, match="unknown search term 'colour'"):
        parse_pacs_data("pacs://hospital?colour=red")
    with pytest.raises(InvalidInputError, match="is not YYYYMMDD"):
        parse_pacs_data("pacs://hospital?date=2020")


def test_done_labels_on_the_pacs_become_training_studies(
    orthanc, stored_study, tmp_path, monkeypatch
):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    node = dimse_node(orthanc, name="hospital")
    save_nodes([node])
    (series,) = scan([stored_study.series_dir]).series
    truth = read_image(stored_study.labels_path).array.astype(np.uint8)
    draft = LabelMap(np.where(truth > 0, 1, 0).astype(np.uint8), {1: segment_for(1, "lung nodule")})
    done = LabelMap(
        truth.copy(), {1: segment_for(1, "lung nodule"), 2: segment_for(2, "liver lesion")}
    )
    export_seg(draft, series, tmp_path / "draft.dcm")
    export_seg(done, series, tmp_path / "done.dcm", done=True)
    assert dimse.send(node, [tmp_path / "draft.dcm", tmp_path / "done.dcm"]) == 2
    pid = str(pydicom.dcmread(next(stored_study.series_dir.glob("*.dcm"))).PatientID)
    out = fetch_training_data(f"pacs://hospital?patient_id={pid}")
    (study,) = [p for p in out.iterdir() if p.is_dir()]
    assert len(list((study / "series").glob("*.dcm"))) == stored_study.n_slices
    labels = read_image(study / "labels.nii.gz").array
    assert np.array_equal(labels, truth)  # the done SEG, not the draft
    record = json.loads((out / "pacs.json").read_text())
    assert record["node"] == node.address
    assert record["studies"][study.name]["segments"] == {"1": "lung nodule", "2": "liver lesion"}
    assert len(record["studies"][study.name]["seg_sha256"]) == 64
    from medview.ai.training.data import find_studies

    (found,) = find_studies(out)
    assert found.key
    with pytest.raises(InvalidInputError, match="holds no study with MedView labels marked done"):
        fetch_training_data("pacs://hospital?patient_id=NOBODY")


def test_train_from_a_pacs_without_labelled_studies_is_one_line(orthanc, tmp_path):
    from tests.net.test_cli_pacs import medview

    save_nodes([dimse_node(orthanc, name="hospital")], tmp_path / "pacs" / "nodes.json")
    run = medview(
        "train",
        "--data",
        "pacs://hospital?patient_id=NOBODY",
        "--base",
        "lesion-seg",
        env_dir=tmp_path,
        timeout=300,
    )
    assert run.returncode == 1
    assert run.stderr == (
        "medview: pacs://hospital?patient_id=NOBODY: hospital holds no "
        "study with MedView labels marked done that matches the query\n"
    )

"""Results back to the PACS: the AI's SEG and a TID 1500 Measurement Report SR (highdicom),
sent by C-STORE and STOW-RS to a real PACS and read back by WADO-RS equal, voxel for voxel
and value for value; the SR passes dciodvfy without errors."""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medview.ai.models.cards import card_from_dict
from medview.core.findings import Finding
from medview.io.dicom.index import scan
from medview.io.dicom.seg import read_seg, write_seg
from medview.io.dicom.sr import write_measurement_report
from medview.io.image_files import read_image
from medview.net import dimse, web
from medview.net.nodes import WebNode
from tests.net.orthanc import dimse_node

pytestmark = pytest.mark.external

CARD = card_from_dict(
    {
        "name": "lesion-seg",
        "version": "1.2",
        "task": "segmentation",
        "modality": "CT",
        "labels": [
            {
                "value": 1,
                "name": "lung nodule",
                "colour": [255, 80, 0],
                "code": ["SCT", "786838002", "Pulmonary nodule"],
            },
            {"value": 2, "name": "liver lesion", "colour": [0, 200, 255]},
        ],
        "intensity": {"low": -1000, "high": 400},
        "architecture": "monai.UNet",
    },
    "card",
)


def finding(i: int, label: int, name: str, decision: str) -> Finding:
    return Finding(
        id=i,
        label_value=label,
        label_name=name,
        voxel_count=100 * i,
        volume_ml=1.25 * i,
        longest_axial_diameter_mm=7.5 + i,
        centroid_lps=(1.0, 2.0, 3.0),
        centroid_index=(5.0, 200.0, 210.0),
        bbox_index=((4, 190, 200), (6, 210, 220)),
        slice_range=(4, 6),
        mean_hu=35.5 - i,
        peak_probability=0.9,
        mean_probability=0.7,
        uncertainty=None,
        model_name=CARD.name,
        model_version=CARD.version,
        threshold=0.5,
        decision=decision,
    )


@pytest.fixture(scope="module")
def results(stored_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    (series,) = scan([stored_study.series_dir]).series
    labels = read_image(stored_study.labels_path).array.astype(np.uint8)
    write_seg(labels, series, CARD, out / "seg.dcm")
    findings = [finding(1, 1, "lung nodule", "accepted"), finding(2, 2, "liver lesion", "rejected")]
    files = sorted(stored_study.series_dir.glob("*.dcm"))
    write_measurement_report(findings, files, out / "seg.dcm", out / "sr.dcm")
    return series, labels, out / "seg.dcm", out / "sr.dcm"


def numbers(ds) -> list[tuple[str, float]]:
    """Every numeric item of an SR's content tree, as (concept, value), in tree order."""
    found = []

    def walk(items):
        for item in items:
            if item.ValueType == "NUM":
                found.append(
                    (
                        item.ConceptNameCodeSequence[0].CodeMeaning,
                        float(item.MeasuredValueSequence[0].NumericValue),
                    )
                )
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return found


def test_sr_names_the_model_and_holds_the_measurements(results):
    _, _, _, sr_path = results
    sr = pydicom.dcmread(sr_path)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert numbers(sr) == [
        ("Volume", 1.25),
        ("Long Axis", 8.5),
        ("Mean", 34.5),
        ("Volume", 2.5),
        ("Long Axis", 9.5),
        ("Mean", 33.5),
    ]
    text = str(sr)
    assert "lesion-seg" in text and "1.2" in text


@pytest.mark.skipif(not Path("/usr/bin/dciodvfy").exists(), reason="dciodvfy not installed")
def test_sr_passes_dciodvfy(results):
    report = subprocess.run(
        ["/usr/bin/dciodvfy", str(results[3])], capture_output=True, text=True, timeout=120
    )
    text = report.stdout + report.stderr
    assert "Comprehensive3DSR" in text or "Comprehensive 3D SR" in text, text[:400]
    assert not [line for line in text.splitlines() if line.startswith("Error")], text


def test_c_store_then_stow_and_wado_read_back_equal(orthanc, stored_study, results):
    series, labels, seg_path, sr_path = results
    assert dimse.send(dimse_node(orthanc), [seg_path, sr_path]) == 2
    study = next(
        f
        for f in orthanc.rest("/tools/lookup", "POST", data=stored_study.study_instance_uid)
        if f["Type"] == "Study"
    )
    modalities = {
        s["MainDicomTags"]["Modality"] for s in orthanc.rest(f"/studies/{study['ID']}/series")
    }
    assert {"CT", "SEG", "SR"} <= modalities
    for ds in map(pydicom.dcmread, (seg_path, sr_path)):
        for found in orthanc.rest("/tools/lookup", "POST", data=str(ds.SeriesInstanceUID)):
            orthanc.rest(f"/series/{found['ID']}", "DELETE")
    node = WebNode(name="web", url=orthanc.dicomweb_url)
    assert web.send(node, [seg_path, sr_path]) == 2
    back = {}

    def sink(study_uid, series_uid, sop, encoded):
        back[sop] = encoded

    for path in (seg_path, sr_path):
        ds = pydicom.dcmread(path)
        web.get(node, stored_study.study_instance_uid, sink, series_uid=str(ds.SeriesInstanceUID))
    seg_ds, sr_ds = map(pydicom.dcmread, (seg_path, sr_path))
    seg_back = seg_path.with_name("seg-back.dcm")
    seg_back.write_bytes(back[str(seg_ds.SOPInstanceUID)])
    got = read_seg(seg_back, series)
    assert np.array_equal(got.label_map, labels)
    sr_back = pydicom.dcmread(BytesIO(back[str(sr_ds.SOPInstanceUID)]))
    assert numbers(sr_back) == numbers(sr_ds)
    assert sr_back.ContentSequence == sr_ds.ContentSequence


def test_send_an_infer_folder_sends_seg_and_a_report(orthanc, stored_study, results, tmp_path):
    """`medview pacs send NODE INFER_DIR`: the SEG and an SR made from findings.json."""
    import json
    import shutil

    from tests.net.test_cli_pacs import medview

    _, _, seg_path, _ = results
    folder = tmp_path / "infer-out"
    folder.mkdir()
    shutil.copy(seg_path, folder / "seg.dcm")
    found = [finding(1, 1, "lung nodule", "pending").to_dict()]
    (folder / "findings.json").write_text(
        json.dumps(
            {
                "input": str(stored_study.series_dir),
                "findings": found,
                "series_instance_uid": stored_study.series_instance_uid,
            }
        )
    )
    before = sorted(p.name for p in folder.iterdir())
    sent = medview("pacs", "send", orthanc.dicomweb_url, str(folder), env_dir=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == f"2 instances sent to {orthanc.dicomweb_url}\n"
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written there
    study = next(
        f
        for f in orthanc.rest("/tools/lookup", "POST", data=stored_study.study_instance_uid)
        if f["Type"] == "Study"
    )
    descriptions = [
        s["MainDicomTags"].get("SeriesDescription", "")
        for s in orthanc.rest(f"/studies/{study['ID']}/series")
    ]
    assert "AI findings (lesion-seg 1.2)" in descriptions
    (folder / "findings.json").write_text("{not json")
    bad = medview("pacs", "send", orthanc.dicomweb_url, str(folder), env_dir=tmp_path)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "findings.json: is not a findings file of medview infer" in bad.stderr

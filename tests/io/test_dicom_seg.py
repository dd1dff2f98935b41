"""io.dicom_seg: the SEG read back by highdicom and, independently, by pydicom equals the label
map voxel for voxel on the right slices; it names the algorithm and the disclaimer; the
source files are untouched; gaps and empty maps are handled; dciodvfy finds no error."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medview.ai.models.cards import DISCLAIMER, card_from_dict
from medview.core.errors import UnsupportedInputError
from medview.io.dicom.index import scan
from medview.io.dicom.seg import CONTENT_LABEL, read_seg, write_seg
from medview.io.dicom.seg import DISCLAIMER as SEG_DISCLAIMER
from medview.io.image_files import read_image

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


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from medview.demo import generate_demo_study

    demo = generate_demo_study(tmp_path_factory.mktemp("demo"), seed=3, slices=24)
    (series,) = scan([demo.series_dir]).series
    labels = read_image(demo.labels_path).array.astype(np.uint8)
    assert labels.shape == (24, 512, 512) and set(np.unique(labels)) == {0, 1, 2}
    return demo, series, labels


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def read_with_pydicom(path: Path, series) -> np.ndarray:
    """Independent of highdicom: unpack the frames and place each by its plane position
    and referenced segment number."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    by_z = {round(float(f.position_lps[2]), 3): k for k, f in enumerate(series.slices) if f}
    out = np.zeros((len(series.slices), ds.Rows, ds.Columns), np.uint8)
    for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
        pos = [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient]
        k = by_z[round(pos[2], 3)]
        np.testing.assert_allclose(pos, series.slices[k].position_lps, atol=1e-3)
        source = group.DerivationImageSequence[0].SourceImageSequence[0]
        assert source.ReferencedSOPInstanceUID == series.slices[k].sop_instance_uid
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        out[k][frame > 0] = number
    return out


def test_seg_equals_the_label_map_read_by_highdicom_and_pydicom(tmp_path, study):
    import highdicom as hd

    demo, series, labels = study
    before = digest(demo.series_dir)
    out = tmp_path / "seg.dcm"
    assert write_seg(labels, series, CARD, out) == []
    assert digest(demo.series_dir) == before  # sources untouched

    back = read_seg(out, series)
    np.testing.assert_array_equal(back.label_map, labels)
    assert back.segment_labels == {1: "lung nodule", 2: "liver lesion"}
    assert back.algorithm == ("lesion-seg", "1.2") and back.content_label == CONTENT_LABEL
    assert DISCLAIMER in back.series_description
    np.testing.assert_array_equal(read_with_pydicom(out, series), labels)

    seg = hd.seg.segread(out)
    assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG"
    assert seg.ContentDescription == DISCLAIMER
    first = seg.SegmentSequence[0]
    assert first.SegmentAlgorithmType == "AUTOMATIC"
    family = first.SegmentationAlgorithmIdentificationSequence[0].AlgorithmFamilyCodeSequence[0]
    assert family.CodeMeaning == "Artificial Intelligence"
    assert first.SegmentedPropertyTypeCodeSequence[0].CodeValue == "786838002"
    assert seg.StudyInstanceUID == series.study_instance_uid
    assert seg.FrameOfReferenceUID == series.frame_of_reference_uid
    assert SEG_DISCLAIMER == DISCLAIMER


def test_empty_label_map_is_still_a_valid_seg(tmp_path, study):
    _, series, labels = study
    out = tmp_path / "empty.dcm"
    write_seg(np.zeros_like(labels), series, CARD, out)
    back = read_seg(out, series)
    assert not back.label_map.any() and len(back.segment_labels) == 2


def test_blank_slices_filling_a_gap_are_left_out_and_said(tmp_path, study):
    demo, _, labels = study
    gap = tmp_path / "gap"
    shutil.copytree(demo.series_dir, gap)
    (gap / "IM0012.dcm").unlink()
    (series,) = scan([gap]).series
    blank = [k for k, f in enumerate(series.slices) if f is None]
    assert len(series.slices) == 24 and len(blank) == 1
    marked = labels.copy()
    marked[blank[0], 10:20, 10:20] = 1
    notes = write_seg(marked, series, CARD, tmp_path / "gap.dcm")
    lost = np.count_nonzero(marked[blank[0]])
    assert lost >= 100 and len(notes) == 1 and f"{lost} labelled voxel(s)" in notes[0]
    back = read_seg(tmp_path / "gap.dcm", series)
    expected = marked.copy()
    expected[blank[0]] = 0
    np.testing.assert_array_equal(back.label_map, expected)
    np.testing.assert_array_equal(read_with_pydicom(tmp_path / "gap.dcm", series), expected)


def test_bad_label_maps_are_refused(tmp_path, study):
    _, series, labels = study
    with pytest.raises(ValueError, match="values"):
        write_seg(np.full_like(labels, 5), series, CARD, tmp_path / "x.dcm")
    with pytest.raises(ValueError, match="grid"):
        write_seg(labels[:3], series, CARD, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_multi_frame_sources_are_refused_in_one_sentence(study):
    from dataclasses import replace

    _, series, labels = study
    first = series.slices[0]
    multi = replace(
        series,
        slices=[
            replace(first, pixel=replace(first.pixel, n_frames=24), frame_index=k)
            for k in range(24)
        ],
    )
    with pytest.raises(UnsupportedInputError, match="multi-frame"):
        write_seg(labels, multi, CARD, "unused.dcm")


@pytest.mark.external
@pytest.mark.skipif(not Path("/usr/bin/dciodvfy").exists(), reason="dciodvfy not installed")
def test_dciodvfy_finds_no_error(tmp_path, study):
    _, series, labels = study
    out = tmp_path / "seg.dcm"
    write_seg(labels, series, CARD, out)
    report = subprocess.run(
        ["/usr/bin/dciodvfy", str(out)], capture_output=True, text=True, timeout=120
    )
    text = report.stdout + report.stderr
    assert "Segmentation" in text
    assert not [line for line in text.splitlines() if line.startswith("Error")], text

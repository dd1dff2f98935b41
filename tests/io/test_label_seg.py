"""io.label_seg: the reader's label map as DICOM SEG read back by highdicom (its own geometry,
not ours) and by pydicom frame by frame equals the map voxel for voxel on an oblique series
stored in reverse; segments carry their codes and MANUAL / SEMIAUTOMATIC with the model;
dciodvfy finds no error; SEGs built independently with highdicom import (by reference, by
geometry, fractional, overlapping), and one that fits no open series is refused in one
sentence naming the file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medview.core.errors import InvalidInputError
from medview.core.labels import LabelMap
from medview.io.dicom.index import scan
from medview.io.labels.match import LabelTarget
from medview.io.labels.seg import export_seg, import_seg
from tests.dicom_factory import write_ct_series

OBLIQUE = (0.8660254, 0.5, 0.0, 0.0, 0.0, -1.0)  # a coronal-ish plane turned by 30°
SHAPE = (10, 24, 32)


def series_at(folder: Path, label: str, orientation=OBLIQUE, origin=(-12.0, -9.0, 40.0)):
    normal = np.cross(orientation[:3], orientation[3:])
    write_ct_series(
        folder,
        n=SHAPE[0],
        rows=SHAPE[1],
        cols=SHAPE[2],
        orientation=orientation,
        step=-2.0 * normal,
        origin=origin,
        shuffle=True,
        label=label,
    )
    (series,) = scan([folder]).series
    return series


@pytest.fixture(scope="module")
def oblique(tmp_path_factory):
    """An oblique series written in reverse order (the reader flips it) and labels that
    change under any flip or transpose."""
    series = series_at(tmp_path_factory.mktemp("oblique"), "oblique")
    lm = LabelMap.empty(SHAPE, series.key)
    lm.add_segment("Liver")
    lm.add_segment("Nodule", made_by="lesion-seg:1.2")
    lm.array[1:4, 2:9, 3:20] = 1
    lm.array[6, 15:18, 25:31] = 2
    lm.array[0, 0, 0] = 2
    lm.array[9, 23, 31] = 1
    return series, lm


def test_export_is_read_back_by_highdicom_on_its_own_geometry(tmp_path, oblique):
    import highdicom as hd

    series, lm = oblique
    out = tmp_path / "labels.dcm"
    assert export_seg(lm, series, out) == []
    seg = hd.seg.segread(out)
    first, second = seg.SegmentSequence
    assert first.SegmentAlgorithmType == "MANUAL" and first.SegmentLabel == "Liver"
    assert first.SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"
    assert second.SegmentAlgorithmType == "SEMIAUTOMATIC"
    algo = second.SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("lesion-seg", "1.2")
    assert "lesion-seg:1.2" in seg.ContentDescription
    # highdicom's volume, placed by its own affine onto ours
    vol = seg.get_volume(combine_segments=True)
    inv = np.linalg.inv(series.affine)
    back = np.zeros(SHAPE, np.uint8)
    for s in range(vol.array.shape[0]):
        ijk = inv @ vol.affine @ np.array([s, 0, 0, 1.0])
        k = round(float(ijk[0]))
        np.testing.assert_allclose(ijk[:3], [k, 0, 0], atol=1e-3)
        np.testing.assert_allclose((inv @ vol.affine)[:3, 1:3], np.eye(3)[:, 1:3], atol=1e-4)
        back[k] = vol.array[s]
    np.testing.assert_array_equal(back, lm.array)


def test_export_is_read_back_by_pydicom_frame_by_frame(tmp_path, oblique):
    series, lm = oblique
    out = tmp_path / "labels.dcm"
    export_seg(lm, series, out)
    ds = pydicom.dcmread(out)
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    by_uid = {f.sop_instance_uid: k for k, f in enumerate(series.slices)}
    inv = np.linalg.inv(series.affine)
    back = np.zeros(SHAPE, np.uint8)
    for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        pos = [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient]
        k = by_uid[uid]
        np.testing.assert_allclose((inv @ [*pos, 1.0])[:3], [k, 0, 0], atol=1e-3)
        back[k][frame > 0] = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
    np.testing.assert_array_equal(back, lm.array)


def test_export_then_import_gives_the_same_map_and_table(tmp_path, oblique):
    series, lm = oblique
    out = tmp_path / "labels.dcm"
    export_seg(lm, series, out)
    imp = import_seg(out, [LabelTarget.from_series(series)])
    np.testing.assert_array_equal(imp.label_map.array, lm.array)
    assert imp.series_key == series.key and imp.notes == []
    for v, seg in lm.segments.items():
        got = imp.label_map.segments[v]
        assert (got.name, got.type, got.category, got.made_by) == (
            seg.name,
            seg.type,
            seg.category,
            seg.made_by,
        )
        assert np.abs(np.subtract(got.colour, seg.colour)).max() <= 1


def test_no_segments_is_refused(tmp_path, oblique):
    series, _ = oblique
    with pytest.raises(InvalidInputError, match="no segments"):
        export_seg(LabelMap.empty(SHAPE), series, tmp_path / "x.dcm")


@pytest.mark.external
@pytest.mark.skipif(not Path("/usr/bin/dciodvfy").exists(), reason="dciodvfy not installed")
def test_dciodvfy_finds_no_error_on_a_demo_study(tmp_path):
    from medview.demo import generate_demo_study
    from medview.io.image_files import read_image

    demo = generate_demo_study(tmp_path / "demo", seed=5, slices=40)
    (series,) = scan([demo.series_dir]).series
    lm = LabelMap(read_image(demo.labels_path).array.astype(np.uint8), {}, series.key)
    lm.add_segment("Nodule")
    lm.add_segment("Lesion", made_by="lesion-seg:1.0")
    out = tmp_path / "seg.dcm"
    export_seg(lm, series, out)
    report = subprocess.run(
        ["/usr/bin/dciodvfy", str(out)], capture_output=True, text=True, timeout=120
    )
    text = report.stdout + report.stderr
    assert "Segmentation" in text
    assert not [ln for ln in text.splitlines() if ln.startswith("Error")], text


def highdicom_seg(
    series, masks: np.ndarray, out: Path, kind: str = "BINARY", names=("Kidney", "Cyst")
) -> Path:
    """A SEG built from scratch with highdicom, as another tool would: `masks` is
    (slice, row, col, segment) on the series' order ((slice, row, col) of segment numbers
    for a LABELMAP)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(f.source.path) for f in series.slices]
    for ds in sources:
        ds.PatientBirthDate, ds.PatientSex, ds.ReferringPhysicianName = "", "", ""
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i,
            segment_label=name,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, name in enumerate(names, 1)
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=masks.astype(
            {"FRACTIONAL": np.float32, "BINARY": bool, "LABELMAP": np.uint8}[kind]
        ),
        segmentation_type=kind,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Elsewhere",
        manufacturer_model_name="Tool",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(out)
    return out


def test_an_independent_highdicom_seg_imports_with_overlap_said(tmp_path, oblique):
    series, _ = oblique
    masks = np.zeros((*SHAPE, 2), bool)
    masks[2:5, 3:10, 4:12, 0] = True
    masks[4:7, 8:12, 10:20, 1] = True  # overlaps segment 1 on slice 4
    path = highdicom_seg(series, masks, tmp_path / "other.dcm")
    imp = import_seg(path, [LabelTarget.from_series(series)])
    expected = np.where(masks[..., 0], 1, np.where(masks[..., 1], 2, 0))
    np.testing.assert_array_equal(imp.label_map.array, expected)
    overlap = int((masks[..., 0] & masks[..., 1]).sum())
    (note,) = imp.notes
    assert f"{overlap} voxel(s) of other.dcm belong to more than one segment" in note
    assert [s.name for s in imp.label_map.segments.values()] == ["Kidney", "Cyst"]


def test_a_fractional_seg_is_taken_at_one_half(tmp_path, oblique):
    series, _ = oblique
    prob = np.zeros((*SHAPE, 1), np.float32)
    prob[3, 5:10, 5:10, 0] = 0.4
    prob[3, 7:9, 7:9, 0] = 0.9
    path = highdicom_seg(series, prob, tmp_path / "frac.dcm", "FRACTIONAL", names=("Kidney",))
    imp = import_seg(path, [LabelTarget.from_series(series)])
    np.testing.assert_array_equal(imp.label_map.array, (prob[..., 0] >= 0.5).astype(np.uint8))
    assert any("fractional" in n and "0.5" in n for n in imp.notes)


def test_a_labelmap_seg_imports(tmp_path, oblique):
    series, _ = oblique
    numbers = np.zeros(SHAPE, np.uint8)
    numbers[2:4, 3:8, 3:9] = 1
    numbers[5, 10:12, 2:30] = 2
    path = highdicom_seg(series, numbers, tmp_path / "labelmap.dcm", "LABELMAP")
    imp = import_seg(path, [LabelTarget.from_series(series)])
    np.testing.assert_array_equal(imp.label_map.array, numbers)
    assert [s.name for s in imp.label_map.segments.values()] == ["Kidney", "Cyst"]


def test_matched_by_geometry_when_the_references_are_another_copy(tmp_path, oblique):
    series, lm = oblique
    copy = series_at(tmp_path / "copy", "copy")  # same grid, new UIDs
    assert copy.series_instance_uid != series.series_instance_uid
    out = tmp_path / "labels.dcm"
    export_seg(lm, series, out)
    imp = import_seg(out, [LabelTarget.from_series(copy)])
    np.testing.assert_array_equal(imp.label_map.array, lm.array)
    assert imp.series_key == copy.key and "where its frames lie" in imp.notes[0]


def test_a_seg_that_fits_no_open_series_is_refused_in_one_sentence(tmp_path, oblique):
    series, lm = oblique
    elsewhere = series_at(tmp_path / "other", "other", origin=(-12.0, -9.0, 47.0))
    axial = series_at(tmp_path / "axial", "axial", orientation=(1, 0, 0, 0, 1, 0))
    out = tmp_path / "labels.dcm"
    export_seg(lm, series, out)
    with pytest.raises(InvalidInputError) as err:
        import_seg(out, [LabelTarget.from_series(elsewhere), LabelTarget.from_series(axial)])
    text = str(err.value)
    assert text.startswith(str(out)) and "fits none of the open series" in text
    assert "\n" not in text and "open the series it was drawn on" in text
    with pytest.raises(InvalidInputError, match="no series is open"):
        import_seg(out, [])


def test_a_file_that_is_not_a_seg_is_refused(tmp_path, oblique):
    series, _ = oblique
    ct = series.slices[0].source.path
    with pytest.raises(InvalidInputError, match="not a DICOM Segmentation"):
        import_seg(ct, [LabelTarget.from_series(series)])

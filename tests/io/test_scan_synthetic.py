"""dicom_index.scan on the synthetic corpus: grouping, ordering along the normal, splitting,
every container (folder, nested folders, DICOMDIR, zip), non-image objects, and warnings
that carry the measured values."""

from __future__ import annotations

import math
from pathlib import Path

import dicom_factory as F
import numpy as np
import pytest

from medview.core.errors import InvalidInputError
from medview.core.series import ScanResult, SeriesInfo
from medview.io.dicom import index as dicom_index


def scan(*paths: Path) -> ScanResult:
    return dicom_index.scan(list(paths))


def only_series(result: ScanResult) -> SeriesInfo:
    assert len(result.series) == 1, [s.key for s in result.series]
    return result.series[0]


def codes(series: SeriesInfo) -> set[str]:
    return {w.code for w in series.warnings}


def warning(series: SeriesInfo, code: str) -> str:
    found = [w.message for w in series.warnings if w.code == code]
    assert found, f"no {code!r} warning; got {[(w.code, w.message) for w in series.warnings]}"
    return found[0]


def assert_geometry(series: SeriesInfo, written: F.Written) -> None:
    """Shape, affine and the order of slices match what was written, sorted along the
    normal (file names and instance numbers are deliberately no help)."""
    assert series.shape == written.expected_array.shape
    np.testing.assert_allclose(series.affine, written.expected_affine, atol=1e-4)
    for got, want in zip(series.slices, written.positions, strict=True):
        if got is not None:
            np.testing.assert_allclose(got.position_lps, want, atol=1e-4)
    normal = series.slice_normal
    along = [np.dot(f.position_lps, normal) for f in series.frames]
    assert along == sorted(along)
    assert along[0] == pytest.approx(min(np.asarray(written.positions) @ normal))


def summary(result: ScanResult) -> list[tuple]:
    """What a scan found, without where the files were: containers must not change it."""
    return sorted(
        (
            s.series_instance_uid,
            s.stack_label,
            s.shape,
            tuple(np.round(s.affine, 4).ravel()),
            tuple(f.sop_instance_uid if f else "" for f in s.slices),
            tuple(sorted(codes(s))),
        )
        for s in result.series
    )


def test_two_interleaved_series_are_grouped_and_sorted_along_the_normal(tmp_path: Path) -> None:
    a = F.write_ct_series(
        tmp_path, n=12, label="a", shuffle=True, names=lambda i: f"IM{2 * i:04d}.dcm"
    )
    b = F.write_ct_series(
        tmp_path,
        n=10,
        label="b",
        shuffle=True,
        thickness=3.0,
        spacing=(0.5, 0.5),
        origin=(1.0, 2.0, -20.0),
        series_number=2,
        names=lambda i: f"IM{2 * i + 1:04d}.dcm",
    )
    result = scan(tmp_path)
    assert not result.skipped
    assert len(result.studies) == 1
    by_uid = {s.series_instance_uid: s for s in result.series}
    assert set(by_uid) == {a.series_uid, b.series_uid}
    for written, n in ((a, 12), (b, 10)):
        s = by_uid[written.series_uid]
        assert len(s.slices) == n and s.n_instances == n
        assert_geometry(s, written)
        assert not codes(s), s.warnings


def test_series_geometry_fields(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path, spacing=(0.7, 0.8), thickness=2.5, origin=(-12, -9, 40))
    s = only_series(scan(tmp_path))
    assert s.shape == (12, 24, 32)
    assert s.spacing_mm == pytest.approx((2.5, 0.7, 0.8))
    np.testing.assert_allclose(s.affine[:3, 3], (-12, -9, 40))
    np.testing.assert_allclose(s.slice_normal, (0, 0, 1), atol=1e-9)
    assert s.modality == "CT" and s.series_instance_uid == w.series_uid
    assert s.study_instance_uid == w.study_uid


def test_sagittal_mr_geometry(tmp_path: Path) -> None:
    w = F.write_ct_series(
        tmp_path,
        modality="MR",
        orientation=F.SAGITTAL,
        slope=1.0,
        intercept=0.0,
        label="sag",
        shuffle=True,
    )
    s = only_series(scan(tmp_path))
    # row cosine +y x column cosine -z = -x: slices are ordered from left to right
    np.testing.assert_allclose(s.slice_normal, (-1, 0, 0), atol=1e-9)
    assert_geometry(s, w)


def test_slices_written_head_first_are_still_ascending(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path, step=(0, 0, -2.5), label="down")
    s = only_series(scan(tmp_path))
    assert_geometry(s, w)
    assert s.affine[2, 3] == pytest.approx(40 - 11 * 2.5)


def test_localizer_in_the_same_series_is_split_off(tmp_path: Path) -> None:
    main = F.write_ct_series(tmp_path, label="main")
    F.write_ct_series(
        tmp_path,
        n=1,
        rows=40,
        cols=30,
        orientation=(1, 0, 0, 0, 0, -1),
        series_uid=main.series_uid,
        label="localizer",
        names="LOC.dcm",
    )
    result = scan(tmp_path)
    stacks = result.series
    assert [s.series_instance_uid for s in stacks] == [main.series_uid] * 2
    assert sorted(s.stack_label for s in stacks) == ["stack 1 of 2", "stack 2 of 2"]
    big = next(s for s in stacks if s.stack_label == "stack 1 of 2")
    loc = next(s for s in stacks if s.stack_label == "stack 2 of 2")
    assert big.shape == (12, 24, 32) and loc.shape == (1, 40, 30)
    assert_geometry(big, main)
    assert result.find_series(loc.key) is loc and big.key != loc.key


def test_nested_folders_without_extensions(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path, names=lambda i: f"d{i % 3}/sub{i % 2}/{i:05d}", shuffle=True)
    s = only_series(scan(tmp_path))
    assert_geometry(s, w)


def test_dicomdir_and_zip_give_the_same_series_as_the_folder(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    a = F.write_ct_series(plain, label="a", shuffle=True, names=lambda i: f"A/{i:03d}")
    b = F.write_ct_series(
        plain,
        label="b",
        modality="MR",
        orientation=F.SAGITTAL,
        intercept=0.0,
        names=lambda i: f"B/{i:03d}",
    )
    dicomdir = F.write_dicomdir(tmp_path / "set", a.paths + b.paths)
    plain_zip = F.zip_folder(plain, tmp_path / "plain.zip", prefix="export/")
    set_zip = F.zip_folder(tmp_path / "set", tmp_path / "set.zip")
    reference = scan(plain)
    assert len(reference.series) == 2 and not reference.skipped
    for source in (dicomdir, dicomdir.parent, plain_zip, set_zip):
        result = scan(source)
        assert summary(result) == summary(reference), source
        assert not result.skipped, (source, result.skipped)


def test_several_paths_and_a_single_file_at_once(tmp_path: Path) -> None:
    a = F.write_ct_series(tmp_path / "a", label="a")
    b = F.write_ct_series(tmp_path / "b", label="b", n=5)
    c = F.write_ct_series(tmp_path / "c", label="c", n=3)
    result = scan(tmp_path / "a", tmp_path / "b", c.paths[1])
    counts = {s.series_instance_uid: len(s.slices) for s in result.series}
    assert counts == {a.series_uid: 12, b.series_uid: 5, c.series_uid: 1}


def test_the_same_folder_twice_is_not_counted_twice(tmp_path: Path) -> None:
    F.write_ct_series(tmp_path)
    s = only_series(scan(tmp_path, tmp_path))
    assert len(s.slices) == 12


def test_single_file(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path, n=3)
    s = only_series(scan(w.paths[1]))
    assert s.shape == (1, 24, 32)
    np.testing.assert_allclose(s.affine[:3, 3], w.positions[1])
    assert s.spacing_mm == pytest.approx((2.5, 0.7, 0.8))


def test_non_image_objects_are_listed_not_skipped(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path / "ct")
    objects = {kind: F.write_non_image(tmp_path / "other", kind) for kind in F.NON_IMAGE_KINDS}
    result = scan(tmp_path)
    assert not result.skipped, result.skipped
    assert only_series(result).series_instance_uid == w.series_uid
    listed = {Path(o.path).name: o for o in result.non_image_objects}
    assert set(listed) == {p.name for p in objects.values()}
    for kind, (sop_class, modality) in F.NON_IMAGE_KINDS.items():
        obj = listed[f"{kind}.dcm"]
        assert (obj.sop_class_uid, obj.modality) == (sop_class, modality)
        assert obj.sop_class_name


def test_missing_slice_is_a_gap_with_measured_values(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path, drop=[6], shuffle=True)
    s = only_series(scan(tmp_path))
    assert len(s.slices) == 12 and s.slices[6] is None and len(s.frames) == 11
    message = warning(s, "slice_gap")
    assert "5 mm" in message and "2.5 mm" in message
    assert_geometry(s, w)


def test_gantry_tilt_is_reported_and_kept_as_shear(tmp_path: Path) -> None:
    step = (0.0, 2.5 * math.tan(math.radians(15)), 2.5)
    w = F.write_ct_series(tmp_path, step=step, label="tilt")
    s = only_series(scan(tmp_path))
    assert "15" in warning(s, "gantry_tilt")
    assert_geometry(s, w)


def test_same_instance_twice_is_deduplicated(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path)
    F.copy_with(w.paths[3], tmp_path / "copy" / "same_instance_again.dcm")
    s = only_series(scan(tmp_path))
    assert len(s.slices) == 12
    assert "same_instance_again" in warning(s, "duplicate_sop_instance")


def test_another_image_at_the_same_position_is_reported(tmp_path: Path) -> None:
    w = F.write_ct_series(tmp_path)
    other_uid = F.uid_for("another image at slice 3")
    F.copy_with(w.paths[3], tmp_path / "other.dcm", SOPInstanceUID=other_uid, InstanceNumber=99)
    s = only_series(scan(tmp_path))
    assert len(s.slices) == 12
    warning(s, "duplicate_position")
    kept = [f.sop_instance_uid for f in s.frames]
    assert other_uid not in kept  # the lower instance number wins


def test_per_slice_rescale_is_reported(tmp_path: Path) -> None:
    rescale = [(1.0, -1024.0 + 10 * k) for k in range(12)]
    F.write_ct_series(tmp_path, per_slice_rescale=rescale)
    s = only_series(scan(tmp_path))
    assert "rescale_varies" in codes(s)
    assert [f.rescale_intercept for f in s.frames] == [r[1] for r in rescale]


def test_enhanced_multiframe_frames_become_slices(tmp_path: Path) -> None:
    w = F.write_enhanced_mf(tmp_path / "enhanced.dcm", n_frames=8)
    s = only_series(scan(tmp_path))
    assert s.shape == (8, 24, 32) and s.n_instances == 1
    assert_geometry(s, w)


def test_progress_reaches_the_end(tmp_path: Path) -> None:
    F.write_ct_series(tmp_path)
    seen: list[float] = []
    dicom_index.scan([tmp_path], progress=lambda p: seen.append(p.fraction))
    assert seen and seen[-1] == 1.0
    assert all(f == -1 or 0 <= f <= 1 for f in seen)


def test_a_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"does not exist|not found|no such"):
        scan(tmp_path / "nope")

"""The synthetic demo study (medview.demo): deterministic files, a valid DICOM series that
independent readers place identically, ground truth that matches the label map lesion by
lesion, tissue CT numbers in range, a measurable site A / site B shift, clear refusals of bad
options, and cancellation that leaves nothing half-written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medview.core.errors import InvalidInputError
from medview.core.jobs import CancelToken, JobCancelled, Progress
from medview.demo import generate_demo_study
from medview.demo.phantom import Phantom
from medview.demo.shapes import F32, Canvas
from medview.demo.sites import TISSUES, T
from medview.io.dicom import index as dicom_index
from medview.io.dicom import volume as dicom_volume
from tests.unprivileged import run_unprivileged, unprivileged_folder

SMALL = 36  # slices in the quick studies: about 54 mm around the diaphragm at site A


@pytest.fixture(scope="module")
def study_a(tmp_path_factory):
    return generate_demo_study(tmp_path_factory.mktemp("a") / "demo", seed=3, slices=SMALL)


@pytest.fixture(scope="module")
def study_b(tmp_path_factory):
    return generate_demo_study(
        tmp_path_factory.mktemp("b") / "demo", seed=3, site="b", slices=SMALL
    )


def read_series(study) -> tuple[np.ndarray, object]:
    """HU volume (slice 0 inferior) and the SimpleITK image, read by SimpleITK."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(study.series_dir)))
    img = reader.Execute()
    return sitk.GetArrayFromImage(img), img


def read_labels(study) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(study.labels_path)))


def tissue_maps(study, ks) -> dict[int, np.ndarray]:
    """Noise-free tissue ids of slices `ks`, rendered again from the seed and geometry."""
    meta = json.loads(study.lesions_json.read_text())
    ph = Phantom.build(meta["seed"])
    _, rows, cols = meta["shape"]
    dz, px, _ = meta["spacing_mm"]
    ox, oy, oz = meta["origin_lps_mm"]
    xs = (ox + px * np.arange(cols)).astype(F32)
    ys = (oy + px * np.arange(rows)).astype(F32)
    base = Canvas(xs, ys, 0.0, px, dz, np.zeros((rows, cols), F32))
    bg, bg_tissue = ph.background(base)
    out = {}
    for k in ks:
        cv = Canvas(xs, ys, oz + k * dz, px, dz, bg.copy(), bg_tissue.copy())
        ph.render(cv, meta["contrast"], None)
        out[k] = cv.tissue
    return out


def erode(mask: np.ndarray, n: int = 3) -> np.ndarray:
    for _ in range(n):
        mask = (
            mask
            & np.roll(mask, 1, 0)
            & np.roll(mask, -1, 0)
            & np.roll(mask, 1, 1)
            & np.roll(mask, -1, 1)
        )
    return mask


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- determinism ------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = generate_demo_study(tmp_path / "one", seed=11, slices=8)
    b = generate_demo_study(tmp_path / "two", seed=11, slices=8)
    da, db = digest(a.out_dir), digest(b.out_dir)
    assert len(da) == 8 + 4 and da == db  # 8 slices, labels, segment table, lesions, README


def test_different_seeds_differ(tmp_path):
    a = generate_demo_study(tmp_path / "one", seed=11, slices=8)
    b = generate_demo_study(tmp_path / "two", seed=12, slices=8)
    fa, fb = (pydicom.dcmread(s.series_dir / "IM0004.dcm") for s in (a, b))
    assert fa.SeriesInstanceUID != fb.SeriesInstanceUID
    assert fa.PatientID != fb.PatientID
    assert not np.array_equal(fa.pixel_array, fb.pixel_array)


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, medview.demo; "
        "print([m for m in ('SimpleITK', 'pydicom', 'torch', 'PySide6') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the DICOM series ---------------------------------------------------------------------


def test_series_is_ct_explicit_little_endian_with_synthetic_patient(study_a):
    files = sorted(study_a.series_dir.iterdir())
    assert [f.name for f in files[:2]] == ["IM0001.dcm", "IM0002.dcm"]
    assert len(files) == study_a.n_slices == SMALL
    first, last = pydicom.dcmread(files[0]), pydicom.dcmread(files[-1])
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert "SYNTHETIC" in str(first.PatientName) and first.PatientID.startswith("SYNTH-")
    assert (first.Rows, first.Columns) == (512, 512)
    assert 0.6 <= float(first.PixelSpacing[0]) <= 0.8
    assert float(first.SliceThickness) == 1.5
    assert list(first.WindowCenterWidthExplanation) == ["MEDIASTINUM", "LUNG", "ABDOMEN", "BONE"]
    # IM0001 is the head end: positions fall by one thickness per instance
    assert first.InstanceNumber == 1
    z0, z1 = float(first.ImagePositionPatient[2]), float(last.ImagePositionPatient[2])
    assert z0 - z1 == pytest.approx(1.5 * (SMALL - 1))
    assert first.pixel_array.dtype == np.int16 and first.pixel_array.min() >= -1024


def test_simpleitk_labels_and_json_share_one_geometry(study_a):
    import SimpleITK as sitk

    vol, img = read_series(study_a)
    lab = sitk.ReadImage(str(study_a.labels_path))
    meta = json.loads(study_a.lesions_json.read_text())
    assert vol.shape == tuple(meta["shape"]) == study_a.shape
    assert np.allclose(img.GetSpacing(), lab.GetSpacing(), atol=1e-5)
    assert np.allclose(img.GetOrigin(), lab.GetOrigin(), atol=1e-4)
    assert np.allclose(img.GetDirection(), lab.GetDirection())
    assert np.allclose(img.GetOrigin(), meta["origin_lps_mm"], atol=1e-4)
    assert np.allclose(img.GetSpacing()[::-1], meta["spacing_mm"], atol=1e-5)
    # the pixels SimpleITK stacks are the ones in the files, head end last
    top = pydicom.dcmread(study_a.series_dir / "IM0001.dcm").pixel_array
    assert np.array_equal(vol[-1], top)


def test_labels_read_by_nibabel_land_on_the_same_ras_positions(study_a):
    meta = json.loads(study_a.lesions_json.read_text())
    affine = nib.load(study_a.labels_path).affine  # (i, j, k) = (col, row, slice) -> RAS
    dz, px, _ = meta["spacing_mm"]
    ox, oy, oz = meta["origin_lps_mm"]
    corner = affine @ [511, 511, SMALL - 1, 1]
    assert np.allclose(
        corner[:3], [-(ox + 511 * px), -(oy + 511 * px), oz + (SMALL - 1) * dz], atol=1e-3
    )


def test_medview_reader_loads_the_demo_like_simpleitk(study_a):
    result = dicom_index.scan([study_a.series_dir])
    assert len(result.series) == 1 and not result.skipped
    series = result.series[0]
    volume = dicom_volume.load_series(series)
    vol, img = read_series(study_a)
    assert np.array_equal(volume.array, vol)
    assert np.allclose(volume.affine[:3, 3], img.GetOrigin(), atol=1e-4)
    assert np.allclose(volume.spacing_mm, img.GetSpacing()[::-1], atol=1e-5)
    assert volume.metadata.windows[0] == (50, 350)
    assert not [w for w in series.warnings if w.code != "rescale_varies"]


@pytest.mark.external
def test_dciodvfy_finds_no_errors(study_a):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    for name in ("IM0001.dcm", f"IM{SMALL:04d}.dcm"):
        out = subprocess.run(
            ["dciodvfy", str(study_a.series_dir / name)], capture_output=True, text=True
        )
        text = out.stdout + out.stderr
        assert "Error" not in text, text


@pytest.mark.external
def test_dcm2niix_places_voxels_where_the_labels_are(study_a, tmp_path):
    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed")
    subprocess.run(
        ["dcm2niix", "-z", "n", "-o", str(tmp_path), "-f", "ct", str(study_a.series_dir)],
        capture_output=True,
        check=True,
    )
    ct, lab = nib.load(tmp_path / "ct.nii"), nib.load(study_a.labels_path)
    assert ct.shape == lab.shape
    # dcm2niix may flip rows; compare the world positions of the voxel-grid corners
    corners = np.array([[i, j, k, 1] for i in (0, 511) for j in (0, 511) for k in (0, SMALL - 1)]).T
    a = np.sort((ct.affine @ corners)[:3].round(3), axis=1)
    b = np.sort((lab.affine @ corners)[:3].round(3), axis=1)
    assert np.allclose(a, b, atol=1e-2)


# --- ground truth ---------------------------------------------------------------------------


def test_every_lesion_matches_the_label_map(study_a):
    import SimpleITK as sitk

    meta = json.loads(study_a.lesions_json.read_text())
    assert meta["label_values"] == {"lung_nodule": 1, "liver_lesion": 2}
    lesions = meta["lesions"]
    assert lesions == study_a.lesions and len(lesions) >= 5
    assert {les["class"] for les in lesions} == {"lung_nodule", "liver_lesion"}
    lab = sitk.ReadImage(str(study_a.labels_path))
    cc = sitk.ConnectedComponent(lab > 0)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(cc)
    assert stats.GetNumberOfLabels() == len(lesions)
    comps = {
        c: (np.array(stats.GetCentroid(c)), stats.GetPhysicalSize(c) / 1000.0)
        for c in stats.GetLabels()
    }
    vox = np.array(lab.GetSpacing())
    labels = sitk.GetArrayFromImage(lab)
    ccs = sitk.GetArrayFromImage(cc)
    vol, _ = read_series(study_a)
    for les in lesions:
        c = min(comps, key=lambda k: np.linalg.norm(comps[k][0] - les["centre_lps_mm"]))
        centre, volume_ml = comps[c]
        assert np.linalg.norm(centre - les["centre_lps_mm"]) < np.linalg.norm(vox), les
        assert volume_ml == pytest.approx(les["volume_ml"], rel=0.05), les
        assert set(np.unique(labels[ccs == c])) == {les["label_value"]}
        assert float(vol[ccs == c].mean()) == pytest.approx(les["mean_hu"], abs=0.1)
        nominal_ml = np.pi / 6 * les["diameter_mm"] ** 3 / 1000
        if les["diameter_mm"] >= 8:
            assert volume_ml == pytest.approx(nominal_ml, rel=0.2), les
        lo, hi = {"lung_nodule": (4, 30), "liver_lesion": (5, 40)}[les["class"]]
        assert lo <= les["diameter_mm"] <= hi


def test_lesions_look_like_their_kind(study_a, study_b):
    for study in (study_a, study_b):
        for les in study.lesions:
            big = les["diameter_mm"] >= 9
            if les["kind"] == "solid" and big:
                assert les["mean_hu"] > -250, les
            elif les["kind"] == "ground_glass" and big:
                assert -750 < les["mean_hu"] < -300, les
            elif les["kind"] == "hypodense":
                liver = TISSUES[T.LIVER]
                ref = liver.contrast_hu if study.site == "b" else liver.plain_hu
                assert les["mean_hu"] < ref - 15, les


def test_no_lesions_means_an_empty_label_map(tmp_path):
    s = generate_demo_study(tmp_path / "d", seed=5, slices=6, lesions=False)
    assert s.lesions == [] and not read_labels(s).any()


# --- image content --------------------------------------------------------------------------

TESTED = (
    T.FAT,
    T.MUSCLE,
    T.LUNG,
    T.VESSEL,
    T.LIVER,
    T.SPLEEN,
    T.BONE_MARROW,
    T.KIDNEY_CORTEX,
    T.FLUID,
)


def _tissue_means(study, ks) -> dict[T, float]:
    vol, _ = read_series(study)
    labels = read_labels(study)
    sums: dict[T, list[np.ndarray]] = {}
    for k, tissue in tissue_maps(study, ks).items():
        for t in TESTED:
            m = erode(tissue == t) & (labels[k] == 0)
            if m.sum() > 200:
                sums.setdefault(t, []).append(vol[k][m])
    return {t: float(np.concatenate(v).mean()) for t, v in sums.items()}


def test_tissue_hu_within_stated_ranges(study_a, study_b):
    for study in (study_a, study_b):
        means = _tissue_means(study, range(4, SMALL, 8))
        assert {T.FAT, T.MUSCLE, T.LUNG, T.LIVER, T.BONE_MARROW} <= set(means)
        for t, mean in means.items():
            tis = TISSUES[t]
            lo, hi = tis.contrast_range if study.site == "b" else tis.plain_range
            assert lo <= mean <= hi, (study.site, t.name, mean)


def test_site_b_differs_measurably_from_site_a(study_a, study_b):
    assert study_a.spacing_mm[0] == 1.5 and study_b.spacing_mm[0] == 2.0
    assert study_b.spacing_mm[1] > study_a.spacing_mm[1]  # larger field of view
    sds = {}
    for study in (study_a, study_b):
        vol, _ = read_series(study)
        k = SMALL // 2
        liver = erode(tissue_maps(study, [k])[k] == T.LIVER, 4) & (read_labels(study)[k] == 0)
        sds[study.site] = float(vol[k][liver].std())
    assert 9 <= sds["a"] <= 13 and 16 <= sds["b"] <= 22, sds
    means_a, means_b = (_tissue_means(s, [SMALL // 2]) for s in (study_a, study_b))
    assert means_b[T.LIVER] - means_a[T.LIVER] > 30  # contrast enhancement


def test_site_c_is_low_dose_thick_and_smooth(study_a, tmp_path):
    """Site C (issue 15's third site): 3 mm slices, non-contrast like A, but a smooth kernel
    and low-dose noise: liver noise about 3 times A's, and edges blurred more than A's."""
    study_c = generate_demo_study(tmp_path / "c", seed=3, site="c", slices=SMALL // 2)
    assert study_c.spacing_mm[0] == 3.0
    vol_c, _ = read_series(study_c)
    vol_a, _ = read_series(study_a)
    sds = {}
    for study, vol in ((study_a, vol_a), (study_c, vol_c)):
        k = len(vol) // 2
        liver = erode(tissue_maps(study, [k])[k] == T.LIVER, 4) & (read_labels(study)[k] == 0)
        sds[study.site] = float(vol[k][liver].std())
    assert 25 <= sds["c"] <= 36 and sds["c"] > 2.5 * sds["a"], sds
    from medview.demo.scanner import apply_kernel
    from medview.demo.sites import SITES

    width = {}
    for key in ("a", "c"):  # a step edge: how many pixels the kernel spreads it over
        step = np.zeros((16, 32), np.float32)
        step[:, 16:] = 100.0
        row = apply_kernel(step, SITES[key])[8]
        width[key] = int(np.count_nonzero((row > 1) & (row < 99)))
    assert width["c"] > width["a"] >= 2, width
    means_a, means_c = (
        _tissue_means(s, [len(v) // 2]) for s, v in ((study_a, vol_a), (study_c, vol_c))
    )
    assert abs(means_c[T.LIVER] - means_a[T.LIVER]) < 15  # no contrast, as site A
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "medview",
            "demo",
            "--site",
            "c",
            "--seed",
            "4",
            "--slices",
            "3",
            "--out",
            str(tmp_path / "cli"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "site C: low dose" in out.stdout and '"slice_spacing_mm": 3.0' in out.stdout


# --- options, folders, progress and cancel -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"site": "d"}, "site must be one of 'a', 'b', 'c', not 'd'"),
        ({"slices": 0}, "slices must be"),
        ({"slices": 5000}, "slices must be"),
        ({"thickness_mm": 0}, "thickness must be"),
        ({"thickness_mm": -1.0}, "thickness must be"),
        ({"noise_hu": -2.0}, "noise must be"),
        ({"n_lesions": -1}, "lesions must be"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_options_are_refused_before_writing(tmp_path, kwargs, words):
    with pytest.raises(InvalidInputError, match=words):
        generate_demo_study(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_bad_folders_are_refused(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        generate_demo_study(a_file, slices=2)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="already holds other files"):
        generate_demo_study(foreign, slices=2)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]
    with pytest.raises(InvalidInputError, match="cannot be created"):
        generate_demo_study(a_file / "under" / "a-file", slices=2)


def test_missing_parents_are_created(tmp_path):
    """`medview demo --out a/b/c` makes a and b as `mkdir -p` does (issue 20, point 3)."""
    study = generate_demo_study(tmp_path / "a" / "b" / "c", slices=2)
    assert study.series_dir == tmp_path / "a" / "b" / "c" / "series"
    assert len(list(study.series_dir.iterdir())) == 2


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unwritable_folder_is_refused():
    code = """if True:
        import sys
        from pathlib import Path
        from medview.core.errors import InvalidInputError
        from medview.demo import generate_demo_study
        locked = Path(sys.argv[1]) / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            generate_demo_study(locked, slices=2)
        except InvalidInputError as exc:
            print("refused:", exc)
        """
    with unprivileged_folder() as folder:
        done = run_unprivileged(code, folder)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("refused: ") and "not writable" in done.stdout
        assert list((folder / "locked").iterdir()) == []


def test_previous_output_is_replaced(tmp_path):
    out = tmp_path / "demo"
    generate_demo_study(out, seed=1, slices=6)
    again = generate_demo_study(out, seed=2, slices=4)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt",
        "labels.nii.gz",
        "labels.segments.json",
        "lesions.json",
        "series",
    ]
    assert len(list(again.series_dir.iterdir())) == 4


def test_progress_and_cancel_leave_nothing_half_written(tmp_path):
    seen: list[Progress] = []
    generate_demo_study(tmp_path / "ok", seed=1, slices=5, progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    token = CancelToken()

    def cancel_after_three_slices(p: Progress) -> None:
        if p.message.startswith("slice 3 "):
            token.cancel()

    out = tmp_path / "cancelled"
    with pytest.raises(JobCancelled):
        generate_demo_study(
            out, seed=1, slices=10, progress=cancel_after_three_slices, cancel=token
        )
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_full_default_study(tmp_path):
    t0 = time.perf_counter()
    s = generate_demo_study(tmp_path / "full", seed=0)
    elapsed = time.perf_counter() - t0
    assert s.n_slices == 300 and s.spacing_mm[0] == 1.5
    assert elapsed < 25, f"300 slices took {elapsed:.1f} s"  # about 6 s on an idle machine
    means = _tissue_means(s, range(10, 300, 29))
    assert set(TESTED) <= set(means)
    for t, mean in means.items():
        lo, hi = TISSUES[t].plain_range
        assert lo <= mean <= hi, (t.name, mean)

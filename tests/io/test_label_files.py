"""io.label_files: a label map as NIfTI / NRRD goes out and comes back voxel for voxel on an
oblique grid, nibabel (an independent reader, RAS) agrees on every voxel's place, segment
names travel in the sidecar, and files that fit no open series, or hold no labels, are
refused in one sentence naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.errors import InvalidInputError, UnsupportedInputError
from medview.core.labels import LabelMap
from medview.core.volume import Volume
from medview.io.image_files import write_volume
from medview.io.labels.files import export_label_file, import_label_file, sidecar_path
from medview.io.labels.match import LabelTarget

SHAPE = (9, 20, 26)
# oblique, flipped rows, anisotropic: (slice, row, col, 1) -> LPS
c, s = np.cos(0.4), np.sin(0.4)
AFFINE = np.array(
    [[0.0, 0.0, 0.8 * c, -30.0], [0.0, -0.7, 0.0, 12.0], [2.5, 0.0, 0.8 * s, 55.0], [0, 0, 0, 1.0]]
)
AFFINE[:3, 0] = 2.5 * np.cross(AFFINE[:3, 2] / 0.8, AFFINE[:3, 1] / -0.7)


def label_map() -> LabelMap:
    lm = LabelMap.empty(SHAPE, "k")
    lm.add_segment("Liver")
    lm.add_segment("Nodule", made_by="lesion-seg:1.0")
    lm.array[1:4, 2:9, 3:20] = 1
    lm.array[6, 15:18, 20:25] = 2
    lm.array[0, 0, 0] = 2
    return lm


TARGET = LabelTarget("k", SHAPE, AFFINE)


@pytest.mark.parametrize("name", ["labels.nii.gz", "labels.nii", "labels.nrrd"])
def test_round_trip_keeps_voxels_geometry_and_names(tmp_path, name):
    lm = label_map()
    path = tmp_path / name
    export_label_file(lm, AFFINE, path)
    assert sidecar_path(path) == tmp_path / "labels.segments.json"
    other = LabelTarget("other", SHAPE, AFFINE @ np.diag([1, 1, -1, 1.0]))
    imp = import_label_file(path, [other, TARGET])
    assert imp.series_key == "k" and imp.notes == []
    np.testing.assert_array_equal(imp.label_map.array, lm.array)
    assert imp.label_map.segments == lm.segments


def test_nibabel_puts_every_voxel_where_we_do(tmp_path):
    import nibabel as nib

    lm = label_map()
    export_label_file(lm, AFFINE, tmp_path / "l.nii.gz")
    img = nib.load(tmp_path / "l.nii.gz")
    data = np.asarray(img.dataobj)  # (i, j, k) = (col, row, slice)
    np.testing.assert_array_equal(data.transpose(2, 1, 0), lm.array)
    ras = np.diag([-1, -1, 1, 1.0]) @ AFFINE  # ours (slice, row, col) -> RAS
    np.testing.assert_allclose(img.affine[:, [2, 1, 0, 3]], ras, atol=1e-4)


def test_a_grid_that_fits_no_series_is_refused_in_one_sentence(tmp_path):
    path = tmp_path / "l.nii.gz"
    export_label_file(label_map(), AFFINE, path)
    shifted = AFFINE.copy()
    shifted[:3, 3] += [0, 0, 1.0]
    for targets in ([LabelTarget("a", SHAPE, shifted)], [LabelTarget("b", (9, 20, 25), AFFINE)]):
        with pytest.raises(InvalidInputError) as err:
            import_label_file(path, targets)
        text = str(err.value)
        assert text.startswith(str(path)) and "fits none of the open series" in text
        assert "\n" not in text
    with pytest.raises(InvalidInputError, match="no series is open"):
        import_label_file(path, [])


def test_without_a_sidecar_segments_are_numbered(tmp_path):
    path = tmp_path / "other.nii.gz"
    array = np.zeros(SHAPE, np.int16)
    array[2, 3:5, 3:5] = 4
    array[5, 1, 1] = 7
    write_volume(Volume(array, AFFINE), path)
    imp = import_label_file(path, [TARGET])
    assert {v: s.name for v, s in imp.label_map.segments.items()} == {
        4: "Segment 4",
        7: "Segment 7",
    }
    np.testing.assert_array_equal(imp.label_map.array, array)


def test_a_damaged_sidecar_is_said_and_the_labels_still_import(tmp_path):
    path = tmp_path / "l.nrrd"
    export_label_file(label_map(), AFFINE, path)
    sidecar_path(path).write_text("{oops")
    imp = import_label_file(path, [TARGET])
    (note,) = imp.notes
    assert "l.segments.json" in note and "Segment 1" in note
    assert imp.label_map.segments[1].name == "Segment 1"


def test_files_that_hold_no_labels_are_refused(tmp_path):
    frac = tmp_path / "prob.nii.gz"
    write_volume(Volume(np.full(SHAPE, 0.3, np.float32), AFFINE), frac)
    with pytest.raises(InvalidInputError, match="fractional values"):
        import_label_file(frac, [TARGET])
    big = tmp_path / "big.nrrd"
    write_volume(Volume(np.full(SHAPE, 300, np.int16), AFFINE), big)
    with pytest.raises(UnsupportedInputError, match="labels 0 to 255"):
        import_label_file(big, [TARGET])


def test_a_tilted_grid_is_not_resampled_into_nifti(tmp_path):
    tilted = AFFINE.copy()
    tilted[:3, 0] += 0.3 * AFFINE[:3, 1]  # gantry tilt: the slice step leans along rows
    with pytest.raises(UnsupportedInputError, match=r"save it as \.nrrd"):
        export_label_file(label_map(), tilted, tmp_path / "t.nii.gz")
    export_label_file(label_map(), tilted, tmp_path / "t.nrrd")
    imp = import_label_file(tmp_path / "t.nrrd", [LabelTarget("t", SHAPE, tilted)])
    np.testing.assert_array_equal(imp.label_map.array, label_map().array)

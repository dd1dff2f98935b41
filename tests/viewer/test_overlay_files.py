"""Overlays from files: labels or heatmap by their values, laid on the image grid even when
stored in another axis order, refused with one sentence when they do not fit."""

import numpy as np
import pytest

from medview.core.errors import InvalidInputError
from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.viewer.overlay_files import layer_name, overlay_from_image

SHAPE = (5, 6, 7)
AFFINE = affine_from_plane((-20, 10, 5), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.5))
IMAGE = Volume(np.zeros(SHAPE, np.int16), AFFINE, VolumeMetadata(modality="CT"))


def overlay(array, affine=AFFINE, source="/data/seg.nii.gz"):
    return Volume(array, affine.copy(), VolumeMetadata(source=source))


def labels():
    a = np.zeros(SHAPE, np.int16)
    a[1, 2, 3] = 1
    a[4, 5, 6] = 7
    return a


def test_integer_voxels_become_labels_as_uint8():
    layer = overlay_from_image(overlay(labels()), IMAGE, "seg")
    assert layer.kind == "labels" and layer.name == "seg"
    assert layer.array.dtype == np.uint8 and np.array_equal(layer.array, labels())


def test_whole_number_floats_are_labels_and_fractions_a_heatmap():
    assert overlay_from_image(overlay(labels().astype(np.float32)), IMAGE, "s").kind == "labels"
    prob = np.linspace(0, 1, np.prod(SHAPE)).reshape(SHAPE)  # float64 from the file
    layer = overlay_from_image(overlay(prob), IMAGE, "p")
    assert layer.kind == "heatmap" and layer.array.dtype == np.float32
    assert np.allclose(layer.array, prob)
    mask = overlay_from_image(overlay((labels() > 0).astype(np.float32)), IMAGE, "m")
    assert mask.kind == "heatmap"  # 0/1 floats: a probability map at its extremes


def test_same_grid_stored_flipped_and_transposed_is_reoriented_as_a_view():
    # the same voxels written with rows flipped and the column/row axes swapped
    stored = labels()[:, ::-1, :].transpose(0, 2, 1).copy()
    stored_to_image = np.array(
        [[1, 0, 0, 0], [0, 0, -1, SHAPE[1] - 1], [0, 1, 0, 0], [0, 0, 0, 1.0]]
    )  # stored index (s, c, r') -> (s, r, c)
    affine = AFFINE @ stored_to_image
    layer = overlay_from_image(overlay(stored, affine), IMAGE, "seg")
    assert np.array_equal(layer.array, labels())
    stored_u8 = stored.astype(np.uint8)  # already uint8: no copy at all
    assert np.shares_memory(
        overlay_from_image(overlay(stored_u8, affine), IMAGE, "s").array, stored_u8
    )


def test_other_shape_names_the_file_and_both_grids():
    with pytest.raises(InvalidInputError) as err:
        overlay_from_image(overlay(np.zeros((5, 6, 8), np.uint8)), IMAGE, "seg")
    assert str(err.value) == (
        "/data/seg.nii.gz: has a 8 x 6 x 5 grid and the image "
        "7 x 6 x 5; resample it onto the image grid first"
    )


def test_same_shape_elsewhere_in_space_is_refused():
    moved = AFFINE.copy()
    moved[:3, 3] += (0, 0, 0.01)  # 0.01 mm: ten times the tolerance
    with pytest.raises(InvalidInputError, match=r"lies up to 0\.01 mm away"):
        overlay_from_image(overlay(labels(), moved), IMAGE, "seg")
    moved[:3, 3] = AFFINE[:3, 3] + (0, 0, 0.0005)  # within 1e-3 mm: accepted
    assert overlay_from_image(overlay(labels(), moved), IMAGE, "seg").kind == "labels"


def test_values_that_are_neither_labels_nor_probabilities():
    with pytest.raises(InvalidInputError, match=r"values -3 to 4, neither labels"):
        overlay_from_image(overlay(labels() - 3), IMAGE, "seg")
    with pytest.raises(InvalidInputError, match=r"0 to 2\.5"):
        overlay_from_image(overlay(np.full(SHAPE, 2.5, np.float32) * (labels() > 0)), IMAGE, "seg")
    with pytest.raises(InvalidInputError, match="label map or a probability map"):
        overlay_from_image(overlay(np.zeros((*SHAPE, 3), np.uint8)), IMAGE, "rgb")
    with pytest.raises(InvalidInputError, match="NaN"):
        overlay_from_image(overlay(np.full(SHAPE, np.nan, np.float32)), IMAGE, "nan")


@pytest.mark.parametrize(
    "path, name",
    [("/a/liver.nii.gz", "liver"), ("b/x.y.nrrd", "x.y"), ("c.MHA", "c"), ("d.npy", "d")],
)
def test_layer_name(path, name):
    assert layer_name(path) == name

"""A listed finding's outline grows to its low-probability rim (ai.extent through
ai.findings.findings_from): detection is unchanged, the rim is taken in, a haze beyond
extent_max_mm and other findings' voxels are not."""

from __future__ import annotations

import numpy as np
import pytest

from medview.ai.findings.postprocess import encode, findings_from
from medview.ai.models.cards import Postprocess
from medview.core.errors import InvalidInputError
from medview.core.volume import Volume, VolumeMetadata
from tests.ai.seg_models import card
from tests.ai.test_findings import ball

SPACING = (2.0, 0.5, 0.5)


def study(probs: np.ndarray) -> tuple[np.ndarray, Volume]:
    """Codes of per-label probabilities (2, slices, rows, cols) and a matching volume."""
    codes = encode(np.clip(probs, 0, 1).transpose(1, 0, 2, 3))
    affine = np.diag([*SPACING, 1.0])
    return codes, Volume(np.zeros(codes.shape, np.int16), affine, VolumeMetadata(modality="CT"))


def with_extent(threshold: float = 0.2, max_mm: float = 3.0, **more):
    return card(
        postprocess={
            "min_component_voxels": 1,
            "extent_threshold": threshold,
            "extent_max_mm": max_mm,
            **more,
        }
    )


def lesion_with_rim(shape=(12, 80, 80), centre=(6, 40, 40)) -> np.ndarray:
    """Label 0: a core of radius 4 mm at p 0.9 inside a rim out to 6 mm at p 0.3."""
    probs = np.zeros((2, *shape), np.float32)
    rim, _ = ball(shape, centre, 6.0, SPACING)
    core, _ = ball(shape, centre, 4.0, SPACING)
    probs[0][rim] = 0.3
    probs[0][core] = 0.9
    return probs


def test_the_rim_is_taken_in_while_detection_and_peak_stay():
    probs = lesion_with_rim()
    codes, vol = study(probs)
    plain = findings_from(codes, vol, card(postprocess={"min_component_voxels": 1}), 0.5)
    mask = np.zeros(codes.shape, np.uint8)
    grown = findings_from(codes, vol, with_extent(), 0.5, mask_out=mask)
    assert len(plain) == len(grown) == 1
    rim, _ = ball(codes.shape, (6, 40, 40), 6.0, SPACING)
    assert grown[0].voxel_count == rim.sum() > plain[0].voxel_count
    assert np.array_equal(mask > 0, rim)
    assert grown[0].peak_probability == pytest.approx(plain[0].peak_probability)
    assert grown[0].longest_axial_diameter_mm > plain[0].longest_axial_diameter_mm


def test_a_haze_connected_to_the_lesion_is_followed_only_extent_max_mm():
    probs = lesion_with_rim()
    probs[0][:, 40:42, 40:] = np.maximum(probs[0][:, 40:42, 40:], 0.3)  # a faint tail
    codes, vol = study(probs)
    mask = np.zeros(codes.shape, np.uint8)
    findings_from(codes, vol, with_extent(max_mm=3.0), 0.5, mask_out=mask)
    core, _ = ball(codes.shape, (6, 40, 40), 4.0, SPACING)
    cols = np.flatnonzero(mask[6, 40])
    # the core reaches column 40 + 8 (4 mm at 0.5 mm); the rim/tail 3 mm (6 columns) more
    assert cols.max() == 40 + 8 + 6
    assert mask[core].all()


def test_no_growth_at_or_below_the_extent_threshold_or_without_it():
    probs = lesion_with_rim()
    codes, vol = study(probs)
    plain = findings_from(codes, vol, card(postprocess={"min_component_voxels": 1}), 0.25)
    low = findings_from(codes, vol, with_extent(threshold=0.3), 0.25)
    assert [f.voxel_count for f in low] == [f.voxel_count for f in plain]
    off = findings_from(codes, vol, with_extent(max_mm=0.0), 0.5)
    core, _ = ball(codes.shape, (6, 40, 40), 4.0, SPACING)
    assert off[0].voxel_count == core.sum()


def test_findings_never_overlap_and_each_keeps_its_label():
    shape = (12, 80, 80)
    probs = np.zeros((2, *shape), np.float32)
    for li, centre in ((0, (6, 40, 30)), (0, (6, 40, 46)), (1, (6, 20, 70))):
        rim, _ = ball(shape, centre, 5.0, SPACING)
        core, _ = ball(shape, centre, 3.0, SPACING)
        probs[li][rim] = np.maximum(probs[li][rim], 0.3)
        probs[li][core] = 0.9
    probs[1][:, 20, 40:70] = 0.3  # label 2's haze runs toward label 1's findings
    codes, vol = study(probs)
    found = findings_from(codes, vol, with_extent(max_mm=10.0), 0.5)
    assert [f.label_value for f in found] == [1, 1, 2]
    paint = np.zeros(codes.shape, np.int32)
    for value, start, region in found.regions:
        box = tuple(slice(int(a), int(a) + r) for a, r in zip(start, region.shape, strict=True))
        paint[box] += region
        labels = np.argmax(probs, axis=0)[box][region] + 1
        assert (labels == value).all()  # grown only into its own label's voxels
    assert paint.max() == 1
    assert sum(f.voxel_count for f in found) == (paint > 0).sum()


@pytest.mark.parametrize(
    "post, words",
    [
        ({"extent_threshold": 1.5}, "extent_threshold outside"),
        ({"extent_threshold": -0.1}, "extent_threshold outside"),
        ({"extent_max_mm": 1000}, "extent_max_mm outside"),
        ({"extent_threshold": "wide"}, "wrong type"),
    ],
)
def test_bad_extent_settings_are_refused_in_one_sentence(post, words):
    with pytest.raises(InvalidInputError) as err:
        card(postprocess=post)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_the_default_is_no_growth():
    assert Postprocess().extent_threshold == 0.0 and Postprocess().extent_max_mm == 0.0

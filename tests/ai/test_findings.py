"""ai.findings and core.findings: findings at any threshold match a brute-force recomputation
over the whole volume, measurements are right, thresholding a study is fast, and a Finding
round-trips through JSON."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy import ndimage

from medview.ai.findings.postprocess import (
    coarse_index,
    encode,
    findings_from,
    label_map_at,
    levels,
    probability_of,
    quantized_threshold,
)
from medview.core.errors import InvalidInputError
from medview.core.findings import Finding
from medview.core.volume import Volume, VolumeMetadata
from tests.ai.seg_models import card

S26 = np.ones((3, 3, 3), bool)
LV = 127  # probability levels per label with two labels


def code(label_index: int, p: float) -> int:
    """The one-byte code, written out independently of the module."""
    v = round(p * LV)
    return label_index * LV + v if v else 0


def decode(codes):
    c = codes.astype(int)
    return np.where(c > 0, (c - 1) // LV, -1), np.where(c > 0, (c - 1) % LV + 1, 0)


def ball(shape, centre, radius, spacing=(1.0, 1.0, 1.0)):
    grid = np.indices(shape, dtype=np.float32)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing, strict=True))
    return np.sqrt(d2) <= radius, np.sqrt(d2)


def synthetic(shape=(30, 64, 64), seed=0):
    """Two labels of soft blobs: touching diagonally, straddling block edges, nested in each
    other's bounding boxes, and noise."""
    rng = np.random.default_rng(seed)
    probs = np.zeros((2, *shape), np.float32)
    blobs = [
        (0, (5, 10, 10), 4),
        (0, (20, 40, 40), 6),
        (1, (12, 30, 12), 5),
        (1, (22, 15, 50), 3),
        (0, (25, 8, 56), 2),
    ]
    for label, centre, radius in blobs:
        inside, d = ball(shape, centre, radius + 2)
        probs[label] = np.maximum(probs[label], np.where(inside, 1 - d / (radius + 3), 0))
    probs[0, 10, 50, 50] = probs[0, 11, 51, 51] = 0.9  # diagonal neighbours: one finding
    probs[1, 3:6, 60:63, 0:3] = 0.6  # across an 8 x 8 block edge
    probs += rng.random(probs.shape, dtype=np.float32) * 0.15
    codes = encode(np.clip(probs, 0, 1).transpose(1, 0, 2, 3))
    array = rng.integers(-200, 200, shape).astype(np.int16)
    affine = np.diag([2.5, 0.7, 0.9, 1.0])
    affine[:3, 3] = (-5.0, 12.0, 100.0)
    return codes, Volume(array, affine, VolumeMetadata(modality="CT")), probs


def brute_labels(codes, threshold, values=(1, 2)):
    index, level = decode(codes)
    keep = level >= math.ceil(threshold * LV - 1e-6)
    return np.where(keep, np.array((0, *values), np.uint8)[index + 1], 0).astype(np.uint8)


def brute_findings(codes, vol, threshold):
    labels = brute_labels(codes, threshold)
    p = decode(codes)[1] / LV
    out = []
    for value in (1, 2):
        comp, n = ndimage.label(labels == value, structure=S26)
        for j in range(1, n + 1):
            region = comp == j
            idx = np.argwhere(region)
            out.append(
                {
                    "label_value": value,
                    "voxel_count": len(idx),
                    "bbox_index": (tuple(idx.min(axis=0)), tuple(idx.max(axis=0))),
                    "centroid_index": tuple(idx.mean(axis=0)),
                    "peak_probability": p[region].max(),
                    "mean_probability": p[region].mean(),
                    "mean_hu": vol.array[region].mean(),
                }
            )
    return sorted(out, key=lambda f: (f["label_value"], f["bbox_index"][0][0], f["centroid_index"]))


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.72, 0.9, 1.0])
def test_findings_match_a_brute_force_recomputation(threshold):
    codes, vol, _ = synthetic()
    coarse = coarse_index(codes, 2)
    c = card()
    found = findings_from(codes, vol, c, threshold, coarse_max=coarse)
    expected = brute_findings(codes, vol, threshold)
    assert len(found) == len(expected)
    for f, e in zip(found, expected, strict=True):
        assert (f.label_value, f.voxel_count) == (e["label_value"], e["voxel_count"])
        assert f.bbox_index == e["bbox_index"]
        np.testing.assert_allclose(f.centroid_index, e["centroid_index"], atol=1e-9)
        assert f.peak_probability == pytest.approx(e["peak_probability"])
        assert f.mean_probability == pytest.approx(e["mean_probability"])
        assert f.mean_hu == pytest.approx(e["mean_hu"])
        assert f.slice_range == (e["bbox_index"][0][0], e["bbox_index"][1][0])
    assert [f.id for f in found] == list(range(1, len(found) + 1))
    np.testing.assert_array_equal(
        label_map_at(codes, c, threshold, coarse), brute_labels(codes, threshold)
    )
    assert not any(f.peak_probability < threshold for f in found)


def test_the_code_keeps_the_winning_label_and_its_probability():
    _, _, probs = synthetic()
    probs = np.clip(probs, 0, 1)
    codes = encode(probs.transpose(1, 0, 2, 3))
    index, level = decode(codes)
    winner = probs.argmax(axis=0)
    assert ((index == winner) | (level == 0)).all()
    np.testing.assert_allclose(level / LV, probs.max(axis=0), atol=0.5 / LV + 1e-6)
    for li in (0, 1):
        decoded = probability_of(codes, 2, li).astype(float) / 255
        mine = winner == li
        np.testing.assert_allclose(decoded[mine], probs[li][mine], atol=0.5 / LV + 0.5 / 255)
        assert not decoded[~mine & (level > 0)].any()
    assert levels(2) == LV and levels(1) == 255 and levels(3) == 85


def test_diagonal_neighbours_are_one_finding_and_label_names_come_from_the_card():
    codes = np.zeros((4, 16, 16), np.uint8)
    codes[1, 5, 5] = codes[2, 6, 6] = code(0, 0.8)
    vol = Volume(np.zeros((4, 16, 16), np.int16), np.eye(4), VolumeMetadata(modality="CT"))
    (f,) = findings_from(codes, vol, card(), 0.5)
    assert f.voxel_count == 2 and f.label_name == "lung nodule" and f.model_ref == "fake-seg:1.0"
    assert f.uncertainty is None and f.decision == "pending"


def test_measurements_in_millimetres_and_millilitres():
    spacing = (2.0, 0.5, 0.8)
    shape = (12, 80, 60)
    inside, _ = ball(shape, (6, 40, 30), 10.0, spacing)  # a 20 mm ball
    codes = np.zeros(shape, np.uint8)
    codes[inside] = code(1, 0.9)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (1.0, 2.0, 3.0)
    array = np.where(inside, 40, -900).astype(np.int16)
    vol = Volume(array, affine, VolumeMetadata(modality="CT"))
    uncertainty = np.where(inside, 51, 0).astype(np.uint8)
    (f,) = findings_from(codes, vol, card(), 0.5, uncertainty=uncertainty)
    assert f.label_value == 2 and f.mean_hu == 40.0 and f.peak_probability == round(0.9 * LV) / LV
    assert f.volume_ml == pytest.approx(inside.sum() * 0.8 / 1000)
    assert f.volume_ml == pytest.approx(4 / 3 * math.pi * 10**3 / 1000, rel=0.1)
    assert 19.0 <= f.longest_axial_diameter_mm <= 21.5
    np.testing.assert_allclose(f.centroid_lps, vol.index_to_lps((6, 40, 30)), atol=1e-6)
    assert f.uncertainty == pytest.approx(0.1)  # 51 / 510


def test_feret_diameter_of_a_rectangle_is_its_diagonal():
    codes = np.zeros((1, 40, 40), np.uint8)
    codes[0, 10:20, 5:35] = code(0, 1.0)  # 10 x 30 pixels of 0.5 x 1.0 mm: 5 mm x 30 mm
    vol = Volume(np.zeros((1, 40, 40), np.int16), np.diag([1.0, 0.5, 1.0, 1.0]))
    (f,) = findings_from(codes, vol, card(), 0.5)
    assert f.longest_axial_diameter_mm == pytest.approx(math.hypot(5, 30), abs=0.6)
    codes[:] = 0
    codes[0, 3, 3] = code(0, 1.0)  # one pixel measures one pixel
    (f,) = findings_from(codes, vol, card(), 0.5)
    assert f.longest_axial_diameter_mm == 1.0


def test_threshold_changes_on_a_full_size_study_are_fast():
    shape = (300, 512, 512)
    codes = np.zeros(shape, np.uint8)
    for k, (label, centre, r) in enumerate(
        [
            (0, (50, 200, 300), 8),
            (0, (120, 300, 150), 5),
            (1, (200, 260, 260), 12),
            (1, (250, 350, 380), 6),
            (0, (80, 100, 100), 3),
        ]
    ):
        s0, r0, c0 = (c - r - 2 for c in centre)
        size = 2 * r + 5
        inside, d = ball((size, size, size), (r + 2, r + 2, r + 2), r + 2)
        p = np.where(inside, 1 - d / (r + 3), 0)
        blob = np.where(p > 0.5 / LV, label * LV + np.rint(p * LV), 0).astype(np.uint8)
        codes[s0 : s0 + size, r0 : r0 + size, c0 : c0 + size] = blob
        del k
    vol = Volume(
        np.zeros(shape, np.int16), np.diag([1.0, 0.7, 0.7, 1.0]), VolumeMetadata(modality="CT")
    )
    coarse = coarse_index(codes, 2)
    out = np.empty(shape, np.uint8)
    for threshold in (0.3, 0.5, 0.8):
        t0 = time.perf_counter()
        found = findings_from(codes, vol, card(), threshold, coarse_max=coarse)
        label_map_at(codes, card(), threshold, coarse, out=out)
        elapsed = time.perf_counter() - t0
        assert len(found) == 5 and elapsed < 0.3, (threshold, elapsed)


def test_finding_round_trips_through_json_and_bad_ones_are_refused():
    codes, vol, _ = synthetic()
    f = findings_from(codes, vol, card(), 0.5)[0].with_decision("accepted")
    again = Finding.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again == f and again.decision == "accepted"
    with pytest.raises(ValueError, match="decision"):
        f.with_decision("maybe")
    bad = f.to_dict()
    del bad["volume_ml"]
    with pytest.raises(InvalidInputError, match="volume_ml"):
        Finding.from_dict(bad, "x/findings.json")
    for key, value in (
        ("voxel_count", "12"),
        ("centroid_lps", [1, 2]),
        ("peak_probability", float("nan")),
        ("decision", "maybe"),
    ):
        with pytest.raises(InvalidInputError, match="malformed"):
            Finding.from_dict({**f.to_dict(), key: value})
    with pytest.raises(InvalidInputError, match="not a JSON object"):
        Finding.from_dict([1, 2])


def test_specks_below_the_cards_minimum_and_past_the_cap_are_not_listed():
    q = np.zeros((3, 40, 40), np.uint8)
    q[1, 5:9, 5:9] = code(0, 0.8)  # 16 voxels
    q[1, 20, 20], q[1, 30, 30] = code(0, 0.8), code(1, 0.8)  # specks
    q[0, ::4, ::4] = code(1, 0.8)  # 100 more specks
    vol = Volume(np.zeros((3, 40, 40), np.int16), np.eye(4), VolumeMetadata(modality="CT"))
    everything = findings_from(q, vol, card(), 0.5)
    assert len(everything) == 103 and everything.omitted == 0
    validated = card(validation={"min_component_voxels": 5})
    (one,) = findings_from(q, vol, validated, 0.5)
    assert one.voxel_count == 16
    assert findings_from(q, vol, validated, 0.5).omitted == 102
    capped = findings_from(q, vol, card(), 0.5, max_findings=10)
    assert len(capped) == 10 and capped.omitted == 93 and capped[0].voxel_count == 16
    assert [f.id for f in capped] == list(range(1, 11))


def test_thresholds_outside_zero_to_one_are_refused():
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            quantized_threshold(bad)
    assert quantized_threshold(0.5) == 128 and quantized_threshold(1.0) == 255
    assert quantized_threshold(0.5, 2) == 64 and quantized_threshold(1.0, 2) == LV

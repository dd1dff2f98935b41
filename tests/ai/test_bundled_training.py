"""The pieces of the bundled models' training and scoring, on a small synthetic study with
known lesions: seeded samplers that find the lesions, per-lesion scoring that counts what a
reader would, and the learning-rate schedule."""

import numpy as np
import pytest

from medview.ai.bundled.data import (
    CachedStudy,
    PatchSampler,
    SequenceSampler,
    coarse_maps,
    downsample,
    drop_near_lesions,
    normalise,
    slice_targets,
)
from medview.ai.bundled.evaluation import score_study, summarise_segmentation
from medview.ai.bundled.training import parse_seeds
from medview.ai.findings.scoring import auc
from medview.ai.training.schedule import warmup_cosine
from medview.core.errors import InvalidInputError

SPACING = (1.5, 0.7, 0.7)


def _ball(shape, centre, radius_vox):
    k, i, j = np.ogrid[: shape[0], : shape[1], : shape[2]]
    c = centre
    return ((k - c[0]) * SPACING[0]) ** 2 + ((i - c[1]) * SPACING[1]) ** 2 + (
        (j - c[2]) * SPACING[2]
    ) ** 2 <= (radius_vox * SPACING[1]) ** 2


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> CachedStudy:
    """24 x 128 x 128: lung (-850 HU) with a nodule (label 1), soft tissue with a lesion (2)."""
    shape = (24, 128, 128)
    ct = np.full(shape, 60, np.int16)
    ct[:, :, :64] = -850
    labels = np.zeros(shape, np.uint8)
    lesions = []
    for les_id, (value, centre, r, hu) in enumerate(
        [(1, (8, 60, 28), 6, 40), (2, (15, 60, 96), 8, 20)], start=1
    ):
        ball = _ball(shape, centre, r)
        ct[ball], labels[ball] = hu, value
        lps = [centre[2] * SPACING[2], centre[1] * SPACING[1], centre[0] * SPACING[0]]
        lesions.append(
            {
                "id": les_id,
                "label_value": value,
                "kind": "solid",
                "diameter_mm": 2 * r * SPACING[1],
                "n_voxels": int(ball.sum()),
                "centre_lps_mm": lps,
            }
        )
    meta = {"lesions": lesions, "spacing_mm": list(SPACING), "origin_lps_mm": [0, 0, 0]}
    return CachedStudy(tmp_path_factory.mktemp("study"), 7, ct, labels, meta)


def test_normalise_and_downsample():
    hu = np.array([[-2000, -1000, -300, 400, 3000]], np.int16)
    np.testing.assert_allclose(normalise(hu, -1000, 400), [[0, 0, 0.5, 1, 1]])
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    np.testing.assert_allclose(downsample(x, 2), [[[2.5, 4.5], [10.5, 12.5]]])
    with pytest.raises(InvalidInputError, match="whole blocks"):
        downsample(np.zeros((1, 5, 5), np.float32), 2)


def test_patch_sampler_is_seeded_and_finds_the_lesions(study):
    def draw(seed):
        sampler = PatchSampler([study], 32, 3, -1000, 400, seed=seed, mix=(1, 0, 0))
        return [sampler.sample() for _ in range(20)]

    a, b = draw(3), draw(3)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert a[0][0].shape == (3, 32, 32) and a[0][1].shape == (32, 32)
    assert all(y.any() for _, y in a)  # lesion-centred patches hold lesion
    assert {1, 2} <= set(np.unique(np.concatenate([y.ravel() for _, y in a])))


def test_patch_sampler_draws_mined_mistakes(study):
    mistake = np.array([[20, 50, 10]], np.int32)
    sampler = PatchSampler([study], 32, 3, -1000, 400, seed=0, mix=(0, 0, 0, 1), mined=[mistake])
    s, centre = sampler.centre()
    assert s == 0 and centre[0] == 20 and abs(centre[1] - 50) <= 8 and abs(centre[2] - 10) <= 8
    with pytest.raises(InvalidInputError, match="mined"):
        PatchSampler([study], 32, 3, -1000, 400, seed=0, mix=(0, 0, 0, 1))


def test_mined_voxels_at_a_lesions_edge_are_dropped(study):
    """The nodule is a ball of radius 6 pixels around (8, 60, 28): its edge on slice 8 is at
    column 34; voxels within 3 pixels of it, on its slice or the next, are not mistakes."""
    mined = np.array(
        [[8, 60, 36], [8, 60, 38], [8, 60, 42], [9, 60, 37], [20, 60, 36], [8, 100, 10]], np.int32
    )
    kept = drop_near_lesions(mined, study.labels, 3)
    assert kept.tolist() == [[8, 60, 38], [8, 60, 42], [20, 60, 36], [8, 100, 10]]
    assert drop_near_lesions(mined[:0], study.labels, 3).shape == (0, 3)


def test_lesion_weights_favour_the_small_and_faint_and_stay_seeded(study):
    """Lesion 1 (8.4 mm) counts as small, lesion 2 (11.2 mm) does not: with weights (3, 0)
    four lesion patches in five centre on lesion 1 instead of one in two."""

    def share_on_nodule(weights, seed=5):
        sampler = PatchSampler(
            [study], 32, 3, -1000, 400, seed=seed, mix=(1, 0, 0), lesion_weights=weights
        )
        centres = [sampler.centre()[1] for _ in range(400)]
        return np.mean([c[2] < 62 for c in centres]), centres  # the nodule's side

    plain, _ = share_on_nodule(None)
    weighted, a = share_on_nodule((3.0, 0.0))
    _, b = share_on_nodule((3.0, 0.0))
    assert 0.35 < plain < 0.65 and weighted > 0.7
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_sequence_sampler_targets_and_maps_agree(study):
    sampler = SequenceSampler([study], (4, 8), -1000, 400, seed=1, grid=16)
    x, y, maps = sampler.batch(5)
    assert x.shape[:3] == (5, y.shape[1], 1) and x.shape[3:] == (128, 128)
    assert maps.shape == (*y.shape, 16, 16)
    np.testing.assert_array_equal(maps.any(axis=(2, 3)), y.astype(bool))
    np.testing.assert_array_equal(
        coarse_maps(study.labels, 16).any(axis=(1, 2)), slice_targets(study.labels)
    )


def test_sequence_sampler_at_a_finer_size_and_grid(study):
    """slice-classifier 1.1's phase: slices kept at a finer size (cached once beside the
    study as small<size>.npy) and a finer map, still agreeing with the targets."""
    sampler = SequenceSampler([study], (4, 8), -1000, 400, seed=1, grid=32, size=64)
    x, y, maps = sampler.batch(3)
    assert x.shape[3:] == (64, 64) and maps.shape[2:] == (32, 32)
    np.testing.assert_array_equal(maps.any(axis=(2, 3)), y.astype(bool))
    assert (study.folder / "small64.npy").exists()
    reduced = downsample(normalise(np.asarray(study.ct[5:6]), -1000, 400), 64)[0]
    np.testing.assert_allclose(study.small(-1000, 400, 64)[5], reduced, atol=1e-3)


def test_classifier_phases_fit_the_network():
    """Each phase's lesion map is the last stage's grid at that phase's size, the last
    phase's size is the card's, and the weights carry over between phases."""
    import torch

    from medview.ai.bundled.training import CLS
    from medview.ai.runtime.slice_classifier import SliceClassifier

    assert CLS["phases"][-1]["size"] == CLS["args"]["input_size"]
    shapes = set()
    for ph in CLS["phases"]:
        model = SliceClassifier(**{**CLS["args"], "input_size": ph["size"]})
        with torch.no_grad():
            _, maps = model.forward_with_map(torch.zeros(2, 1, ph["size"], ph["size"]))
        assert maps.shape == (2, ph["grid"], ph["grid"])
        shapes.add(tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()))
    assert len(shapes) == 1


def test_perfect_prediction_scores_perfectly(study):
    scored = score_study(np.asarray(study.labels).copy(), study)
    assert [les["detected"] for les in scored["lesions"]] == [True, True]
    assert [les["dice"] for les in scored["lesions"]] == [1.0, 1.0]
    assert scored["false_positives"] == {1: 0, 2: 0}


def test_misses_wrong_labels_and_false_positives_are_counted(study):
    pred = np.zeros_like(study.labels)
    pred[study.labels == 1] = 2  # the nodule called a liver lesion: a miss and a false alarm
    pred[2:4, 100:106, 10:16] = 1  # a false nodule of 72 voxels
    pred[20, 120, 120] = 1  # a speck below the size limit: dropped
    scored = score_study(pred, study, min_voxels=20)
    nodule, lesion = scored["lesions"]
    assert not nodule["detected"] and nodule["dice"] == 0
    assert not lesion["detected"]
    assert scored["false_positives"] == {1: 1, 2: 1}
    summary = summarise_segmentation([scored])
    assert summary["sensitivity_ge_6mm"] == 0 and summary["false_positives_per_study"] == 2


def test_a_partly_found_lesion_counts_with_its_dice(study):
    pred = np.asarray(study.labels).copy()
    pred[:, :, 96:] = 0  # half of the liver lesion kept
    scored = score_study(pred, study)
    lesion = scored["lesions"][1]
    assert lesion["detected"] and 0.5 < lesion["dice"] < 0.8


def test_auc_and_seeds_andwarmup_cosine():
    truth = np.array([0, 0, 1, 1], bool)
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), truth) == 1.0
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), truth) == 0.5
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.02)


def test_candidates_are_labelled_by_the_lesion_they_overlap(study):
    """Codes that call both lesions and one blob of soft tissue: three candidates, the
    blob a false positive, each lesion named with its diameter."""
    from medview.ai.bundled.fp import label_candidates
    from medview.ai.findings.postprocess import encode
    from medview.ai.models.cards import card_from_dict
    from tests.ai.tiny_models import card_dict

    probs = np.zeros((study.ct.shape[0], 2, *study.ct.shape[1:]), np.float32)
    for value in (1, 2):
        probs[:, value - 1] = study.labels == value
    probs[2:6, 1, 100:110, 100:110] = 0.9
    codes = encode(probs)
    card = card_from_dict(card_dict("t", input_size=None), "card")
    got = label_candidates(codes, study, card, 0.5)
    assert got["features"].shape == (3, got["features"].shape[1])
    order = np.argsort(got["lesion_id"])
    assert got["lesion_id"][order].tolist() == [-1, 7001, 7002]
    assert got["truth"][order].tolist() == [False, True, True]
    assert got["diameter"][order][1:].tolist() == [les["diameter_mm"] for les in study.lesions]


def test_widening_the_context_keeps_the_predictions():
    import torch
    from monai.networks.nets import UNet

    from medview.ai.bundled.training import SEG, widen_context

    torch.manual_seed(0)
    narrow = UNet(in_channels=3, out_channels=3, **SEG["args"]).eval()
    wide = widen_context(narrow, 5, SEG["args"]).eval()
    x = torch.rand(2, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(wide(x), narrow(x[:, 1:4]))

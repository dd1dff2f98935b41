"""The false-positive stage a card can name (cards.Postprocess, ai.fp_reduction): checked
against its SHA-256 and refused in one sentence when damaged, applied the same way by
findings_from, the inference job and `medview infer`; cards without it still load."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
import torch

from medview.ai.findings.fp_reduction import (
    FEATURES,
    FPClassifier,
    Tree,
    classifier_for,
    region_features,
)
from medview.ai.findings.postprocess import candidate_regions, findings_from
from medview.ai.models.cards import load_card
from medview.core.errors import InvalidInputError
from tests.ai.seg_models import BRIGHT_NAME, assert_map_is_findings, write_bright_model
from tests.ai.tiny_models import card_dict

torch.set_num_threads(1)
MIN_VOXELS = 60  # the hand-made classifier keeps regions of at least this many voxels


def size_classifier() -> FPClassifier:
    """One tree per label: a lesion when it has at least MIN_VOXELS voxels."""
    tree = Tree(
        np.array([FEATURES.index("log_voxels"), -1, -1]),
        np.array([math.log(MIN_VOXELS - 0.5), 0.0, 0.0]),
        np.array([1, -1, -1]),
        np.array([2, -1, -1]),
        np.array([0.0, -10.0, 10.0]),
    )
    return FPClassifier(((0.0, (tree,)), (0.0, (tree,))), "")


def write_fp_model(folder, text: str | None = None, **post):
    """The bright test model with a postprocess naming `text` (the size classifier by
    default) as its false-positive classifier."""
    write_bright_model(folder)
    text = size_classifier().to_json() if text is None else text
    (folder / "fp.json").write_text(text)
    card = json.loads((folder / "metadata.json").read_text())
    card["postprocess"] = {
        "min_component_voxels": 5,
        "min_component_slices": 2,
        "fp_classifier": "fp.json",
        "fp_threshold": 0.5,
        "fp_classifier_sha256": hashlib.sha256(text.encode()).hexdigest(),
        **post,
    }
    (folder / "metadata.json").write_text(json.dumps(card))
    return folder


@pytest.fixture
def data_dir(kept_data_dir):
    return kept_data_dir


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("truncated", "does not match the fp_classifier_sha256 in its card"),
        ("missing", "is missing; the model's card names it as its false-positive classifier"),
        ("features", "was made for other region features than this MedView computes"),
        ("not_json", "is truncated or damaged (not complete JSON)"),
        ("outputs", "holds 6 label ensembles for a model of 2 labels"),
        ("cycle", "has a tree that is not well formed"),
        ("no_sha", "names a false-positive classifier without its fp_classifier_sha256"),
    ],
)
def test_a_damaged_or_mismatched_classifier_is_refused_in_one_sentence(tmp_path, damage, words):
    good = size_classifier().to_json()
    obj = json.loads(good)
    text = {
        "features": json.dumps({**obj, "features": obj["features"][::-1]}),
        "not_json": good[: len(good) // 2],
        "outputs": json.dumps({**obj, "labels": obj["labels"] * 3}),
        "cycle": json.dumps(
            {
                **obj,
                "labels": [
                    {
                        "base": 0,
                        "trees": [
                            {
                                "feature": [0, 0],
                                "threshold": [1, 1],
                                "left": [1, 0],
                                "right": [1, 0],
                                "value": [0, 0],
                            }
                        ],
                    }
                ]
                * 2,
            }
        ),
    }.get(damage, good)
    folder = write_fp_model(tmp_path / "m", text)
    if damage == "truncated":
        (folder / "fp.json").write_text(good[:-10])
    elif damage == "missing":
        (folder / "fp.json").unlink()
    elif damage == "no_sha":
        card = json.loads((folder / "metadata.json").read_text())
        card["postprocess"]["fp_classifier_sha256"] = ""
        (folder / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(InvalidInputError) as err:  # trees are parsed when first used
        classifier_for(load_card(folder))
    message = str(err.value)
    assert words in message and len(message.splitlines()) == 1, message
    name = "metadata.json" if damage == "no_sha" else "fp.json"
    assert name in message


def test_cards_without_a_postprocess_still_load_and_keep_their_minimum(tmp_path):
    from medview.ai.models.registry import bundled_models_dir

    old = load_card(bundled_models_dir() / "lesion-seg" / "1.0")
    assert old.postprocess is None and classifier_for(old) is None
    assert "postprocess" not in json.loads(old.to_json())
    card = load_card(write_fp_model(tmp_path / "m"))
    assert card.postprocess.min_component_slices == 2 and classifier_for(card) is not None
    # plain data: a fine-tune copies a card with asdict, then writes it as JSON
    assert json.loads(card.to_json())["postprocess"]["fp_classifier"] == "fp.json"
    json.dumps(dataclasses.asdict(card))


def test_findings_keep_what_the_rules_and_the_classifier_keep(tmp_path, demo):
    from medview.ai.models.cards import card_from_dict
    from medview.ai.runtime.inference import segment
    from medview.ai.runtime.loading import load_model
    from medview.io.open_volume import load_volume

    vol, _ = load_volume([demo.series_dir])
    folder = write_fp_model(tmp_path / "m")
    model = load_model(folder, "cpu", reuse=False)
    result = segment(vol, model, reuse=False)
    plain = card_from_dict(card_dict(BRIGHT_NAME, input_size=None), "plain card")
    every = findings_from(result.codes, vol, plain, 0.5)
    expected = sorted(
        (f.slice_range, f.voxel_count)
        for f in every
        if f.voxel_count >= MIN_VOXELS and f.slice_range[1] > f.slice_range[0]
    )
    mask = np.zeros(vol.shape, np.uint8)
    kept = findings_from(result.codes, vol, model.card, 0.5, mask_out=mask)
    assert 0 < len(kept) < len(every)
    assert sorted((f.slice_range, f.voxel_count) for f in kept) == expected
    assert kept.omitted == len(every) + every.omitted - len(kept)
    assert np.count_nonzero(mask) == sum(f.voxel_count for f in kept)
    assert_map_is_findings(mask, kept)
    assert every.regions is None and len(kept.regions) == len(kept)
    assert [(v, r.sum()) for v, _, r in kept.regions] == [
        (f.label_value, f.voxel_count) for f in kept
    ]
    # the classifier sees each candidate's features as computed here
    cands, _ = candidate_regions(result.codes, model.card, 0.5)
    feats = np.array([region_features(r, s, p, vol.array, vol.spacing_mm) for _, r, s, p in cands])
    assert np.isfinite(feats).all() and feats.shape[1] == len(FEATURES)
    assert (classifier_for(model.card).scores(feats, [li for li, *_ in cands]) >= 0.5).sum() == len(
        kept
    )


def test_job_cli_and_card_agree(tmp_path, demo, data_dir):
    """... and the label map, labels NIfTI and SEG hold the listed findings' regions alone,
    at the job's threshold and at another."""
    from medview.cli import main
    from medview.core.jobs import CancelToken, JobContext
    from medview.io.dicom.seg import read_seg
    from medview.io.image_files import read_image
    from medview.io.open_volume import load_volume
    from medview.jobs.inference import infer_job

    folder = write_fp_model(data_dir / "models" / BRIGHT_NAME / "1.0")
    out = tmp_path / "out"
    assert (
        main(
            [
                "--log-file",
                str(tmp_path / "log.txt"),
                "infer",
                str(demo.series_dir),
                "--model",
                BRIGHT_NAME,
                "--out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    vol, series = load_volume([demo.series_dir])
    gen = infer_job(vol, folder, JobContext(CancelToken()), device="cpu")
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        job = stop.value
    direct = findings_from(job.segmentation.codes, vol, load_card(folder), 0.5)
    report = json.loads((out / "findings.json").read_text())
    assert job.findings == list(direct) and len(direct) > 0
    assert report["findings"] == [f.to_dict() for f in direct]
    labels = job.label_map()
    assert (job.segmentation.label_map(0.5) > 0).sum() > (labels > 0).sum()  # some dropped
    assert_map_is_findings(labels, job.findings)
    np.testing.assert_array_equal(read_image(out / "labels.nii.gz").array, labels)
    np.testing.assert_array_equal(read_seg(out / "seg.dcm", series).label_map, labels)
    lower = job.at_threshold(vol, 0.4)
    assert_map_is_findings(lower.label_map(), lower.findings)
    raw = job.segmentation.label_map(0.4)
    assert lower.prune(raw) and np.array_equal(raw, lower.label_map())


def test_boosted_trees_learn_an_interaction_and_survive_their_json():
    """Large AND dense is a lesion, for label 0 only: a rule no single feature gives."""
    from medview.ai.bundled.fp import FP, train_classifier
    from medview.ai.findings.fp_reduction import parse_classifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(FEATURES)))
    size, hu = FEATURES.index("log_voxels"), FEATURES.index("mean_hu")
    label = rng.integers(0, 2, 400)
    truth = (x[:, size] > 0) & (x[:, hu] > 0) & (label == 0)
    data = {"features": x, "label": label, "truth": truth, "diameter": np.full(400, 8.0)}
    clf = train_classifier(data, 2, seed=1, spec={**FP, "rounds": 60})
    again = parse_classifier(clf.to_json().encode(), "fp.json", 2)
    np.testing.assert_allclose(again.scores(x, label), clf.scores(x, label))
    scores = clf.scores(x, label)
    assert ((scores >= 0.5) == truth).mean() > 0.95

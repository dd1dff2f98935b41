"""Refitting a fine-tuned version's false-positive stage on its own network's candidates
(issue 15): candidates labelled from a reader's label map, the threshold chosen out of fold,
the refit kept only when it beats the parent's classifier out of fold, and a cross-validated
fine-tune that writes the refit classifier (or keeps the parent's) consistently."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from medview.ai.findings.fp_fit import (
    big_lesions,
    cross_validated_refit,
    label_map_candidates,
    lesion_id,
    refit_is_better,
)
from medview.ai.findings.fp_reduction import FEATURES, FPClassifier, Tree
from medview.ai.models.cards import load_card
from medview.ai.runtime.inference import clear_kept, segment
from medview.ai.runtime.loading import load_model
from medview.ai.training.metrics import _Network, held_out
from medview.core.volume import Volume
from tests.ai.test_fp_reduction import size_classifier, write_fp_model
from tests.ai.test_train_metrics_postprocess import SPACING, study

SIZE = FEATURES.index("log_voxels")


@pytest.fixture(autouse=True)
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)
    clear_kept()
    yield
    clear_kept()


def test_candidates_are_labelled_from_the_label_map(tmp_path: Path) -> None:
    card = load_card(write_fp_model(tmp_path / "m"))
    module = load_model(tmp_path / "m", "cpu", reuse=False).module
    st = study(tmp_path)
    volume = Volume(st.image, np.diag([*SPACING, 1.0]))
    codes = segment(volume, _Network(module, card, "cpu"), reuse=False).codes
    c = label_map_candidates(codes, volume, np.asarray(st.labels), card, 0.5, study=3)
    assert len(c["truth"]) == 2 and c["features"].shape == (2, len(FEATURES))
    block = int(np.argmax(c["size"]))
    assert c["truth"][block] and not c["truth"][1 - block]  # the block, then the speck
    assert c["lesion_id"][block] == lesion_id(3, 0, 1) and c["lesion_id"][1 - block] == -1
    assert 570 <= c["inter"][block] <= min(600, c["size"][block])  # (the block's rim)
    assert c["inter"][1 - block] == 0
    diameter = (6 * 600 * math.prod(SPACING) / math.pi) ** (1 / 3)
    assert c["diameter"][block] == pytest.approx(diameter)
    assert big_lesions(np.asarray(st.labels), card, SPACING, 3) == [lesion_id(3, 0, 1)]
    scores, records = held_out(module, card, [st], "cpu", first=3)
    assert scores[0]["false_positives"] == {1: 0, 2: 0}  # the speck: dropped by the classifier
    assert records[0]["big"] == [lesion_id(3, 0, 1)]
    assert records[0]["at"]["lesion_id"] == c["lesion_id"].tolist()
    assert len(records[0]["train"]) == 3 and records[0]["truth_voxels"] == {"0": 600, "1": 0}
    json.dumps(records)  # kept in the checkpoint as JSON


def _candidates(rng: np.random.Generator, study: int, n_fp: int) -> dict:
    """One study's candidates: 2 lesions of 10 mm (size feature about 6) and `n_fp`
    false positives (about 3), label 0."""
    size = np.r_[rng.uniform(5.5, 6.5, 2), rng.uniform(2.5, 3.5, n_fp)]
    features = np.zeros((len(size), len(FEATURES)))
    features[:, SIZE] = size
    ids = np.r_[[lesion_id(study, 0, 1), lesion_id(study, 0, 2)], -np.ones(n_fp)]
    return {
        "features": features,
        "label": np.zeros(len(size), np.int64),
        "truth": ids >= 0,
        "lesion_id": ids.astype(np.int64),
        "diameter": np.r_[10.0, 10.0, np.zeros(n_fp)],
        "size": np.r_[400, 400, np.full(n_fp, 50)].astype(np.int64),
        "inter": np.r_[300, 300, np.zeros(n_fp)].astype(np.int64),
    }


def _studies() -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(6):
        c = _candidates(rng, i, n_fp=4)
        out.append(
            {
                "fold": i % 3,
                "at": c,
                "train": [c],
                "big": [lesion_id(i, 0, 1), lesion_id(i, 0, 2)],
                "truth_voxels": {"0": 500, "1": 0},
            }
        )
    return out


def _threshold_classifier(cut: float, sign: float = 1.0) -> FPClassifier:
    tree = Tree(
        np.array([SIZE, -1, -1]),
        np.array([cut, 0.0, 0.0]),
        np.array([1, -1, -1]),
        np.array([2, -1, -1]),
        np.array([0.0, -10.0 * sign, 10.0 * sign]),
    )
    return FPClassifier(((0.0, (tree,)), (0.0, (tree,))), "")


def test_the_refit_threshold_is_chosen_out_of_fold_and_removes_false_positives() -> None:
    spec = {
        "rounds": 30,
        "depth": 2,
        "lr": 0.3,
        "lambda": 1.0,
        "bins": 16,
        "min_hessian": 0.5,
        "subsample": 1.0,
        "train_thresholds": (0.5,),
        "min_sensitivity": 0.93,
    }
    clf, cut, info = cross_validated_refit(_studies(), 2, 0, None, spec)
    assert info["folds"] == 3 and info["candidates"] == 36 and info["on_lesions"] == 12
    assert info["none"]["false_positives_per_study"] == 4.0
    assert info["refit"]["false_positives_per_study"] == 0.0
    assert info["refit"]["sensitivity_ge_6mm"] == info["none"]["sensitivity_ge_6mm"] == 1.0
    assert info["refit"]["dice_mean_per_study"] > info["none"]["dice_mean_per_study"]
    assert 0 < cut < 1 and refit_is_better(info)
    scores = clf.scores(_studies()[0]["at"]["features"], np.zeros(6, np.int64))
    assert (scores[:2] >= cut).all() and (scores[2:] < cut).all()


def test_the_refit_replaces_the_parents_only_when_better_out_of_fold() -> None:
    spec = {
        "rounds": 30,
        "depth": 2,
        "lr": 0.3,
        "lambda": 1.0,
        "bins": 16,
        "min_hessian": 0.5,
        "subsample": 1.0,
        "train_thresholds": (0.5,),
        "min_sensitivity": 0.93,
    }
    keeps_all = (_threshold_classifier(-1.0), 0.5)  # the parent lets every region through
    _, _, info = cross_validated_refit(_studies(), 2, 0, keeps_all, spec)
    assert info["parent"]["false_positives_per_study"] == 4.0 and refit_is_better(info)
    perfect = (_threshold_classifier(4.5), 0.5)  # the parent already separates them
    _, _, info = cross_validated_refit(_studies(), 2, 0, perfect, spec)
    assert info["parent"] == info["refit"] and not refit_is_better(info)  # not better: kept


def test_a_cross_validated_fine_tune_writes_the_refit_or_keeps_the_parents(tmp_path: Path) -> None:
    from tests.ai.test_training import run, tiny_job
    from tests.ai.tiny_models import card_dict, tiny_unet, write_folder

    text = size_classifier().to_json()
    folder = tmp_path / "data" / "models" / "tiny" / "1.0"
    write_folder(
        folder,
        tiny_unet(),
        card=card_dict(
            "tiny",
            "1.0",
            input_size=None,
            validation={"dice": 0.1},
            postprocess={
                "min_component_voxels": 5,
                "min_component_slices": 2,
                "fp_classifier": "fp.json",
                "fp_threshold": 0.5,
                "fp_classifier_sha256": hashlib.sha256(text.encode()).hexdigest(),
            },
        ),
    )
    (folder / "fp.json").write_text(text)
    done, events = run(tiny_job(tmp_path, epochs=1, folds=2, refit_fp=True))
    assert done is not None
    card = load_card(done["folder"])
    refit = card.validation["fine_tune"]["fp_refit"]
    assert set(refit) >= {"none", "parent", "refit", "threshold", "used", "candidates"}
    said = [e for e in events if e["event"] == "fp_refit"]
    assert len(said) == 1 and said[0]["used"] == refit["used"]
    written = (Path(done["folder"]) / "fp.json").read_text()
    if refit["used"]:
        assert written != text and card.postprocess.fp_threshold == refit["threshold"]
        assert "refit on this network's own candidates" in card.training_data
    else:
        assert written == text and card.postprocess.fp_threshold == 0.5
    load_model(done["folder"], "cpu", reuse=False)  # the classifier's checksum holds

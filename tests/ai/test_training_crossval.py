"""Cross-validation of a fine-tune (issue 15): folds by patient, every labelled study scored
by a version that did not train on it, intervals and the paired change on the card, and a
stop in a later fold that resumes to the same version as an uninterrupted run."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from medview.ai.findings.intervals import bootstrap_interval, paired_change
from medview.ai.models.cards import load_card
from medview.ai.models.verdict import verdict
from medview.ai.training.crossval import fold_split, study_dice
from medview.ai.training.engine import Trainer
from tests.ai.test_training import run, tiny_job


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)


def _studies(patients: list[str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(key=f"s{i}", patient=p) for i, p in enumerate(patients)]


def test_folds_keep_each_patient_together_and_hold_every_study_out_once() -> None:
    studies = _studies(["p1", "p1", "p2", "p3", "p4", "p5", "p6", "p6"])
    folds = fold_split(studies, 5, seed=0)
    assert len(folds) == 5
    keys = [k for f in folds for k in f]
    assert sorted(keys) == sorted(s.key for s in studies) and len(set(keys)) == len(keys)
    for pair in (("s0", "s1"), ("s6", "s7")):  # one patient's studies share a fold
        assert any(set(pair) <= set(f) for f in folds)
    assert all(f for f in folds)  # 6 patients over 5 folds: none empty
    assert fold_split(studies, 5, seed=0) == folds  # seeded
    assert len(fold_split(studies, 50, seed=0)) == 6  # k is capped by the patients
    assert fold_split(_studies(["p1", "p1", "p1"]), 5, seed=0) == []  # nothing to hold out


def test_paired_change_is_the_mean_difference_with_students_t_half_width() -> None:
    out = paired_change([0.6, 0.8, 1.0], [0.5, 0.6, 0.7])  # differences 0.1, 0.2, 0.3
    half = 4.302653 * 0.1 / math.sqrt(3)  # t(0.975, 2 df) x sd / sqrt(n)
    assert out["n"] == 3 and out["mean"] == pytest.approx(0.2)
    assert out["half_width"] == pytest.approx(half, abs=1e-4)
    one = paired_change([0.7, None], [0.5, 0.4])  # a study without a Dice does not count
    assert one == {"mean": pytest.approx(0.2), "half_width": None, "n": 1}
    assert paired_change([None], [0.5])["mean"] is None


def test_bootstrap_interval_brackets_the_statistic_and_needs_two_studies() -> None:
    rng = np.random.default_rng(3)
    values = list(rng.normal(0.7, 0.1, 12))
    lo, hi = bootstrap_interval(values, lambda xs: float(np.mean(xs)))
    assert lo < float(np.mean(values)) < hi
    se = float(np.std(values, ddof=1)) / math.sqrt(12)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.25)  # about the normal interval
    assert bootstrap_interval([0.5, 0.5, 0.5], lambda xs: float(np.mean(xs))) == (0.5, 0.5)
    assert bootstrap_interval([0.5], lambda xs: float(np.mean(xs))) is None
    assert bootstrap_interval([1.0, 2.0], lambda xs: None) is None


def test_study_dice_is_the_mean_over_the_labels_the_study_holds() -> None:
    score = {"overlap": {1: (8, 10, 10), 2: (0, 3, 0)}}  # label 2: none in the truth
    assert study_dice(score) == pytest.approx(0.8)
    assert study_dice({"overlap": {1: (0, 4, 0)}}) is None


def test_a_cross_validated_fine_tune_scores_every_study_held_out(tmp_path: Path) -> None:
    done, events = run(tiny_job(tmp_path, epochs=1, folds=2))
    assert done is not None
    starts = [e for e in events if e["event"] == "start"]
    assert [(e.get("fold"), e.get("folds"), e["val"]) for e in starts] == [
        (1, 2, 2),
        (2, 2, 2),
        (None, None, 0),
    ]  # two folds, then the version on all 4
    fold_epochs = [e for e in events if e["event"] == "epoch" and e.get("fold")]
    assert [(e["fold"], e["epoch"]) for e in fold_epochs] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    card = load_card(done["folder"])
    ft = card.validation["fine_tune"]
    cv = ft["cross_validation"]
    assert cv["folds"] == 2 and cv["studies"] == 4 and len(cv["per_study"]) == 4
    assert len(ft["val_studies"]) == 4 and ft["val_studies"] == ft["train_studies"]
    assert card.validation["studies"] == 4 and ft["parent_metrics"]["studies"] == 4
    for key in ("dice_mean", "false_positives_per_study"):
        for side in ("parent", "new"):
            lo, hi = cv["intervals"][key][side]
            value = (ft["parent_metrics"] if side == "parent" else card.validation)[key]
            assert lo - 1e-6 <= value <= hi + 1e-6
    dice_change = cv["change"]["dice"]
    per_study = [d for d in cv["per_study"] if None not in d["dice"]]
    assert dice_change["n"] == len(per_study)
    assert dice_change["mean"] == pytest.approx(
        np.mean([d["dice"][1] - d["dice"][0] for d in per_study]), abs=1e-3
    )
    said = verdict(card.validation, "1.0")
    assert said is not None and "on your 4 studies: Dice " in said.text
    assert done["cross_validation"]["studies"] == 4
    assert "2-fold cross-validated by patient" in card.training_data


def test_a_stop_in_the_second_fold_resumes_to_the_same_version(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    whole, _ = run(tiny_job(tmp_path, epochs=1, folds=2, work="whole"))
    job = tiny_job(tmp_path, epochs=1, folds=2, work="stopped")
    events: list[dict] = []
    asked = {"n": 0}

    def in_fold_two() -> bool:  # stop at the 3rd check once fold 2 has started training
        if any(e["event"] == "start" and e.get("fold") == 2 for e in events):
            asked["n"] += 1
        return asked["n"] > 2

    first = Trainer(job, events.append, in_fold_two).run()
    assert first is None and events[-1]["event"] == "stopped"
    assert events[-1]["epoch"] == 0 and events[-1]["step"] == 2  # mid-epoch in fold 2
    again, events = run(job, resume=True)
    assert again is not None
    assert not any(e["event"] == "start" and e.get("fold") == 1 for e in events)
    card = load_card(again["folder"])
    a, b = (load_file(str(Path(d["folder"]) / "weights.safetensors")) for d in (whole, again))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert card.validation["fine_tune"]["cross_validation"]["studies"] == 4

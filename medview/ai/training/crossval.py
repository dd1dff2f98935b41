"""Cross-validation of a fine-tune on every study the reader labelled.

Two validation studies used to decide the best epoch and every number on the card: one study
more or less moved the card's Dice by 0.15, and cards reported clear gains for versions that
did worse on the site's unseen studies (issue 15). Now the labelled studies are split into
k folds by patient (k = min(Settings.folds, patients)); the same training (same epochs, no
early stopping: with 1-2 studies a fold it picked noise) runs k times, each time from the
parent, on the other folds, and its version is scored whole-volume on the fold it never saw,
as is the parent. Every study is thus scored once by a network that did not train on it; the
version the reader gets is then trained the same way on all studies. The card's numbers are
those held-out scores pooled over all studies, each with its 95% bootstrap interval over
studies and the number of studies behind it, and the paired change against the parent that
the verdict (ai.models.verdict) states. Cost: k + 1 trainings instead of 1 (k is
Settings.folds, capped by the number of patients)."""

from __future__ import annotations

from typing import Any

import numpy as np

from medview.ai.findings.intervals import bootstrap_interval, paired_change
from medview.ai.findings.scoring import MIN_DIAMETER_MM
from medview.ai.models.cards import ModelCard


def fold_split(studies: list[Any], folds: int, seed: int) -> list[list[str]]:
    """Study keys in k = min(folds, patients) folds, every patient's studies in one fold,
    patients shuffled (seeded) and dealt round-robin; [] when there are fewer than 2
    patients (nothing could be held out)."""
    patients = sorted({s.patient for s in studies})
    k = min(folds, len(patients))
    if k < 2:
        return []
    order = [patients[i] for i in np.random.default_rng(seed).permutation(len(patients))]
    fold_of = {p: i % k for i, p in enumerate(order)}
    return [[s.key for s in studies if fold_of[s.patient] == f] for f in range(k)]


def _int_keys(score: dict) -> dict:
    """A per-study score (metrics.score) after a JSON round trip: label values back to int."""
    return {
        **score,
        "overlap": {int(k): v for k, v in score["overlap"].items()},
        "false_positives": {int(k): v for k, v in score["false_positives"].items()},
    }


def study_dice(score: dict) -> float | None:
    """Voxel Dice of one study, the mean over the labels it holds (None if it holds none)."""
    values = [2 * i / (p + t) for i, p, t in score["overlap"].values() if t]
    return float(np.mean(values)) if values else None


def _false_positives(scores: list[dict]) -> float:
    return sum(sum(s["false_positives"].values()) for s in scores) / max(len(scores), 1)


def _sensitivity(scores: list[dict]) -> float | None:
    big = [
        x["detected"] for s in scores for x in s["lesions"] if x["diameter_mm"] >= MIN_DIAMETER_MM
    ]
    return float(np.mean(big)) if big else None


def _pooled_dice(scores: list[dict]) -> float | None:
    """Dice of all voxels summed over the studies, mean over labels (summarise's dice_mean)."""
    labels = {v for s in scores for v in s["overlap"]}
    dices = []
    for v in sorted(labels):
        inter, pred, truth = (
            sum(s["overlap"][v][i] for s in scores if v in s["overlap"]) for i in range(3)
        )
        if truth:
            dices.append(2 * inter / (pred + truth))
    return float(np.mean(dices)) if dices else None


STATISTICS = {
    "dice_mean": _pooled_dice,
    "sensitivity_ge_6mm": _sensitivity,
    "false_positives_per_study": _false_positives,
}


def _interval(scores: list[dict], key: str) -> list[float] | None:
    found = bootstrap_interval(scores, STATISTICS[key])
    return None if found is None else [round(found[0], 4), round(found[1], 4)]


def summary(parent: list[dict], new: list[dict], card: ModelCard, folds: int) -> dict:
    """The card's cross_validation record from the held-out per-study scores of the parent
    and of the fold versions (same studies, same order)."""
    from medview.ai.training.metrics import summarised

    parent, new = [_int_keys(s) for s in parent], [_int_keys(s) for s in new]
    intervals = {
        key: {"parent": _interval(parent, key), "new": _interval(new, key)} for key in STATISTICS
    }
    per_study = [
        {
            "dice": [None if d is None else round(d, 4) for d in (study_dice(p), study_dice(s))],
            "false_positives": [
                sum(p["false_positives"].values()),
                sum(s["false_positives"].values()),
            ],
        }
        for p, s in zip(parent, new, strict=True)
    ]
    change = {
        "dice": paired_change([study_dice(s) for s in new], [study_dice(p) for p in parent]),
        "false_positives_per_study": paired_change(
            [float(sum(s["false_positives"].values())) for s in new],
            [float(sum(p["false_positives"].values())) for p in parent],
        ),
    }
    return {
        "folds": folds,
        "studies": len(new),
        "level": 0.95,
        "method": f"{folds}-fold cross-validation by patient: each study scored by a "
        f"version trained without it; intervals: bootstrap over studies "
        f"(numbers), paired t over studies (change)",
        "intervals": intervals,
        "change": change,
        "per_study": per_study,
        "parent_metrics": summarised(parent, [], card),
        "metrics": summarised(new, [], card),
    }

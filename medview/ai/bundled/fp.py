"""The false-positive stage of bundled lesion-seg 1.1: candidates from the segmentation
network on demo studies it never trained on, a tiny MLP that tells lesions from the rest
(ai.fp_reduction), and its threshold chosen on separate development studies.

Candidates are exactly what the findings list would show without the second stage
(ai.findings.candidate_regions at the card's threshold and size rules), so the classifier
learns on the regions it will judge in the app (and, for more examples, the same regions cut
at two neighbouring thresholds). A candidate is a lesion when it overlaps a
ground-truth lesion of its label. The threshold is the highest that keeps the development
studies' sensitivity for lesions of 6 mm and more (of all their lesions, found by the network
or not) at `min_sensitivity`, three points above the goal as a margin for unseen studies; the
held-out validation seeds are scored once, afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.bundled.data import CachedStudy
from medview.ai.findings.fp_fit import FP, choose_threshold, train_classifier
from medview.ai.findings.fp_reduction import FEATURES, FPClassifier, region_features
from medview.ai.findings.scoring import MIN_DIAMETER_MM

log = logging.getLogger("medview.train")

# the outline's extent (ai.extent): the extent threshold with the best mean lesion Dice
# (>= 6 mm) on the development studies, the classifier in place, each finding grown at most
# max_mm (on lesion-seg 1.1's development studies the rim lay within 2 mm: 3 and 5 mm gave
# the same Dice)
EXTENT = {"grid": (0.2, 0.1, 0.05, 0.03, 0.02), "max_mm": 3.0}


def label_candidates(
    codes: np.ndarray, st: CachedStudy, card: Any, threshold: float
) -> dict[str, np.ndarray]:
    """Per candidate region of one study: features, label index, truth (overlaps a lesion
    of its label), and the lesion it overlaps most: an id unique across studies (seed * 1000
    + lesion id; -1 for none) and its diameter (0 for none)."""
    from medview.ai.findings.postprocess import candidate_regions

    volume = st.volume()
    inst, lesion_of = _lesion_instances(st)
    cands, _ = candidate_regions(codes, card, threshold)
    feats, lis, ids, diams = [], [], [], []
    for li, region, start, p in cands:
        box = tuple(slice(int(a), int(a) + r) for a, r in zip(start, region.shape, strict=True))
        value = card.labels[li].value
        hit = inst[value][box][region]
        hit = hit[hit > 0]
        les = lesion_of[value].get(int(np.bincount(hit).argmax())) if len(hit) else None
        feats.append(region_features(region, start, p, volume.array, volume.spacing_mm))
        lis.append(li)
        ids.append(-1 if les is None else st.seed * 1000 + les["id"])
        diams.append(0.0 if les is None else float(les["diameter_mm"]))
    k = len(FEATURES)
    ids_a = np.array(ids, np.int64)
    return {
        "features": np.array(feats, np.float64).reshape(-1, k),
        "label": np.array(lis, np.int64),
        "truth": ids_a >= 0,
        "lesion_id": ids_a,
        "diameter": np.array(diams, np.float64),
    }


def _lesion_instances(st: CachedStudy) -> tuple[dict[int, np.ndarray], dict[int, dict]]:
    """Per label value: the ground truth's 26-connected instances, and instance -> lesion
    (the generator's record whose centre lies in or nearest that instance)."""
    from scipy import ndimage

    from medview.ai.findings.scoring import instance_near

    volume = st.volume()
    gt = np.asarray(st.labels)
    inst, lesion_of = {}, {}
    for value in (1, 2):
        inst[value], _ = ndimage.label(gt == value, np.ones((3, 3, 3), bool))
        lesion_of[value] = {}
        for les in st.lesions:
            if les["label_value"] == value and les["n_voxels"]:
                idx = np.round(volume.lps_to_index(les["centre_lps_mm"])).astype(int)
                lesion_of[value].setdefault(instance_near(inst[value], idx), les)
    return inst, lesion_of


def save_candidates(path: Path, data: dict[str, np.ndarray]) -> None:
    np.savez(path, **data)


def load_candidates(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def candidates_of(
    model: Any, studies: list[CachedStudy], store: Path, threshold: float
) -> dict[str, np.ndarray]:
    """label_candidates of every study, concatenated; the model's codes are kept in `store`
    and each study's candidates beside them (reruns reuse both)."""
    from medview.ai.bundled.evaluation import segment_cached

    parts = []
    for st in studies:
        path = store / f"{st.seed}-candidates-{threshold:g}.npz"
        if not path.exists():
            codes = segment_cached(model, st, store).codes
            save_candidates(path, label_candidates(codes, st, model.card, threshold))
        parts.append(load_candidates(path))
        log.info(
            "candidates of seed %d: %d (%d on lesions)",
            st.seed,
            len(parts[-1]["truth"]),
            int(parts[-1]["truth"].sum()),
        )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def lesions_ge(studies: list[CachedStudy]) -> int:
    """Lesions of 6 mm and more (with voxels) in `studies`."""
    return sum(
        1
        for st in studies
        for les in st.lesions
        if les["n_voxels"] and les["diameter_mm"] >= MIN_DIAMETER_MM
    )


def fp_stage(
    folder: Path,
    train: list[CachedStudy],
    dev: list[CachedStudy],
    work: Path,
    seed: int,
    threshold: float = 0.5,
) -> tuple[FPClassifier, float, dict]:
    """Train the classifier on `train` studies' candidates of the model in `folder` (its
    card's size rules, no second stage yet), choose its threshold on `dev`; returns the
    classifier, its threshold and what the card's training summary should say."""
    from medview.ai.runtime.loading import load_model

    model = load_model(folder, "cpu", reuse=False)
    store = work / f"codes-{model.card.weights_sha256[:12]}"
    store.mkdir(parents=True, exist_ok=True)
    parts = [candidates_of(model, train, store, t) for t in FP["train_thresholds"]]
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    clf = train_classifier(data, len(model.card.labels), seed)
    held = candidates_of(model, dev, store, threshold)
    scores = clf.scores(held["features"], held["label"])
    n_ge = lesions_ge(dev)
    cut = choose_threshold(scores, held, n_ge, FP["min_sensitivity"])
    kept = scores >= cut
    big = held["diameter"] >= MIN_DIAMETER_MM
    info = {
        "train_candidates": len(data["truth"]),
        "train_on_lesions": int(data["truth"].sum()),
        "dev_candidates": len(held["truth"]),
        "dev_fp_per_study_before": round(float((~held["truth"]).sum()) / len(dev), 2),
        "dev_fp_per_study_after": round(float((kept & ~held["truth"]).sum()) / len(dev), 2),
        "dev_sensitivity_ge_6mm_before": round(
            len(set(held["lesion_id"][big].tolist())) / max(n_ge, 1), 4
        ),
        "dev_sensitivity_ge_6mm_after": round(
            len(set(held["lesion_id"][big & kept].tolist())) / max(n_ge, 1), 4
        ),
        "fp_threshold": cut,
        **{k: v for k, v in FP.items()},
    }
    log.info("fp stage: %s", info)
    return clf, cut, info


def choose_extent(folder: Path, dev: list[CachedStudy], work: Path) -> dict:
    """The card's extent_threshold and extent_max_mm chosen on `dev` (EXTENT) for the model
    in `folder` (its card's classifier and threshold in place), and the development Dice of
    each choice (0: no growth); ties go to the higher threshold, the smaller change."""
    import dataclasses

    from medview.ai.bundled.evaluation import score_study, segment_cached, summarise_segmentation
    from medview.ai.findings.postprocess import findings_from
    from medview.ai.runtime.loading import load_model

    model = load_model(folder, "cpu", reuse=False)
    card, store = model.card, work / f"codes-{model.card.weights_sha256[:12]}"
    per: dict[float, list] = {t: [] for t in (0.0, *EXTENT["grid"])}
    for st in dev:
        result, volume = segment_cached(model, st, store), st.volume()
        for t in per:
            post = dataclasses.replace(
                card.postprocess, extent_threshold=t, extent_max_mm=EXTENT["max_mm"] if t else 0.0
            )
            mask = np.zeros(result.codes.shape, np.uint8)
            findings_from(
                result.codes,
                volume,
                dataclasses.replace(card, postprocess=post),
                0.5,
                coarse_max=result.coarse_max,
                mask_out=mask,
            )
            per[t].append(score_study(mask, st, min_voxels=1))
    dice = {t: summarise_segmentation(scores)["mean_dice_ge_6mm"] for t, scores in per.items()}
    best = max(EXTENT["grid"], key=lambda t: (dice[t], t))
    info = {
        "extent_threshold": best,
        "extent_max_mm": EXTENT["max_mm"],
        "dev_dice_by_extent": {f"{t:g}": d for t, d in dice.items()},
    }
    log.info("extent: %s", info)
    return info

"""Fitting a false-positive classifier (findings.fp_reduction): gradient-boosted trees on
candidate regions, and its threshold, the highest that keeps lesion sensitivity (>= 6 mm) at
a chosen level. Shared by the recipe that fitted the bundled lesion-seg 1.1's (ai.bundled.fp)
and the fine-tuning engine, which refits a fine-tuned version's on its own network's
candidates (training.fp_refit): a fine-tuned network's regions are not those the parent's
classifier learnt. numpy only (no torch), below the training layer.

A candidate set is a dict of arrays, one row a region: "features" (N, len(FEATURES)),
"label" (label index), "truth" (overlaps a true lesion of its label), "lesion_id" (the lesion
it overlaps most, unique across studies; -1 for none) and "diameter" (that lesion's, mm; 0
for none)."""

from __future__ import annotations

import logging

import numpy as np

from medview.ai.findings.fp_reduction import FPClassifier, Tree
from medview.ai.findings.scoring import MIN_DIAMETER_MM

log = logging.getLogger("medview.train")

# train_thresholds: candidates are cut at these probabilities too, so the trees see each
# region at a few sizes (three times the examples from the same studies); min_sensitivity:
# of ALL development lesions of 6 mm and more, three points over the bundled model's goal
# of 0.90 (on the development seeds 0.95 kept about 0.5 false positives a study, 0.93 about
# 0.2)
FP = {
    "rounds": 400,
    "depth": 2,
    "lr": 0.1,
    "lambda": 1.0,
    "bins": 32,
    "min_hessian": 2.0,
    "subsample": 0.8,
    "train_thresholds": (0.4, 0.5, 0.6),
    "min_sensitivity": 0.93,
}


def train_classifier(
    data: dict[str, np.ndarray], n_labels: int, seed: int, spec: dict | None = None
) -> FPClassifier:
    """Gradient-boosted trees per label (Newton steps on the logistic loss, as XGBoost):
    lesions and non-lesions weigh equally per label (about one in four candidates is a
    lesion), and lesions of 6 mm and more twice as much as smaller ones."""
    spec = spec or FP
    rng = np.random.default_rng(seed)
    ensembles = []
    for li in range(n_labels):
        mine = data["label"] == li
        x, y = data["features"][mine], data["truth"][mine].astype(np.float64)
        w = np.where(y > 0, 0.5 * len(y) / max(y.sum(), 1), 0.5 * len(y) / max(len(y) - y.sum(), 1))
        w[(y > 0) & (data["diameter"][mine] >= MIN_DIAMETER_MM)] *= 2.0
        w /= w.mean() if len(w) else 1.0  # (a label without candidates: no trees)
        base = float(np.log(max((w * y).sum(), 1e-6) / max((w * (1 - y)).sum(), 1e-6)))
        edges = [
            np.unique(np.quantile(x[:, j], np.linspace(0, 1, spec["bins"] + 1)[1:-1]))
            if len(x)
            else np.zeros(0)
            for j in range(x.shape[1])
        ]
        bins = (
            np.stack([np.searchsorted(e, x[:, j]) for j, e in enumerate(edges)], 1)
            if len(x)
            else np.zeros((0, x.shape[1]), np.int64)
        )
        logit, trees = np.full(len(y), base), []
        for _ in range(spec["rounds"] if len(y) else 0):
            p = 1.0 / (1.0 + np.exp(-logit))
            g, h = w * (p - y), w * p * (1 - p)
            use = np.flatnonzero(rng.random(len(y)) < spec["subsample"])
            tree = _grow(bins, edges, g, h, use, spec)
            trees.append(tree)
            logit += tree.logit(x)
        ensembles.append((base, tuple(trees)))
        log.info(
            "fp classifier, label %d: %d candidates (%d lesions), %d trees",
            li,
            len(y),
            int(y.sum()),
            len(trees),
        )
    return FPClassifier(tuple(ensembles), "")


def _grow(
    bins: np.ndarray,
    edges: list[np.ndarray],
    g: np.ndarray,
    h: np.ndarray,
    rows: np.ndarray,
    spec: dict,
) -> Tree:
    """One tree of depth spec["depth"], each split the best gain over the binned features."""
    nodes: list[list] = []  # feature, threshold, left, right, value

    def build(idx: np.ndarray, depth: int) -> int:
        me = len(nodes)
        nodes.append([-1, 0.0, -1, -1, 0.0])
        gs, hs = g[idx].sum(), h[idx].sum()
        best = (1e-9, -1, -1)
        if depth < spec["depth"]:
            for j, e in enumerate(edges):
                if not len(e):
                    continue
                gl = np.cumsum(np.bincount(bins[idx, j], g[idx], len(e) + 1))[:-1]
                hl = np.cumsum(np.bincount(bins[idx, j], h[idx], len(e) + 1))[:-1]
                hr = hs - hl
                ok = (hl >= spec["min_hessian"]) & (hr >= spec["min_hessian"])
                gain = np.where(
                    ok,
                    gl**2 / (hl + spec["lambda"])
                    + (gs - gl) ** 2 / (hr + spec["lambda"])
                    - gs**2 / (hs + spec["lambda"]),
                    0.0,
                )
                m = int(np.argmax(gain))
                if gain[m] > best[0]:
                    best = (float(gain[m]), j, m)
        if best[1] < 0:
            nodes[me][4] = -spec["lr"] * gs / (hs + spec["lambda"])
            return me
        _, j, m = best
        left = bins[idx, j] <= m
        nodes[me][:2] = [j, float(edges[j][m])]
        nodes[me][2] = build(idx[left], depth + 1)
        nodes[me][3] = build(idx[~left], depth + 1)
        return me

    build(rows, 0)
    cols = list(zip(*nodes, strict=True))
    return Tree(
        np.array(cols[0], np.int64),
        np.array(cols[1]),
        np.array(cols[2], np.int64),
        np.array(cols[3], np.int64),
        np.array(cols[4]),
    )


def choose_threshold(
    scores: np.ndarray, data: dict[str, np.ndarray], n_lesions_ge: int, min_sensitivity: float
) -> float:
    """The highest threshold keeping sensitivity (lesions >= 6 mm; a lesion counts as
    found when any candidate overlapping it is kept) at min_sensitivity on dev studies.
    `data["lesion_id"]` names each candidate's lesion (-1 for none). Thresholds are scores
    rounded down to 0.001, so the card's value keeps what it kept here."""
    ids = data["lesion_id"]
    big = data["diameter"] >= MIN_DIAMETER_MM
    best = 0.0
    for t in np.unique(np.floor(scores * 1000) / 1000):
        kept = scores >= t
        found = len(set(ids[kept & big & (ids >= 0)].tolist()))
        if found >= min_sensitivity * n_lesions_ge:
            best = max(best, float(t))
    return best


def _lesions(
    truth: np.ndarray, card: object, spacing: tuple[float, float, float]
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per label value: the label map's 26-connected components, and each one's
    volume-equivalent diameter in mm (index 0: background)."""
    from scipy import ndimage

    voxel_mm3 = float(np.prod(spacing))
    inst, diam = {}, {}
    for lab in card.labels:
        inst[lab.value], n = ndimage.label(truth == lab.value, np.ones((3, 3, 3), bool))
        sizes = np.bincount(inst[lab.value].ravel(), minlength=n + 1)
        diam[lab.value] = (6 * sizes * voxel_mm3 / np.pi) ** (1 / 3)
    return inst, diam


def lesion_id(study: int, label_index: int, component: int) -> int:
    """A lesion's id, unique across studies and labels."""
    return study * 100000 + label_index * 10000 + component


def big_lesions(
    truth: np.ndarray, card: object, spacing: tuple[float, float, float], study: int
) -> list[int]:
    """Ids of a study's lesions (components) of MIN_DIAMETER_MM and more."""
    _, diam = _lesions(truth, card, spacing)
    return [
        lesion_id(study, li, int(g))
        for li, lab in enumerate(card.labels)
        for g in np.flatnonzero(diam[lab.value] >= MIN_DIAMETER_MM)
        if g > 0
    ]


def label_map_candidates(
    codes: np.ndarray, volume: object, truth: np.ndarray, card: object, threshold: float, study: int
) -> dict[str, np.ndarray]:
    """The candidate regions of one study (candidate_regions at `threshold`, the card's
    size rules) with what its label map says of each: a study a reader labelled has no
    lesion list, so a lesion is a 26-connected component of its label, its diameter the
    volume-equivalent one (ids: lesion_id). Also each region's voxels ("size") and those on
    a lesion of its label ("inter"), for a Dice of the kept regions."""
    from medview.ai.findings.fp_reduction import FEATURES, region_features
    from medview.ai.findings.postprocess import candidate_regions

    spacing = volume.spacing_mm
    inst, diam = _lesions(truth, card, spacing)
    rows: dict[str, list] = {
        k: [] for k in ("features", "label", "lesion_id", "diameter", "size", "inter")
    }
    for li, region, start, p in candidate_regions(codes, card, threshold)[0]:
        box = tuple(slice(int(a), int(a) + r) for a, r in zip(start, region.shape, strict=True))
        value = card.labels[li].value
        hit = inst[value][box][region]
        on = hit[hit > 0]
        gid = int(np.bincount(on).argmax()) if len(on) else 0
        rows["features"].append(region_features(region, start, p, volume.array, spacing))
        rows["label"].append(li)
        rows["lesion_id"].append(lesion_id(study, li, gid) if gid else -1)
        rows["diameter"].append(float(diam[value][gid]) if gid else 0.0)
        rows["size"].append(int(region.sum()))
        rows["inter"].append(len(on))
    ids = np.array(rows["lesion_id"], np.int64)
    return {
        "features": np.array(rows["features"], np.float64).reshape(-1, len(FEATURES)),
        "label": np.array(rows["label"], np.int64),
        "truth": ids >= 0,
        "lesion_id": ids,
        "diameter": np.array(rows["diameter"], np.float64),
        "size": np.array(rows["size"], np.int64),
        "inter": np.array(rows["inter"], np.int64),
    }


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def kept_numbers(studies: list[dict], keep: list[np.ndarray]) -> dict[str, float | None]:
    """False positives a study, sensitivity >= 6 mm and the mean per-study Dice of the kept
    candidate regions (at the listing threshold; no outline growth) of `studies` (each:
    "at" the candidates at 0.5, "big" its lesion ids >= 6 mm, "truth_voxels" per label
    index), `keep` a bool array per study."""
    fps, dices, found, big = [], [], 0, 0
    for st, k in zip(studies, keep, strict=True):
        c = st["at"]
        fps.append(int((k & ~c["truth"]).sum()))
        ids = set(c["lesion_id"][k & c["truth"]].tolist())
        found += len(ids & set(st["big"]))
        big += len(st["big"])
        per_label = []
        for li, n_truth in st["truth_voxels"].items():
            mine = k & (c["label"] == int(li))
            if n_truth:
                per_label.append(2 * c["inter"][mine].sum() / (c["size"][mine].sum() + n_truth))
        if per_label:
            dices.append(float(np.mean(per_label)))
    return {
        "false_positives_per_study": round(float(np.mean(fps)), 3) if fps else None,
        "sensitivity_ge_6mm": round(found / big, 4) if big else None,
        "dice_mean_per_study": round(float(np.mean(dices)), 4) if dices else None,
    }


def cross_validated_refit(
    studies: list[dict],
    n_labels: int,
    seed: int,
    parent: tuple[FPClassifier, float] | None,
    spec: dict | None = None,
) -> tuple[FPClassifier, float, dict]:
    """Refit the classifier on a fine-tuned network's own candidates from studies it never
    trained on (each study: "fold", "train" = candidate sets at spec's train_thresholds,
    "at", "big", "truth_voxels"; see kept_numbers). The threshold is chosen on
    out-of-fold scores: for each fold, trees fitted on the other folds score its
    candidates; the threshold is the highest keeping min_sensitivity of the lesions >= 6 mm
    the network found at all. Then the classifier is fitted on every study. Returns it,
    its threshold and the out-of-fold numbers of no classifier, the parent's (its own
    threshold) and the refit, so the engine can keep the better."""
    spec = spec or FP
    folds = sorted({st["fold"] for st in studies})
    oof = [np.zeros(len(st["at"]["truth"])) for st in studies]
    for f in folds:
        train = [c for st in studies if st["fold"] != f for c in st["train"]]
        if not train or not any(len(c["truth"]) for c in train):
            continue
        clf = train_classifier(_joined(train), n_labels, seed, spec)
        for i, st in enumerate(studies):
            if st["fold"] == f and len(st["at"]["truth"]):
                oof[i] = clf.scores(st["at"]["features"], st["at"]["label"])
    pooled = _joined([st["at"] for st in studies])
    big = pooled["diameter"] >= MIN_DIAMETER_MM
    found_big = len(set(pooled["lesion_id"][big & pooled["truth"]].tolist()))
    cut = choose_threshold(np.concatenate(oof), pooled, found_big, spec["min_sensitivity"])
    info = {
        "threshold": cut,
        "candidates": len(pooled["truth"]),
        "on_lesions": int(pooled["truth"].sum()),
        "folds": len(folds),
        "none": kept_numbers(studies, [np.ones(len(o), bool) for o in oof]),
        "refit": kept_numbers(studies, [o >= cut for o in oof]),
    }
    if parent is not None:
        clf, t = parent
        info["parent"] = kept_numbers(
            studies,
            [
                clf.scores(st["at"]["features"], st["at"]["label"]) >= t
                if len(st["at"]["truth"])
                else np.zeros(0, bool)
                for st in studies
            ],
        )
        info["parent_threshold"] = t
    final = train_classifier(
        _joined([c for st in studies for c in st["train"]]), n_labels, seed, spec
    )
    return final, cut, info


def refit_is_better(info: dict) -> bool:
    """Keep the refit classifier when, out of fold, it finds at least the lesions >= 6 mm the
    parent's does with no more false positives a study, and is better in one of them (with
    no parent classifier: when it keeps the found lesions' sensitivity within 0.02 of none
    and removes false positives)."""
    new, old = info["refit"], info.get("parent") or info["none"]
    s_new, s_old = new["sensitivity_ge_6mm"] or 0.0, old["sensitivity_ge_6mm"] or 0.0
    f_new, f_old = new["false_positives_per_study"] or 0.0, old["false_positives_per_study"] or 0.0
    if "parent" not in info:
        return s_new >= s_old - 0.02 and f_new < f_old
    return s_new >= s_old and f_new <= f_old and (s_new > s_old or f_new < f_old)

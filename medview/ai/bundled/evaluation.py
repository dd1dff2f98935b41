"""How well the bundled models do on demo studies they never saw, scored the way a reader
would: per lesion, not per voxel.

Segmentation: the study runs through the app's own path (ai.inference.segment on the
study's Volume, then ai.findings.findings_from with the card's post-processing: size rules
and the false-positive classifier), and the findings' voxels are scored. A voxel is a label
where that label is the most probable and its probability at least the threshold (0.5).
(segment_study and MIN_VOXELS are the simpler rules lesion-seg 1.0 was measured with and
training still mines mistakes with.) A ground-truth lesion is
detected when a kept component of the same label overlaps it; its Dice is against the union
of those components (0 when missed). A kept component that overlaps no lesion of its label
is a false positive. Sensitivity and Dice are reported for lesions of 6 mm and more (the
generator's volume-equivalent diameter) and for all lesions.

Classifier: per-slice probability of "any lesion voxel", AUC and accuracy at 0.5; Grad-CAM
peak distance to the nearest lesion centre on slices through a lesion's centre."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.bundled.data import CachedStudy, cache_study, normalise, slice_targets
from medview.ai.findings.scoring import MIN_DIAMETER_MM, MIN_VOXELS, Matching, auc, instance_near

CAM_RADIUS_MM = 15.0
SHORT_SCANS, SHORT_SLICES = 5, 120


def segment_study(
    model: Any, ct: np.ndarray, low: float, high: float, context: int = 3, batch: int = 4
) -> np.ndarray:
    """Label map (uint8) of a whole volume, slice by slice, each with its neighbours."""
    import torch

    param = next(model.parameters())
    n, half = ct.shape[0], context // 2
    out = np.zeros(ct.shape, np.uint8)
    model.eval()
    with torch.inference_mode():
        for k0 in range(0, n, batch):
            ks = range(k0, min(n, k0 + batch))
            idx = np.clip(np.arange(k0 - half, ks[-1] + half + 1), 0, n - 1)
            x = normalise(ct[idx], low, high)
            stack = np.stack([x[i : i + context] for i in range(len(ks))])
            probs = torch.softmax(model(torch.from_numpy(stack).to(param.device)), 1)
            probs = probs.cpu().numpy()
            for lab in range(1, probs.shape[1]):
                out[k0 : k0 + len(ks)][probs[:, lab] >= 0.5] = lab
    return out


def segment_cached(model: Any, st: CachedStudy, store: Path | None = None) -> Any:
    """A LoadedModel's SegmentationResult on a cached study through ai.inference.segment,
    the app's and `medview infer`'s own path; with `store`, the one-byte codes are kept
    in store/<seed>.npy (per model: name the folder after its weights) and reused."""
    from medview.ai.findings.postprocess import coarse_index
    from medview.ai.runtime.inference import SegmentationResult, segment

    path = None if store is None else Path(store) / f"{st.seed}.npy"
    if path is not None and path.exists():
        codes = np.load(path)
        return SegmentationResult(
            codes, coarse_index(codes, len(model.card.labels)), None, model.card, "cpu", False, 1
        )
    result = segment(st.volume(), model, reuse=False)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, result.codes)
    return result


def score_study(pred: np.ndarray, st: CachedStudy, min_voxels: int = MIN_VOXELS) -> dict:
    """Per-lesion detection and Dice, and false positives, for one study."""

    gt = np.asarray(st.labels)
    sp = np.asarray(st.spacing_mm)
    origin = np.asarray(st.meta["origin_lps_mm"])
    lesions, fps = [], {1: 0, 2: 0}
    for value in (1, 2):
        m = Matching(pred == value, gt == value, min_voxels)
        fps[value] = m.false_positives
        for les in (x for x in st.lesions if x["label_value"] == value and x["n_voxels"]):
            c = np.asarray(les["centre_lps_mm"])
            idx = np.round(
                [(c[2] - origin[2]) / sp[0], (c[1] - origin[1]) / sp[1], (c[0] - origin[0]) / sp[2]]
            ).astype(int)
            detected, dice = m.lesion(instance_near(m.g_inst, idx - m.offset))
            lesions.append(
                {
                    "id": les["id"],
                    "label": value,
                    "kind": les["kind"],
                    "diameter_mm": les["diameter_mm"],
                    "detected": detected,
                    "dice": round(dice, 4),
                }
            )
    return {"seed": st.seed, "lesions": lesions, "false_positives": fps}


def summarise_segmentation(per_study: list[dict]) -> dict:
    """Sensitivity (>= 6 mm and all), false positives per study, mean lesion Dice."""
    les = [x for s in per_study for x in s["lesions"]]
    big = [x for x in les if x["diameter_mm"] >= MIN_DIAMETER_MM]

    def sens(items: list[dict]) -> float | None:
        return round(sum(x["detected"] for x in items) / len(items), 4) if items else None

    def dice(items: list[dict]) -> float | None:
        return round(float(np.mean([x["dice"] for x in items])), 4) if items else None

    n = len(per_study)
    fp = [s["false_positives"] for s in per_study]
    out = {
        "studies": n,
        "lesions": len(les),
        "lesions_ge_6mm": len(big),
        "sensitivity_ge_6mm": sens(big),
        "sensitivity_all": sens(les),
        "false_positives_per_study": round(sum(f[1] + f[2] for f in fp) / max(n, 1), 3),
        "mean_dice_ge_6mm": dice(big),
        "mean_dice_detected_ge_6mm": dice([x for x in big if x["detected"]]),
    }
    for value, name in ((1, "lung_nodule"), (2, "liver_lesion")):
        sub = [x for x in big if x["label"] == value]
        out[f"{name}_sensitivity_ge_6mm"] = sens(sub)
        out[f"{name}_mean_dice_ge_6mm"] = dice(sub)
        out[f"{name}_false_positives_per_study"] = round(sum(f[value] for f in fp) / max(n, 1), 3)
    out["missed_ge_6mm"] = [
        {"seed": s["seed"], **x}
        for s in per_study
        for x in s["lesions"]
        if x["diameter_mm"] >= MIN_DIAMETER_MM and not x["detected"]
    ]
    return out


def findings_mask(
    model: Any, st: CachedStudy, threshold: float = 0.5, store: Path | None = None
) -> tuple[np.ndarray, int]:
    """The label map of the findings the app and `medview infer` list for this study (the
    card's post-processing, false-positive stage included) and how many there are."""
    from medview.ai.findings.postprocess import findings_from

    result = segment_cached(model, st, store)
    mask = np.zeros(result.codes.shape, np.uint8)
    found = findings_from(
        result.codes,
        st.volume(),
        model.card,
        threshold,
        coarse_max=result.coarse_max,
        mask_out=mask,
    )
    return mask, len(found)


def evaluate_segmentation(
    model: Any, cache: Path, seeds: list[int], threshold: float = 0.5, store: Path | None = None
) -> dict:
    """Per-lesion scores of a LoadedModel's findings (findings_mask) on `seeds`; the time
    per study covers inference and findings (meaningful only without `store`)."""
    per_study, seconds = [], 0.0
    for seed in seeds:
        st = cache_study(cache, seed)
        t = time.perf_counter()
        mask, _ = findings_mask(model, st, threshold, store)
        seconds += time.perf_counter() - t
        per_study.append(score_study(mask, st, min_voxels=1))
    out = summarise_segmentation(per_study)
    post = model.card.postprocess
    out.update(
        held_out_seeds=list(seeds),
        threshold=threshold,
        min_component_voxels=post.min_component_voxels
        if post
        else model.card.validation.get("min_component_voxels", MIN_VOXELS),
        seconds_per_study=round(seconds / max(len(seeds), 1), 1),
    )
    return out


def classify_study(model: Any, small: np.ndarray, window: int = 16) -> np.ndarray:
    """Per-slice lesion probability: windows of `window` slices overlapping by half, each
    slice's probability the mean over the windows that hold it."""
    import torch

    param = next(model.parameters())
    n = small.shape[0]
    total, count = np.zeros(n), np.zeros(n)
    starts = list(range(0, max(n - window, 0) + 1, max(window // 2, 1)))
    if starts[-1] + window < n:
        starts.append(n - window)
    model.eval()
    with torch.inference_mode():
        for s in starts:
            x = torch.from_numpy(np.asarray(small[s : s + window], np.float32)[:, None])
            p = torch.softmax(model(x.to(param.device)), 1)[:, 1].cpu().numpy()
            total[s : s + len(p)] += p
            count[s : s + len(p)] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


def evaluate_classifier(model: Any, cache: Path, seeds: list[int], spec: dict) -> dict:
    scores, truths, whole, hits = [], [], [], []
    for seed in seeds:
        st = cache_study(cache, seed)
        small = st.small(spec["low"], spec["high"], model.input_size)
        truth = slice_targets(st.labels)
        scores.append(classify_study(model, small))
        truths.append(truth)
        whole.append(classify_study(model, small, window=len(small)))
        hits.extend(gradcam_hits(model, st, spec))
    s, t, w = np.concatenate(scores), np.concatenate(truths), np.concatenate(whole)
    nod = [h for h in hits if h[0] == 1]
    return {
        "held_out_seeds": list(seeds),
        "slices": len(t),
        "lesion_slices": int(t.sum()),
        "auc": round(auc(s, t), 4),
        "accuracy": round(float(((s >= 0.5) == t).mean()), 4),
        "sensitivity": round(float((s[t] >= 0.5).mean()), 4),
        "specificity": round(float((s[~t] < 0.5).mean()), 4),
        "auc_whole_study_one_sequence": round(auc(w, t), 4),
        "accuracy_whole_study_one_sequence": round(float(((w >= 0.5) == t).mean()), 4),
        "window_slices": 16,
        "gradcam_nodule_peak_within_15mm": round(float(np.mean([h[1] for h in nod])), 4)
        if nod
        else None,
        "gradcam_nodules": len(nod),
        "gradcam_liver_peak_within_15mm": round(
            float(np.mean([h[1] for h in hits if h[0] == 2])), 4
        )
        if any(h[0] == 2 for h in hits)
        else None,
        **_short_scans(model, cache, seeds[:SHORT_SCANS], spec),
    }


def _short_scans(model: Any, cache: Path, seeds: list[int], spec: dict) -> dict:
    """The same held-out seeds as short scans (120 slices centred near the diaphragm, the
    lesions crowded into them): a layout training never showed."""
    scores, truths = [], []
    for seed in seeds:
        st = cache_study(cache, seed, slices=SHORT_SLICES)
        scores.append(classify_study(model, st.small(spec["low"], spec["high"], model.input_size)))
        truths.append(slice_targets(st.labels))
    per_study = [round(auc(s, t), 3) for s, t in zip(scores, truths, strict=True)]
    s, t = np.concatenate(scores), np.concatenate(truths)
    return {
        f"auc_short_scans_{SHORT_SLICES}_slices": round(auc(s, t), 4),
        f"auc_short_scans_{SHORT_SLICES}_slices_per_study": per_study,
    }


def gradcam_hits(model: Any, st: CachedStudy, spec: dict) -> list[tuple[int, bool]]:
    """For each lesion of 6 mm and more: (its label, whether the Grad-CAM peak of the slice
    through its centre, in a 16-slice window, lies within 15 mm of a lesion centre on that
    slice)."""
    from medview.ai.runtime.gradcam import gradcam, peak_index

    sp = np.asarray(st.spacing_mm)
    origin = np.asarray(st.meta["origin_lps_mm"])
    n = st.ct.shape[0]
    centres = []
    for les in st.lesions:
        c = np.asarray(les["centre_lps_mm"])
        centres.append(
            (
                les,
                (c[2] - origin[2]) / sp[0],
                (c[1] - origin[1]) / sp[1],
                (c[0] - origin[0]) / sp[2],
            )
        )
    out = []
    for les, k, _r, _c in centres:
        if les["diameter_mm"] < MIN_DIAMETER_MM or not les["n_voxels"]:
            continue
        k = int(np.rint(k))
        s = int(np.clip(k - 8, 0, max(n - 16, 0)))
        x = normalise(st.ct[s : s + 16], spec["low"], spec["high"])
        heat = gradcam(model, x).heatmaps[k - s]
        pr, pc = peak_index(heat)
        on_slice = [
            (r2, c2) for le2, k2, r2, c2 in centres if abs(k2 - k) * sp[0] <= le2["diameter_mm"] / 2
        ]
        dist = min(float(np.hypot((pr - r2) * sp[1], (pc - c2) * sp[2])) for r2, c2 in on_slice)
        out.append((les["label_value"], dist <= CAM_RADIUS_MM))
    return out


def seconds_per_slice(
    model: Any, channels: int, size: int = 512, slices: int = 24, threads: int = 2
) -> float:
    """Median forward time of one 512² slice on the CPU with `threads` threads (batch 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    x = torch.rand(1, channels, size, size)
    times = []
    try:
        model.eval()
        with torch.inference_mode():
            model(x)
            for _ in range(slices):
                t = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(before)
    return float(np.median(times))

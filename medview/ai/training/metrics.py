"""How a fine-tune is judged: the network's label map on validation studies, scored per
label (Dice) and per lesion (sensitivity, false positives per study), the same numbers for
the parent and the new version on the same studies.

Prediction goes through preprocess.Plan, the path inference takes (intensity window, 2.5D
stacks, spacing, padding), so the numbers describe what a reader will see; a voxel is a label
where that label's probability is at least 0.5, as in the bundled models' evaluation. Lesions are
the label map's connected components (26-connected): a user's labels carry no lesion list, so a
component is a lesion, its size the volume-equivalent diameter. The rules are findings.scoring's
(components under MIN_VOXELS dropped, sensitivity and Dice for lesions of MIN_DIAMETER_MM
and more), so a fine-tuned card reads like the bundled one.

A card with a postprocess (lesion-seg 1.1 and its fine-tunes, which copy it) is measured on
what the reader is shown: the study runs through the app's own path (ai.inference.segment,
then ai.findings.findings_from with the card's size rules and false-positive classifier),
as bundled_eval measures 1.1, and the listed findings' regions are scored (none dropped
for size: the postprocess already decided). A card without one keeps the plain rules above.

Each epoch's quick check (`quick_dice`) predicts only the slices that hold labels plus a few
that do not, pooled over the validation studies; the card's numbers come from whole
volumes (`evaluate`)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.findings.scoring import MIN_DIAMETER_MM, MIN_VOXELS, Matching, sample_mistakes
from medview.ai.models.cards import ModelCard
from medview.ai.runtime.preprocess import Plan
from medview.ai.training.data import PreparedStudy
from medview.core.volume import Volume


def _plan(study: PreparedStudy, card: ModelCard) -> Plan:
    affine = np.diag([*study.spacing_mm, 1.0])
    return Plan.make(Volume(study.image, affine), card)


Check = Callable[[], None] | None  # called between batches; raises to stop (a stop asked)


def predict(
    module: Any,
    card: ModelCard,
    study: PreparedStudy,
    slices: np.ndarray | None,
    device: Any,
    batch: int = 4,
    check: Check = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """uint8 label map of `slices` (all when None) of a study, (len, H, W): the most
    probable label where its probability is at least `threshold` (as the app's label map,
    findings.postprocess.label_map_at, reads its codes). An imported 3D model's runs on the
    whole volume through the app's 3D runner (volume_predict)."""
    import torch

    from medview.ai.training.grid_studies import is_volume

    if is_volume(card):
        from medview.ai.training.volume_predict import predict_volume

        whole = predict_volume(module, card, study, device, check, threshold)
        return whole if slices is None else whole[np.asarray(slices)]

    from medview.ai.runtime.device import autocast_context
    from medview.ai.runtime.fast_network import inference_copy, network_input

    plan = _plan(study, card)
    ks = np.arange(study.image.shape[0]) if slices is None else np.asarray(slices)
    out = np.zeros((len(ks), *study.image.shape[1:]), np.uint8)
    slab = plan.new_slab(1)
    net = inference_copy(module, device)  # as the app runs it (runtime.fast_network)
    with torch.inference_mode(), autocast_context(device):
        for i in range(0, len(ks), batch):
            if check is not None:
                check()
            part = ks[i : i + batch]
            x = np.concatenate([plan.inputs(study.image, int(k), 1, slab) for k in part])
            logits = net(network_input(x, device)).float()
            fg = plan.outputs(torch.softmax(logits, 1).contiguous().cpu().numpy())[:, 1:]
            best = fg.argmax(1)
            top = np.take_along_axis(fg, best[:, None], 1)[:, 0]
            out[i : i + len(part)] = np.where(top >= threshold, best + 1, 0)
    return out


class _Network:
    """A training module as ai.inference.segment drives a LoadedModel (card, device,
    predict, to), so a fine-tune is measured through the app's own path."""

    def __init__(self, module: Any, card: ModelCard, device: Any, check: Check = None) -> None:
        import torch

        from medview.ai.runtime.fast_network import inference_copy

        self.module, self.card, self.device = module, card, torch.device(device)
        self.fast = inference_copy(module, self.device)  # of the weights as they are now
        self.check = check

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, labels + 1, H, W) for a float32 (N, C, H, W) batch."""
        import torch

        from medview.ai.runtime.device import autocast_context
        from medview.ai.runtime.fast_network import network_input

        if self.check is not None:
            self.check()
        with torch.inference_mode(), autocast_context(self.device):
            logits = self.fast(network_input(x, self.device))
            # NCHW for the numpy post-processing (channels_last comes out NHWC)
            return torch.softmax(logits.float(), 1).contiguous().cpu().numpy()

    def to(self, device: Any) -> _Network:
        import torch

        from medview.ai.runtime.fast_network import inference_copy

        self.device = torch.device(device)
        self.module.to(self.device)
        self.fast = inference_copy(self.module, self.device)
        return self


def listed_map(module: Any, card: ModelCard, study: PreparedStudy, device: Any) -> np.ndarray:
    """uint8 label map of the findings the app lists for a study at threshold 0.5: segment,
    then findings_from with the card's postprocess
    (the path the bundled models are evaluated on)."""
    return listed_maps(module, [card], study, device)[0]


def listed_maps(
    module: Any, cards: list[ModelCard], study: PreparedStudy, device: Any, check: Check = None
) -> list[np.ndarray]:
    """listed_map for several cards of one network (e.g. with and without its
    false-positive classifier), segmenting the study once."""
    volume, result = _segmented(module, cards[0], study, device, check)
    return [_listed(result, volume, card) for card in cards]


def listed_segmentation(
    module: Any, card: ModelCard, study: PreparedStudy, device: Any, check: Check = None
) -> tuple[Volume, Any, np.ndarray]:
    """The study as a Volume, its segmentation (runtime.inference.SegmentationResult) and
    the label map of the findings listed at 0.5: what else a caller needs of one pass."""
    volume, result = _segmented(module, card, study, device, check)
    return volume, result, _listed(result, volume, card)


def _segmented(
    module: Any, card: ModelCard, study: PreparedStudy, device: Any, check: Check
) -> tuple[Volume, Any]:
    from medview.ai.runtime.inference import segment

    volume = Volume(study.image, np.diag([*study.spacing_mm, 1.0]))
    result = segment(volume, _Network(module, card, device, check), reuse=False)
    return volume, result


def _listed(result: Any, volume: Volume, card: ModelCard) -> np.ndarray:
    from medview.ai.findings.postprocess import findings_from

    mask = np.zeros(volume.shape, np.uint8)
    findings_from(result.codes, volume, card, 0.5, coarse_max=result.coarse_max, mask_out=mask)
    return mask


def quick_dice(
    module: Any,
    card: ModelCard,
    studies: list[PreparedStudy],
    slices: list[np.ndarray],
    device: Any,
) -> dict[str, float | None]:
    """Dice per label over all the studies' chosen slices together (overlap counts summed,
    as the card's dice_<label>), None for a label none of them holds; 'mean' over labels.
    Pooled rather than a mean of per-study Dice (MONAI DiceMetric's way): with a lesion or
    two per study that mean jumped by 0.15 between epochs and made early stopping pick
    noise; DiceMetric's aggregate also waits for every DDP process, and only rank 0
    validates."""
    pooled = PooledDice(card)
    for st, ks in zip(studies, slices, strict=True):
        pooled.add(predict(module, card, st, ks, device), np.asarray(st.labels[ks]))
    return pooled.result()


class PooledDice:
    """Overlap counts per label summed over parts (slices, 3D windows), then Dice per label
    and 'mean' over the labels any part holds (quick_dice's numbers)."""

    def __init__(self, card: ModelCard) -> None:
        self.card, self.values = card, [lab.value for lab in card.labels]
        self.inter, self.total, self.truth = (np.zeros(len(self.values), np.int64) for _ in "itg")

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        for i, v in enumerate(self.values):
            p, g = pred == v, gt == v
            n_g = int(np.count_nonzero(g))
            self.inter[i] += int(np.count_nonzero(p & g))
            self.total[i] += int(np.count_nonzero(p)) + n_g
            self.truth[i] += n_g

    def result(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for i, lab in enumerate(self.card.labels):
            dice = 2 * float(self.inter[i]) / float(self.total[i]) if self.truth[i] else None
            out[lab.name] = None if dice is None else round(dice, 4)
        given = [v for v in out.values() if v is not None]
        out["mean"] = round(float(np.mean(given)), 4) if given else None
        return out


def score(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing_mm: tuple[float, float, float],
    values: list[int],
    min_voxels: int = MIN_VOXELS,
) -> dict:
    """Per label: voxel overlap counts, per-lesion detection and Dice, false positives;
    predicted components under `min_voxels` are not counted."""

    voxel_ml = float(np.prod(spacing_mm))
    out: dict = {"overlap": {}, "lesions": [], "false_positives": {}}
    for v in values:
        p, g = pred == v, gt == v
        out["overlap"][v] = (
            int(np.count_nonzero(p & g)),
            int(np.count_nonzero(p)),
            int(np.count_nonzero(g)),
        )
        m = Matching(p, g, min_voxels)
        out["false_positives"][v] = m.false_positives
        for gid in range(1, m.n_lesions + 1):
            detected, dice = m.lesion(gid)
            diameter = (6 * m.g_size[gid] * voxel_ml / math.pi) ** (1 / 3)
            out["lesions"].append(
                {
                    "label": v,
                    "diameter_mm": round(diameter, 2),
                    "detected": detected,
                    "dice": round(dice, 4),
                }
            )
    return out


def summarise(scores: list[dict], card: ModelCard) -> dict:
    """The card's validation numbers from per-study scores."""
    n = max(len(scores), 1)
    lesions = [x for s in scores for x in s["lesions"]]
    big = [x for x in lesions if x["diameter_mm"] >= MIN_DIAMETER_MM]

    def rate(items: list[dict], key: str) -> float | None:
        return round(float(np.mean([x[key] for x in items])), 4) if items else None

    per_label, dices = {}, []
    for lab in card.labels:
        inter, pred, truth = (sum(s["overlap"][lab.value][i] for s in scores) for i in range(3))
        # a label no validation study holds has no Dice (MONAI's ignore_empty)
        dice = round(2 * inter / (pred + truth), 4) if truth else None
        per_label[f"dice_{lab.name.replace(' ', '_')}"] = dice
        if dice is not None:
            dices.append(dice)
    # headline numbers first: `medview models` shows the first few
    out: dict[str, Any] = {
        "dice_mean": round(float(np.mean(dices)), 4) if dices else None,
        "sensitivity_ge_6mm": rate(big, "detected"),
        "false_positives_per_study": round(
            sum(sum(s["false_positives"].values()) for s in scores) / n, 3
        ),
        "mean_dice_ge_6mm": rate(big, "dice"),
        **per_label,
        "sensitivity_all": rate(lesions, "detected"),
        "studies": len(scores),
        "lesions": len(lesions),
        "lesions_ge_6mm": len(big),
    }
    for lab in card.labels:
        name = lab.name.replace(" ", "_")
        out[f"{name}_sensitivity_ge_6mm"] = rate(
            [x for x in big if x["label"] == lab.value], "detected"
        )
        out[f"{name}_false_positives_per_study"] = round(
            sum(s["false_positives"][lab.value] for s in scores) / n, 3
        )
    out["min_component_voxels"], out["threshold"] = MIN_VOXELS, 0.5
    return out


def mistakes(
    module: Any,
    card: ModelCard,
    study: PreparedStudy,
    device: Any,
    per_component: int = 50,
    check: Check = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """(N, 3) voxels a model wrongly labels in a study, at most `per_component` from each
    connected mistake (so one large mistake does not crowd out the many small ones), as
    the bundled recipe picks them (findings.scoring.sample_mistakes);
    seeded, so the same every run. `threshold`: the probability of a wrong label that makes
    a mistake (below 0.5, the regions it is unsure of count too)."""
    pred = predict(module, card, study, None, device, check=check, threshold=threshold)
    return sample_mistakes(pred, study.labels, np.random.default_rng(0), per_component)


def without_fp_classifier(card: ModelCard) -> ModelCard | None:
    """The card with its size rules but no false-positive classifier; None when it has none."""
    post = card.postprocess
    if post is None or not post.fp_classifier:
        return None
    return dataclasses.replace(
        card, postprocess=dataclasses.replace(post, fp_classifier="", fp_classifier_sha256="")
    )


# what the card keeps of the numbers measured without the false-positive classifier
_SHORT = ("dice_mean", "sensitivity_ge_6mm", "false_positives_per_study", "mean_dice_ge_6mm")


def study_scores(
    module: Any,
    card: ModelCard,
    studies: list[PreparedStudy],
    device: Any,
    progress: Any = None,
    check: Check = None,
) -> tuple[list[dict], list[dict]]:
    """Per-study scores (`score`) of `module` on `studies`: of the findings the card's
    postprocess lists when it has one, else of the plain label map; and, with a
    false-positive classifier, of the same segmentations without it (else [])."""
    values = [lab.value for lab in card.labels]
    post = card.postprocess
    bare = without_fp_classifier(card)
    scores, scores_bare = [], []
    for i, st in enumerate(studies):
        gt = np.asarray(st.labels)
        if post is None:
            pred = predict(module, card, st, None, device, check=check)
            scores.append(score(pred, gt, st.spacing_mm, values))
        else:
            preds = listed_maps(module, [card] if bare is None else [card, bare], st, device, check)
            scores.append(score(preds[0], gt, st.spacing_mm, values, 1))
            if bare is not None:
                scores_bare.append(score(preds[1], gt, st.spacing_mm, values, 1))
        if progress is not None:
            progress(i + 1, len(studies))
    return scores, scores_bare


def summarised(scores: list[dict], scores_bare: list[dict], card: ModelCard) -> dict:
    """The card's numbers from study_scores' two lists."""
    out = summarise(scores, card)
    post = card.postprocess
    if post is not None:
        out.update(
            min_component_voxels=post.min_component_voxels,
            min_component_slices=post.min_component_slices,
            fp_classifier=post.fp_classifier or None,
            fp_threshold=post.fp_threshold,
        )
    if scores_bare:
        full = summarise(scores_bare, card)
        out["without_fp_classifier"] = {
            k: v for k, v in full.items() if k in _SHORT or k.startswith("dice_")
        }
    return out


def evaluate(
    module: Any,
    card: ModelCard,
    studies: list[PreparedStudy],
    device: Any,
    progress: Any = None,
    check: Check = None,
) -> dict:
    """Whole-volume metrics of `module` on `studies` (see the module docstring): of the
    findings the card's postprocess lists when it has one, else of the plain label map.
    With a false-positive classifier the same segmentations are also scored without it
    ('without_fp_classifier'): a fine-tuned network's outputs are not those the classifier
    learnt from, and these numbers say whether it still helps."""
    return summarised(*study_scores(module, card, studies, device, progress, check), card)


METRICS_FORMAT = "2"  # bump when evaluate's numbers change meaning: older kept ones are unused


def evaluate_kept(
    module: Any,
    card: ModelCard,
    studies: list[PreparedStudy],
    device: Any,
    progress: Any = None,
    check: Check = None,
) -> dict:
    """evaluate(), kept beside the studies' cache for a model whose weights (SHA-256) and
    postprocess and whose studies (their cache's record of the label file) are unchanged:
    a parent's numbers on a validation split are the same in every fine-tune of it, and
    whole-volume evaluation is a fifth of a warm run on the CPU."""
    import json

    from medview.ai.training.data import META_FILE, short_hash
    from medview.io.workspace import atomic_write_text

    metas = [Path(st.folder) / META_FILE for st in studies]
    if not card.weights_sha256 or not studies or not all(m.exists() for m in metas):
        return evaluate(module, card, studies, device, progress, check)
    post = json.dumps(
        dataclasses.asdict(card.postprocess) if card.postprocess else None, sort_keys=True
    )
    key = short_hash(
        METRICS_FORMAT,
        card.weights_sha256,
        post,
        *(st.key + m.read_text(encoding="utf-8") for st, m in zip(studies, metas, strict=True)),
    )
    path = Path(studies[0].folder).parent / f"metrics-{key}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass  # not kept yet, or damaged: measure again
    out = evaluate(module, card, studies, device, progress, check)
    atomic_write_text(path, json.dumps(out))
    return out


def kept_scores_path(card: ModelCard, st: PreparedStudy) -> Path | None:
    """Where scores_kept keeps a study's scores for this card's weights and postprocess;
    None when they cannot be kept (no weights hash, or a study without its cache file)."""
    import json

    from medview.ai.training.data import META_FILE, short_hash

    meta = Path(st.folder) / META_FILE
    if not card.weights_sha256 or not meta.exists():
        return None
    post = json.dumps(
        dataclasses.asdict(card.postprocess) if card.postprocess else None, sort_keys=True
    )
    key = short_hash(
        METRICS_FORMAT, card.weights_sha256, post, st.key + meta.read_text(encoding="utf-8")
    )
    return Path(st.folder) / f"scores-{key}.json"


def scores_kept(
    module: Any,
    card: ModelCard,
    studies: list[PreparedStudy],
    device: Any,
    progress: Any = None,
    check: Check = None,
) -> list[dict]:
    """study_scores' first list, each study's kept beside its cache for unchanged weights,
    postprocess and labels (evaluate_kept's rule): cross-validation scores the parent on
    every study in every fine-tune of it. Label values come back as str keys from JSON
    (crossval reads either)."""
    import json

    from medview.io.workspace import atomic_write_text

    out = []
    for i, st in enumerate(studies):
        path = kept_scores_path(card, st)
        if path is not None:
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads(path.read_text(encoding="utf-8")))
                if progress is not None:
                    progress(i + 1, len(studies))
                continue
        found = study_scores(module, card, [st], device, None, check)[0][0]
        if path is not None:
            atomic_write_text(path, json.dumps(found))
        out.append(found)
        if progress is not None:
            progress(i + 1, len(studies))
    return out


def held_out(
    module: Any,
    card: ModelCard,
    studies: list[PreparedStudy],
    device: Any,
    first: int,
    progress: Any = None,
    check: Check = None,
) -> tuple[list[dict], list[dict]]:
    """A cross-validation fold's version on its held-out studies, each segmented once: the
    per-study scores of what the app lists (study_scores' first list) and, when the card
    has a postprocess, the network's candidate regions with what the labels say of them
    (findings.fp_fit.label_map_candidates at the listing threshold and at the refit's
    training thresholds), for refitting the false-positive stage on this network's own
    candidates; study ids count from `first`. Candidates as JSON-ready lists."""
    from medview.ai.findings.fp_fit import FP, big_lesions, label_map_candidates

    if card.postprocess is None:
        return study_scores(module, card, studies, device, progress, check)[0], []
    values = [lab.value for lab in card.labels]
    scores, records = [], []
    for i, st in enumerate(studies):
        gt = np.asarray(st.labels)
        volume, result, mask = listed_segmentation(module, card, st, device, check)
        scored = score(mask, gt, st.spacing_mm, values, 1)
        scores.append(scored)

        cut = {
            t: {
                k: v.tolist()
                for k, v in label_map_candidates(
                    result.codes, volume, gt, card, t, first + i
                ).items()
            }
            for t in {0.5, *FP["train_thresholds"]}
        }
        big = big_lesions(gt, card, st.spacing_mm, first + i)
        records.append(
            {
                "at": cut[0.5],
                "train": [cut[t] for t in FP["train_thresholds"]],
                "big": big,
                "truth_voxels": {
                    str(li): int(np.count_nonzero(gt == lab.value))
                    for li, lab in enumerate(card.labels)
                },
            }
        )
        if progress is not None:
            progress(i + 1, len(studies))
    return scores, records

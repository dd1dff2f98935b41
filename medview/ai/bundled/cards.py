"""Write a bundled model's folder: weights as safetensors and a card that says what the
model is, how it was trained and what it measured on held-out demo studies.

The card is validated with medview.ai.models.cards before it is written, and its sha256 is that of
the weights file beside it, so a card can never describe weights it does not sit with. The
numbers the recipe measures on its validation seeds go under validation.development: those
seeds were looked at while the models were designed (medview.ai.bundled.held_out puts numbers
from fresh seeds on top).
Label codes are SNOMED CT codes found in pydicom's code dictionary (codes.SCT): Nodule and
Lesion, the segment types DICOM SEG uses, with the anatomy in the label name.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from medview.ai.bundled.held_out import development_numbers
from medview.ai.models.card_numbers import DEVELOPMENT
from medview.ai.models.cards import DISCLAIMER
from medview.ai.training.versions import write_model

VERSION = "1.0"
# what stays on top of a recipe card's validation: the post-processing a 1.0 card's findings
# follow (ai.findings.postprocess reads min_component_voxels there)
CONDITIONS = ("threshold", "min_component_voxels")
SEG_LABELS = [
    {
        "value": 1,
        "name": "lung nodule",
        "colour": [255, 160, 0],
        "code": ["SCT", "27925004", "Nodule"],
    },
    {
        "value": 2,
        "name": "liver lesion",
        "colour": [0, 200, 255],
        "code": ["SCT", "52988006", "Lesion"],
    },
]
CLS_LABELS = [
    {
        "value": 1,
        "name": "slice with a lesion",
        "colour": [255, 80, 80],
        "code": ["SCT", "52988006", "Lesion"],
    }
]


def _spacing(cache: Path, seeds: list[int]) -> tuple[list[float], list[float]]:
    """Mean in-plane spacing of the training studies and its range."""
    from medview.ai.bundled.data import cache_study

    px = [cache_study(cache, s).spacing_mm[1] for s in seeds]
    mean = round(sum(px) / len(px), 4)
    return [mean, mean], [min(px), max(px)]


def _seed_text(seeds: list[int]) -> str:
    return (
        f"{seeds[0]}..{seeds[-1]}"
        if seeds == list(range(seeds[0], seeds[-1] + 1))
        else ",".join(map(str, seeds))
    )


def _mix_text(mix: tuple) -> str:
    names = ("lesion", "lung structure", "anywhere", "mined")
    return ", ".join(
        f"{round(100 * w / sum(mix))}% {n}" for w, n in zip(mix, names, strict=False) if w
    )


def _as_development(validation: dict) -> dict:
    """The recipe's numbers on its validation seeds, labelled as development numbers."""
    top = {k: v for k, v in validation.items() if k in CONDITIONS}
    return {**top, DEVELOPMENT: development_numbers(validation)}


def _common(
    name: str,
    task: str,
    labels: list,
    spec: dict,
    arch: str,
    args: dict,
    spacing: list,
    context: int,
    input_size: list | None,
    training: str,
    validation: dict,
    description: str,
) -> dict:
    return {
        "name": name,
        "version": spec.get("version", VERSION),
        "parent_version": spec.get("parent_version"),
        "task": task,
        "labels": labels,
        "modality": "CT",
        "intensity": {"low": spec["low"], "high": spec["high"]},
        "architecture": arch,
        "architecture_args": {**args, "outputs": "logits"},
        "weights_file": "weights.safetensors",
        "weights_format": "safetensors",
        "weights_sha256": "",
        "expected_spacing_mm": spacing,
        "context_slices": context,
        "input_size": input_size,
        "training_data": training,
        "validation": _as_development(validation),
        "created": date.today().isoformat(),
        "description": f"{description} {DISCLAIMER}.",
    }


def write_segmentation(
    out: Path,
    model: Any,
    spec: dict,
    cfg: Any,
    info: dict,
    metrics: dict,
    postprocess: dict | None = None,
    fp_info: dict | None = None,
) -> Path:
    """The segmentation model's folder; with `postprocess` (and the false-positive
    classifier file already in the folder) the card names its second stage."""
    spacing, span = _spacing(cfg.cache, cfg.train_seeds)
    studies = [
        f"{ph['name']}: {ph['steps']} steps, lr {ph['lr']}, studies "
        f"{_seed_text(cfg.train_seeds[: ph['studies']])}, patch centres "
        f"{_mix_text(ph['mix'])}"
        + (
            f" (the previous model's mistakes on seeds "
            f"{_seed_text(cfg.train_seeds[slice(*ph['mine'])])} join the mined pool, "
            f"{ph['mined_voxels']} voxels)"
            if "mine" in ph
            else ""
        )
        + (
            f" (mined voxels within {ph['mined_margin_px']} px of a lesion left out: "
            f"{ph['mined_voxels']} kept)"
            if "mined_margin_px" in ph
            else ""
        )
        + (
            f" (a lesion under 10 mm weighs {1 + ph['lesion_weights'][0]:g}, a "
            f"ground-glass one {ph['lesion_weights'][1]:g} more)"
            if "lesion_weights" in ph
            else ""
        )
        + (f" (its own seed {ph['seed']})" if "seed" in ph else "")
        + f", {ph['seconds']} s"
        for ph in info["phases"]
    ]
    training = (
        f"medview.demo generator, site A (non-contrast, 1.5 mm slices, 512 x 512, pixels "
        f"{span[0]}..{span[1]} mm), full 300-slice studies from seeds "
        f"{_seed_text(cfg.train_seeds)} ({info['studies']} studies, {info['lesions']} "
        f"lesions). Random 2.5D patches of {spec['patch']}², batch {spec['batch']}, flips and "
        f"intensity jitter, DiceCE loss, AdamW with warm-up + cosine per phase. Phases: "
        + "; ".join(studies)
        + f". A lesion patch centres on a voxel of a lesion, every "
        f"lesion equally likely; a lung-structure patch on a dense voxel in the lung; a "
        f"mined patch on a voxel a previous phase's model wrongly called lesion (at most 50 "
        f"per mistake). {info['seconds']} s in all on one CPU thread of a shared 2-core "
        f"machine; seed {cfg.seed}."
        + (_fp_text(fp_info, cfg) if fp_info else "")
        + " Reproduce with scripts/train_bundled_models.sh."
    )
    validation = metrics
    context = info.get("context", spec["context"])
    card = _common(
        spec["name"],
        "segmentation",
        SEG_LABELS,
        spec,
        "monai.UNet",
        {**spec["args"], "in_channels": context, "out_channels": 3},
        spacing,
        context,
        None,
        training,
        validation,
        f"2.5D U-Net ({context} neighbouring slices in, the centre slice's labels out) that "
        "outlines lung nodules and liver lesions on non-contrast chest-abdomen CT. Trained "
        "only on MedView's synthetic demo studies: a demonstration model, not validated on "
        "patients. Labels: lung nodule (SNOMED Nodule in Lung 39607008), liver lesion "
        "(SNOMED Lesion in Liver 10200004). Post-processing used for validation: probability "
        f">= {metrics.get('threshold', 0.5)}, 26-connected components of at least "
        f"{metrics.get('min_component_voxels')} voxels"
        + (
            f" spanning at least {postprocess['min_component_slices']} slice(s)"
            if postprocess
            else ""
        )
        + (
            f", each judged by a second-stage false-positive classifier "
            f"({postprocess['fp_classifier']}, boosted trees on region features; listed when "
            f"its score is at least {postprocess['fp_threshold']})"
            if postprocess and postprocess.get("fp_classifier")
            else ""
        )
        + (
            f"; each listed finding's outline then takes in its label's neighbouring voxels "
            f"of probability at least {postprocess['extent_threshold']} up to "
            f"{postprocess['extent_max_mm']} mm out (the network is surer of a lesion's core "
            f"than of its border)"
            if postprocess and postprocess.get("extent_threshold")
            else ""
        )
        + ".",
    )
    if postprocess:
        card["postprocess"] = postprocess
    return write_model(Path(out) / spec["name"] / card["version"], model, card)


def _fp_text(info: dict, cfg: Any) -> str:
    return (
        f" False-positive stage: gradient-boosted regression trees per label "
        f"({info['rounds']} rounds of depth {info['depth']}, learning rate {info['lr']}, "
        f"row subsample {info['subsample']}) on the features of "
        f"{info['train_candidates']} candidate regions ({info['train_on_lesions']} on "
        f"lesions; each study's regions cut at probabilities "
        f"{', '.join(map(str, info['train_thresholds']))}) of this network on seeds "
        f"{_seed_text(cfg.fp_seeds)}, which it never trained on; threshold "
        f"{info['fp_threshold']} chosen on development seeds "
        f"{_seed_text(cfg.dev_seeds)} as the highest keeping sensitivity for lesions of "
        f"6 mm and more at {info['min_sensitivity']} (there: false positives per study "
        f"{info['dev_fp_per_study_before']} -> {info['dev_fp_per_study_after']}, "
        f"sensitivity {info['dev_sensitivity_ge_6mm_before']} -> "
        f"{info['dev_sensitivity_ge_6mm_after']})."
        + (
            f" Outline extent: each listed finding grows into the neighbouring voxels of "
            f"its label of probability at least {info['extent_threshold']}, at most "
            f"{info['extent_max_mm']} mm out (hysteresis; ai.extent), chosen on the same "
            f"development seeds as the best mean lesion Dice of "
            f"{', '.join(info['dev_dice_by_extent'])} (there: "
            f"{', '.join(map(str, info['dev_dice_by_extent'].values()))}; 0 = the mask at "
            f"the threshold)."
            if "extent_threshold" in info
            else ""
        )
    )


def _classifier_phase_text(ph: dict, spec: dict) -> str:
    lo, hi = ph.get("seq", spec["seq"])
    block, cell = 512 // ph["size"], 512 // ph["grid"]
    return (
        f"{ph['name']}: slices reduced to {ph['size']}² ({block} x {block} block means), "
        f"batches of {ph.get('batch', spec['batch'])} runs of {lo}..{hi} slices, map "
        f"cells of {cell} x {cell} pixels of 512² (positives weighted "
        f"{ph['map_pos_weight']}), lr {ph['lr']}, {ph['steps']} steps, {ph['seconds']} s"
    )


def write_classifier(
    out: Path, model: Any, spec: dict, cfg: Any, info: dict, metrics: dict
) -> Path:
    spacing, _ = _spacing(cfg.cache, cfg.classifier_seeds)
    phases = "; ".join(_classifier_phase_text(ph, spec) for ph in info["phases"])
    training = (
        f"medview.demo generator, site A, full 300-slice studies from seeds "
        f"{_seed_text(cfg.classifier_seeds)} ({info['studies']} studies); every 512² slice "
        f"normalised then reduced by block means; runs of neighbouring slices (half placed to "
        f"include a lesion), flips, z reversal, shifts and intensity jitter; target: the "
        f"slice holds any lesion voxel; cross entropy (lesion class weighted 2) plus, weighted "
        f"{spec['map_weight']}, a lesion map from the encoder's last stage (a cell is "
        f"positive when it holds a lesion voxel; binary cross entropy). Phases, each from the "
        f"last one's weights: {phases}. AdamW, warm-up + cosine per phase, "
        f"{info['seconds']} s in all on one CPU thread of a shared 2-core machine; seed "
        f"{cfg.seed + 1} (the sampler's + 2 each phase). Reproduce with "
        f"scripts/train_bundled_models.sh."
    )
    size = spec["args"]["input_size"]
    card = _common(
        spec["name"],
        "classification",
        CLS_LABELS,
        spec,
        "medview.SliceClassifier",
        {**spec["args"], "in_channels": 1, "out_channels": 2},
        spacing,
        1,
        None,
        training,
        metrics,
        f"Says which slices hold a lung nodule or liver lesion: a small CNN encodes each slice "
        f"(reduced to {size}², seen through a full and a soft-tissue window, with the slices "
        f"2 above and below as extra channels) and a bidirectional GRU reads the stack, so "
        f"each slice's answer uses its neighbours. It takes slices of any size and reduces "
        f"them to {size}² itself (input_size in architecture_args). Give it runs of "
        f"neighbouring slices (validated with windows of 16 overlapping by half, and with the "
        f"whole study as one run); class 1 is 'lesion present'. Explanation: Grad-CAM on the "
        f"encoder's last stage (stride {2 ** len(spec['args']['features'])}), which also "
        f"feeds a lesion map whose soft maximum is part of the 'lesion' score; "
        f"gradcam_*_peak_within_15mm say how often its peak lies on the lesion. "
        "Limitations, measured: Grad-CAM's peak follows the lesion map, which still misses "
        "many nodules under about 12 mm and then points at the heart, a hilum or a vessel "
        "instead (gradcam_*_peak_within_15mm); it is less reliable on short scans "
        "(auc_short_scans_*), a layout it never saw in training. Trained only on MedView's "
        "synthetic demo studies: a demonstration model, not validated on patients.",
    )
    return write_model(Path(out) / spec["name"] / card["version"], model, card)

"""Train the two bundled models on demo studies and write their folders (card + weights).

`scripts/train_bundled_models.sh` is the one documented command; it runs
`python -m medview.ai.bundled.training all`. Everything is seeded: the demo seeds, the patch
and sequence samplers, torch's initialisation and dropout; on CPU with deterministic
algorithms the same command gives the same weights (thread counts and library versions can
still change float rounding). Training checkpoints every few hundred steps and resumes from
its last checkpoint, so a stopped run loses little.

Validation uses demo seeds that training never sees (1001..1010 by default); the numbers
that land in each card come from medview.ai.bundled.evaluation on those seeds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.bundled import cards as bundled_cards
from medview.ai.bundled.data import (
    CachedStudy,
    PatchSampler,
    SequenceSampler,
    cache_study,
    drop_near_lesions,
)
from medview.ai.findings.scoring import MIN_VOXELS
from medview.ai.training.schedule import warmup_cosine
from medview.core.errors import InvalidInputError

log = logging.getLogger("medview.train")
FP_FILE = "fp_classifier.json"


@dataclass
class RunConfig:
    cache: Path
    work: Path  # checkpoints and logs
    train_seeds: list[int] = field(default_factory=lambda: list(range(1, 57)))
    # the classifier's studies: only their 128² slices are used, so it can afford more
    classifier_seeds: list[int] = field(default_factory=lambda: list(range(1, 97)))
    val_seeds: list[int] = field(default_factory=lambda: list(range(1001, 1011)))
    # the false-positive stage: trained on candidates from studies the network never saw,
    # its threshold chosen on development studies (neither training nor validation)
    fp_seeds: list[int] = field(default_factory=lambda: list(range(57, 81)))
    dev_seeds: list[int] = field(default_factory=lambda: list(range(2001, 2013)))
    seed: int = 20240501
    threads: int = 1


def _setup_torch(seed: int, threads: int) -> None:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


class _Checkpoint:
    """Model, optimiser, step and sampler RNG state in one weights-only torch file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(
        self,
        step: int,
        model: Any,
        opt: Any,
        rng: np.random.Generator,
        history: list,
        seconds: float,
    ) -> None:
        import torch

        tmp = self.path.with_suffix(".tmp")
        torch.save(
            {
                "step": step,
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "np_rng": json.dumps(rng.bit_generator.state),
                "history": json.dumps(history),
                "seconds": seconds,
            },
            tmp,
        )
        tmp.replace(self.path)

    def load(self, model: Any, opt: Any, rng: np.random.Generator) -> tuple[int, list, float]:
        import torch

        if not self.path.exists():
            return 0, [], 0.0
        ck = torch.load(self.path, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        torch.set_rng_state(ck["torch_rng"])
        rng.bit_generator.state = json.loads(ck["np_rng"])
        log.info("resumed %s at step %d", self.path.name, ck["step"])
        return int(ck["step"]), json.loads(ck["history"]), float(ck["seconds"])


def _loop(
    name: str,
    model: Any,
    batch_loss: Any,
    rng: np.random.Generator,
    work: Path,
    steps: int,
    lr: float,
    every: int = 200,
) -> dict:
    """The shared training loop: AdamW, warm-up + cosine, logging and checkpoints;
    `batch_loss()` draws the next batch and returns its loss."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    ck = _Checkpoint(work / f"{name}.ckpt.pt")
    start, history, seconds = ck.load(model, opt, rng)
    model.train()
    t0 = last = time.perf_counter()
    running: list[float] = []
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = lr * warmup_cosine(step, steps, warmup=max(1, steps // 40))
        opt.zero_grad(set_to_none=True)
        loss = batch_loss()
        loss.backward()
        opt.step()
        running.append(float(loss.detach()))
        if (step + 1) % 50 == 0:
            rate = (time.perf_counter() - t0) / len(running)
            history.append([step + 1, round(float(np.mean(running)), 5)])
            log.info(
                "%s step %d/%d loss %.4f lr %.2e %.2f s/step",
                name,
                step + 1,
                steps,
                np.mean(running),
                opt.param_groups[0]["lr"],
                rate,
            )
            t0, running = time.perf_counter(), []
        if (step + 1) % every == 0 or step + 1 == steps:
            now = time.perf_counter()
            seconds, last = seconds + now - last, now
            ck.save(step + 1, model, opt, rng, history, seconds)
    model.eval()
    return {"steps": steps, "loss_history": history, "seconds": round(seconds)}


# Phases: (1) lesion / lung-structure / anywhere patches from the first 32 training studies;
# (2) hard negatives: the phase-1 model's mistakes on every other one of those join the mix;
# (3) 24 more studies: the phase-2 model's mistakes on them (studies it never saw, so
# mistakes it has not learnt away) join the pool, and their lesions the lesion patches.
# mix: lesion, lung structure, anywhere, mined mistake; mine: study indices to mine.
SEG = {
    "name": "lesion-seg",
    "version": "1.2",
    "parent_version": "1.1",
    "patch": 160,
    "batch": 16,
    "context": 3,
    "low": -1000.0,
    "high": 400.0,
    "args": {
        "spatial_dims": 2,
        "channels": [8, 16, 32, 64, 128],
        "strides": [2, 2, 2, 2],
        "num_res_units": 1,
        "norm": "batch",
    },
    "phases": [
        {"name": "lesion-seg", "studies": 32, "steps": 6000, "lr": 2e-3, "mix": (0.5, 0.25, 0.25)},
        {
            "name": "lesion-seg-hard",
            "studies": 32,
            "steps": 2000,
            "lr": 5e-4,
            "mix": (0.4, 0.15, 0.15, 0.3),
            "mine": (0, 32, 2),
        },
        {
            "name": "lesion-seg-hard2",
            "studies": 56,
            "steps": 3000,
            "lr": 5e-4,
            "mix": (0.35, 0.1, 0.15, 0.4),
            "mine": (32, 56, 1),
        },
        # 1.1: the 1.0 network widened to 5 slices (+-2, 3 mm: a vessel running through
        # and a nodule ending look different), the new channels' weights starting at 0
        {
            "name": "lesion-seg-ctx5",
            "studies": 56,
            "steps": 1500,
            "lr": 4e-4,
            "mix": (0.45, 0.1, 0.1, 0.35),
            "mined": True,
            "context": 5,
        },
        # 1.2: 1.1 trained on without the mined voxels within 3 px of a lesion (a quarter
        # of the pool: they taught it to shrink outlines and drop faint lesions), lesions
        # under 10 mm weighted 2 and ground-glass ones 0.5 more (the misses of 1.1)
        {
            "name": "lesion-seg-ctx5b",
            "studies": 56,
            "steps": 1000,
            "lr": 2e-4,
            "mix": (0.45, 0.1, 0.1, 0.35),
            "mined": True,
            "mined_margin_px": 3,
            "lesion_weights": (1.0, 0.5),
            "seed": 20240511,
        },
    ],
}
# windows in the card's normalised units: the full -1000..400 HU and -100..200 HU; each
# slice is seen with the slices 2 above and below (3 mm), so a vessel running through it and
# a nodule ending near it differ. Phases: 1.0 at 128² (a 6 mm nodule 2 pixels, a map cell 22
# mm); 1.1 the same weights at 256², last stage and lesion map (grid a side) at stride 8.
CLS = {
    "name": "slice-classifier",
    "version": "1.1",
    "parent_version": "1.0",
    "seq": (8, 24),
    "batch": 6,
    "low": -1000.0,
    "high": 400.0,
    "map_weight": 2.0,
    "args": {
        "features": [16, 32, 64],
        "embed": 64,
        "hidden": 32,
        "input_size": 256,
        "dropout": 0.2,
        "windows": [[0.0, 1.0], [0.6429, 0.8571]],
        "z_offsets": [-2, 0, 2],
        "map_evidence": True,
    },
    "phases": [
        {
            "name": "slice-classifier",
            "steps": 3000,
            "lr": 2e-3,
            "size": 128,
            "grid": 16,
            "map_pos_weight": 5.0,
        },
        # 4 runs of 8..16 slices (a 256² slice costs 4 128² ones); lesion cells are 1 in
        # 500: at weight 10 the map barely marked nodules even on training studies
        {
            "name": "slice-classifier-256",
            "steps": 1200,
            "lr": 1e-3,
            "size": 256,
            "grid": 32,
            "map_pos_weight": 50.0,
            "seq": (8, 16),
            "batch": 4,
        },
    ],
}


def train_segmentation(cfg: RunConfig) -> tuple[Any, dict]:
    """2.5D U-Net trained in the phases of SEG (DiceCE loss, AdamW, warm-up + cosine each)."""
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    _setup_torch(cfg.seed, cfg.threads)
    studies = [cache_study(cfg.cache, s) for s in cfg.train_seeds]
    model = UNet(in_channels=SEG["context"], out_channels=3, **SEG["args"])
    loss = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
    sampler: PatchSampler | None = None

    def batch_loss() -> Any:
        xs, ys = zip(*(sampler.sample() for _ in range(SEG["batch"])), strict=True)
        x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))[:, None]
        return loss(model(x), y)

    mined = [np.zeros((0, 3), np.int32) for _ in studies]
    phases = []
    context = SEG["context"]
    for i, ph in enumerate(SEG["phases"]):
        use = studies[: ph["studies"]]
        if ph.get("context", context) != context:
            context = ph["context"]
            model = widen_context(model, context, SEG["args"])
        if len(use) < ph["studies"]:
            raise InvalidInputError(
                None,
                f"phase {ph['name']} needs {ph['studies']} "
                f"training studies; give more --train-seeds",
            )
        if "mine" in ph:
            _mine(
                model,
                studies,
                range(*ph["mine"]),
                mined,
                cfg.work / f"{ph['name']}-mined.npz",
                cfg.seed + 2 * (i - 1),
            )
        pool = mined[: len(use)] if "mine" in ph or ph.get("mined", False) else None
        if pool is not None and "mined_margin_px" in ph:
            pool = [
                drop_near_lesions(m, st.labels, ph["mined_margin_px"])
                for m, st in zip(pool, use, strict=True)
            ]
        sampler = PatchSampler(
            use,
            SEG["patch"],
            context,
            SEG["low"],
            SEG["high"],
            seed=ph.get("seed", cfg.seed + 2 * i),
            mix=ph["mix"],
            mined=pool,
            lesion_weights=ph.get("lesion_weights"),
        )
        done = _loop(ph["name"], model, batch_loss, sampler.rng, cfg.work, ph["steps"], ph["lr"])
        phases.append(
            {
                **ph,
                "seconds": done["seconds"],
                "loss_history": done["loss_history"],
                "mined_voxels": sum(len(m) for m in pool or []),
                "lesions": len(sampler.lesion_voxels),
            }
        )
    return model, {
        "phases": phases,
        "studies": len(studies),
        "lesions": phases[-1]["lesions"],
        "context": context,
        "seconds": sum(p["seconds"] for p in phases),
    }


def widen_context(model: Any, context: int, args: dict) -> Any:
    """The same U-Net taking `context` slices: the old input channels' weights move to the
    centre channels and the new outer ones start at 0, so it starts out predicting exactly
    as before."""
    import torch
    from monai.networks.nets import UNet

    old = model.state_dict()
    wide = UNet(in_channels=context, out_channels=3, **args)
    state = wide.state_dict()
    for key, value in old.items():
        if state[key].shape == value.shape:
            state[key] = value
        else:  # the first layer's (out, channels, k, k) weights
            pad = (state[key].shape[1] - value.shape[1]) // 2
            state[key] = torch.zeros_like(state[key])
            state[key][:, pad : pad + value.shape[1]] = value
    wide.load_state_dict(state)
    return wide


def _mine(
    model: Any,
    studies: list[CachedStudy],
    where: range,
    mined: list[np.ndarray],
    path: Path,
    seed: int,
) -> None:
    """Add the model's mistakes on studies[where] to `mined` (kept in `path` for reruns)."""
    if not path.exists():
        found = mine_false_positives(model, [studies[i] for i in where], seed)
        np.savez(path, *found)
    with np.load(path) as f:
        for j, i in enumerate(where):
            mined[i] = np.concatenate([mined[i], f[f"arr_{j}"]])


def mine_false_positives(
    model: Any, studies: list[CachedStudy], seed: int, per_component: int = 50
) -> list[np.ndarray]:
    """Voxels the model wrongly calls lesion in each study (at most `per_component` from
    each connected mistake, so one large mistake does not crowd out the many small ones)."""
    from medview.ai.bundled.evaluation import segment_study
    from medview.ai.findings.scoring import sample_mistakes

    rng = np.random.default_rng(seed)
    out = []
    for st in studies:
        pred = segment_study(model, st.ct, SEG["low"], SEG["high"], SEG["context"])
        out.append(sample_mistakes(pred, st.labels, rng, per_component))
        log.info("mined seed %d: %d voxels", st.seed, len(out[-1]))
    return out


def train_classifier(cfg: RunConfig, steps: int | None = None) -> tuple[Any, dict]:
    """CNN + bidirectional GRU on runs of neighbouring slices (cross entropy + lesion map) in
    the phases of CLS, each from the last one's weights; `steps`: the last phase's count."""
    import torch

    from medview.ai.runtime.slice_classifier import SliceClassifier

    _setup_torch(cfg.seed + 1, cfg.threads)
    studies = [cache_study(cfg.cache, s) for s in cfg.classifier_seeds]
    # lesion slices are about one in five: weight them up a little so both errors count
    ce = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]))
    model, phases = None, []
    for i, ph in enumerate(CLS["phases"]):
        n_steps = steps if steps and i == len(CLS["phases"]) - 1 else ph["steps"]
        state = model.state_dict() if model is not None else None
        model = SliceClassifier(
            in_channels=1, out_channels=2, **{**CLS["args"], "input_size": ph["size"]}
        )
        if state is not None:  # the same layers at a new input size: the weights carry over
            model.load_state_dict(state)
        sampler = SequenceSampler(
            studies,
            ph.get("seq", CLS["seq"]),
            CLS["low"],
            CLS["high"],
            seed=cfg.seed + 1 + 2 * i,
            grid=ph["grid"],
            size=ph["size"],
        )
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(ph["map_pos_weight"]))

        def batch_loss(
            model: Any = model,
            sampler: SequenceSampler = sampler,
            bce: Any = bce,
            batch: int = ph.get("batch", CLS["batch"]),
        ) -> Any:
            x, y, maps = (torch.from_numpy(a) for a in sampler.batch(batch))
            logits, map_logits = model.forward_with_map(x)
            return ce(logits.reshape(-1, 2), y.reshape(-1)) + CLS["map_weight"] * bce(
                map_logits, maps
            )

        done = _loop(ph["name"], model, batch_loss, sampler.rng, cfg.work, n_steps, ph["lr"])
        phases.append(
            {
                **ph,
                "steps": n_steps,
                "seconds": done["seconds"],
                "loss_history": done["loss_history"],
            }
        )
    return model, {
        "phases": phases,
        "studies": len(studies),
        "seconds": sum(p["seconds"] for p in phases),
    }


def write_segmentation_model(out: Path, model: Any, info: dict, cfg: RunConfig) -> Path:
    """The segmentation model's folder: weights and a card with the size rules first, then
    the false-positive stage trained on that network's candidates (ai.bundled_fp) and its
    file, the outline's extent chosen on the development studies, then the validation
    numbers measured through the app's own path."""
    from medview.ai.bundled import evaluation as bundled_eval
    from medview.ai.bundled import fp as bundled_fp
    from medview.ai.runtime.loading import load_model
    from medview.io.workspace import atomic_write_text

    # one slice is enough: the classifier weighs the slices a region spans, and a hard rule
    # of two lost 2 of the 59 development lesions the 1.0 network found
    post = {"min_component_voxels": MIN_VOXELS, "min_component_slices": 1}
    pending = {"min_component_voxels": post["min_component_voxels"], "threshold": 0.5}
    folder = bundled_cards.write_segmentation(
        out, model, SEG, cfg, info, pending, postprocess=post
    ).parent
    studies = {s: cache_study(cfg.cache, s) for s in cfg.fp_seeds + cfg.dev_seeds}
    clf, cut, fp_info = bundled_fp.fp_stage(
        folder,
        [studies[s] for s in cfg.fp_seeds],
        [studies[s] for s in cfg.dev_seeds],
        cfg.work,
        cfg.seed + 3,
    )
    text = clf.to_json()
    atomic_write_text(folder / FP_FILE, text)
    post.update(
        fp_classifier=FP_FILE,
        fp_threshold=cut,
        fp_classifier_sha256=hashlib.sha256(text.encode()).hexdigest(),
    )
    bundled_cards.write_segmentation(
        out, model, SEG, cfg, info, pending, postprocess=post, fp_info=fp_info
    )
    extent = bundled_fp.choose_extent(folder, [studies[s] for s in cfg.dev_seeds], cfg.work)
    post.update(extent_threshold=extent["extent_threshold"], extent_max_mm=extent["extent_max_mm"])
    fp_info.update(extent)
    bundled_cards.write_segmentation(
        out, model, SEG, cfg, info, pending, postprocess=post, fp_info=fp_info
    )
    loaded = load_model(folder, "cpu", reuse=False)
    metrics = bundled_eval.evaluate_segmentation(loaded, cfg.cache, cfg.val_seeds)
    return bundled_cards.write_segmentation(
        out, model, SEG, cfg, info, metrics, postprocess=post, fp_info=fp_info
    )


def parse_seeds(text: str) -> list[int]:
    """'1-32' or '1,2,5' -> list of ints."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    from medview.ai.bundled import evaluation as bundled_eval

    p = argparse.ArgumentParser(
        prog="python -m medview.ai.bundled.training", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("model", choices=("seg", "classifier", "all"))
    p.add_argument("--cache", type=Path, default=Path("/tmp/medview-train"))
    p.add_argument("--work", type=Path, default=None, help="checkpoints and logs")
    p.add_argument("--out", type=Path, default=Path(__file__).parents[2] / "resources" / "models")
    p.add_argument("--train-seeds", default="1-56", help="segmentation training seeds")
    p.add_argument("--classifier-seeds", default="1-96")
    p.add_argument("--val-seeds", default="1001-1010")
    p.add_argument("--fp-seeds", default="57-80", help="false-positive stage training seeds")
    p.add_argument("--dev-seeds", default="2001-2012", help="false-positive threshold seeds")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="override the classifier's last phase's step count (a quick trial)",
    )
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    work = a.work or a.cache / "work"
    work.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.FileHandler(work / "train.log"), logging.StreamHandler()],
    )
    cfg = RunConfig(
        a.cache,
        work,
        train_seeds=parse_seeds(a.train_seeds),
        classifier_seeds=parse_seeds(a.classifier_seeds),
        val_seeds=parse_seeds(a.val_seeds),
        fp_seeds=parse_seeds(a.fp_seeds),
        dev_seeds=parse_seeds(a.dev_seeds),
        threads=a.threads,
    )
    groups = [cfg.train_seeds + cfg.classifier_seeds, cfg.fp_seeds, cfg.dev_seeds, cfg.val_seeds]
    for s in sorted(set().union(*groups)):
        cache_study(cfg.cache, s)
    if len(
        set(cfg.train_seeds) | set(cfg.fp_seeds) | set(cfg.dev_seeds) | set(cfg.val_seeds)
    ) < sum(map(len, (cfg.train_seeds, cfg.fp_seeds, cfg.dev_seeds, cfg.val_seeds))) or set(
        cfg.classifier_seeds
    ) & set(cfg.val_seeds):
        p.error("training, false-positive, development and validation seeds overlap")
    if a.model in ("seg", "all"):
        model, info = train_segmentation(cfg)
        write_segmentation_model(a.out, model, info, cfg)
    if a.model in ("classifier", "all"):
        model, info = train_classifier(cfg, a.steps)
        metrics = bundled_eval.evaluate_classifier(model, cfg.cache, cfg.val_seeds, CLS)
        bundled_cards.write_classifier(a.out, model, CLS, cfg, info, metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training throughput of the fine-tune engine against a bare PyTorch/MONAI loop, in the same
run and on the same device: how many samples a second `medview train` learns from, and how
much of the device's pace its patch sampling, augmentation and distillation cost.

- engine: the fine-tune's own SegmentationTask on the active bundled lesion-seg (patches
  drawn from cached studies near labels and elsewhere, rotated, zoomed, flipped and
  intensity-jittered on the device; DiceCE plus distillation from the frozen parent; AdamW;
  batch norms frozen as in the engine), mixed precision on CUDA as the engine uses it.
  Mining is off (mined_fraction 0): it is a one-off per base, measured by bench_finetune.
- engine without distillation: the same, distill 0 (what the teacher's forward pass costs).
- bare loop (reference): the same network, DiceCE and AdamW on random tensors already on the
  device: the ceiling no data pipeline can beat.

The ratio engine / bare says how much of the device's speed reaches training: on a GPU a
low ratio points at the per-patch sampling, not the network. The 8-study fine-tune's time per
epoch is 1024 samples over the engine's pace (bench_finetune measures the whole run).

Measured 2026-11-29 on this 2-core CPU (2 threads; lesion-seg 1.2, 128² patches, batch 16),
nothing else running, four runs: engine 101-115 samples/s (an epoch of 1024 in 9-10 s; the
fine-tune's own epochs took 8.5 s at 120), without distillation 115-149, bare loop 141-197:
the engine keeps about 0.6 of the network's pace, distillation costs about 15%. One thread:
75 / 105 / 118. With one busy process beside it (the viewer, another program) 2 threads
collapse to 31-33 samples/s, less than 1 thread; with OMP_WAIT_POLICY=PASSIVE (idle OpenMP
threads sleep) 52-62, but 88 instead of 104 unloaded, so only the GUI's training child uses
it (ui/training_process). No GPU was lent to this task; on one, run it with --device cuda
and compare against the 1-minute goal (20 epochs of 1024 samples plus validation).

    nice -n 10 python benchmarks/bench_train_speed.py [--device auto|cpu|cuda|mps]
        [--threads 2] [--steps 20] [--work /tmp/medview-train-speed]"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path


def _studies(work: Path, card: object, n: int) -> list:
    """`n` small demo studies (80 slices), cached as the engine caches them."""
    from medview.ai.training import data as train_data
    from medview.demo import generate_demo_study

    prepared = []
    for seed in range(1, n + 1):
        folder = work / "studies" / f"s-{seed}"
        if not (folder / "labels.nii.gz").exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            generate_demo_study(folder, seed=seed, slices=80)
        prepared += [
            train_data.prepare_study(s, card, work / "cache")
            for s in train_data.find_studies(folder)
        ]
    return prepared


def _pace(step: object, steps: int, batch: int, sync: object) -> float:
    """Samples a second over `steps` steps, after 3 of warm-up."""
    for _ in range(3):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return steps * batch / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--work", type=Path, default=Path("/tmp/medview-train-speed"))
    a = p.parse_args(argv)
    os.environ["MEDVIEW_DATA_DIR"] = str(a.work / "data")
    import numpy as np
    import torch
    from monai.losses import DiceCELoss

    from medview.ai.models import registry
    from medview.ai.runtime.device import autocast_context, choose_device
    from medview.ai.runtime.loading import load_model
    from medview.ai.training.engine import Settings, train_mode
    from medview.ai.training.keep import frozen_parent
    from medview.ai.training.tasks import SegmentationTask

    torch.set_num_threads(a.threads)
    device = choose_device(a.device)
    entry = registry.resolve("lesion-seg")
    card = entry.card
    s = Settings(mined_fraction=0.0, device=str(device))
    studies = _studies(a.work, card, 3)
    amp = device.type == "cuda" and s.amp

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def net() -> torch.nn.Module:
        model = load_model(entry.folder, "cpu", reuse=False).module.to(device)
        train_mode(model, s.freeze_norm)
        return model

    def stepper(loss_of: object, model: torch.nn.Module) -> object:
        opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with autocast_context(device) if amp else contextlib.nullcontext():
                loss = loss_of(model)
            loss.backward()
            opt.step()

        return step

    rng = np.random.default_rng(0)
    results = {}
    for name, distill in (("engine", s.distill), ("engine, no distillation", 0.0)):
        s.distill = distill
        teacher = frozen_parent(net()) if distill else None
        task = SegmentationTask(card, studies, studies[:1], s, None, device, teacher)
        results[name] = _pace(
            stepper(lambda m, t=task: t.batch_loss(m, rng, device), net()),
            a.steps,
            s.batch_size,
            sync,
        )
    x = torch.randn(s.batch_size, card.in_channels, s.patch_size, s.patch_size, device=device)
    y = torch.randint(
        0, len(card.labels) + 1, (s.batch_size, 1, s.patch_size, s.patch_size), device=device
    )
    dice_ce = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
    results["bare loop (reference)"] = _pace(
        stepper(lambda m: dice_ce(m(x).float(), y), net()), a.steps, s.batch_size, sync
    )
    bare = results["bare loop (reference)"]
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{device.type}, {a.threads} threads"
    )
    print(
        f"{card.ref} on {name}; patches {s.patch_size}², batch {s.batch_size}, "
        f"{a.steps} steps each, mixed precision {'on' if amp else 'off'}"
    )
    for key, pace in results.items():
        print(
            f"  {key:28s} {pace:8.1f} samples/s  ratio to bare {pace / bare:.2f}  "
            f"epoch of 1024 samples {1024 / pace:6.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())

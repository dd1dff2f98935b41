"""Rehearsal for the bundled models: a few of the demo studies a bundled model was trained
on are mixed into a fine-tune's training studies, so it learns the reader's site without
forgetting its own.

Measured (benchmarks/bench_finetune.py): fine-tuning lesion-seg 1.0 on 8 site-B studies
alone raised site-B Dice from 0.52 to 0.72 but dropped site-A Dice from 0.90 to 0.38 (270
false positives per study): in contrast-enhanced site-B scans a liver lesion is about as
dense as a whole liver without contrast, so the model learnt to call site A's liver a
lesion. With 4 rehearsal studies site A fell to 0.74, with 8 to 0.75, and with the batch
norms' statistics also kept from the base (Settings.freeze_norm) to 0.85 while site B rose
to 0.70 (+0.18). With lesion-seg 1.1 (already 0.70 on site B) the same recipe cost site A
0.045, and distillation from the parent on the rehearsal patches (train_keep) 0.005. The
bundled models' training data is not shipped but is reproducible here: the demo generator
with the seeds of bundled_training (RunConfig.train_seeds, 1..56, site A). Models of other
origins (imported, or trained elsewhere) have no such data and get no rehearsal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medview.ai.models.registry import ModelEntry, resolve
from medview.ai.training.data import TrainStudy, find_studies
from medview.core.errors import MedviewError

REPLAY_SEEDS = tuple(range(1, 57))  # bundled_training.RunConfig.train_seeds (site A)
REPLAY_SITE = "a"


def bundled_ancestor(entry: ModelEntry) -> ModelEntry | None:
    """The bundled model a version descends from (itself when bundled), else None."""
    seen = set()
    while not entry.bundled:
        parent = entry.card.parent_version
        if not parent or parent in seen:
            return None
        seen.add(parent)
        try:
            entry = resolve(f"{entry.card.name}:{parent}")
        except MedviewError:
            return None
    return entry


def _folders(n: int, root: Path) -> list[tuple[Path, int]]:
    return [(Path(root) / f"{REPLAY_SITE}-{seed}", seed) for seed in REPLAY_SEEDS[:n]]


def make_replay(folder_seed: tuple[Path, int]) -> None:
    """One rehearsal study (a worker process of train_prepare may run it)."""
    from medview.demo import generate_demo_study

    folder, seed = folder_seed
    folder.parent.mkdir(parents=True, exist_ok=True)
    generate_demo_study(folder, seed=seed, site=REPLAY_SITE)


def replay_studies(
    n: int,
    root: Path,
    workers: int = 1,
    report: Callable[[int, int], None] | None = None,
    check: Callable[[], None] | None = None,
) -> list[TrainStudy]:
    """The first `n` of the bundled models' training studies, generated into `root` once
    (in `workers` processes; report(k, m): k of the m missing ones made; check: a stop)."""
    from medview.ai.training.prepare import run_each

    folders = _folders(n, root)
    missing = [f for f in folders if not (f[0] / "labels.nii.gz").exists()]
    run_each(make_replay, missing, workers, report or (lambda k, m: None), check)
    return [s for folder, _ in folders for s in find_studies(folder)]

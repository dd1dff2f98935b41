"""Rank fine-tuning variants on development seeds (issue 15; docs/finetuning.md, "What was
tried"). Cheaper than finetune_protocol.py, which proves the defaults: per draw, ONE training
of the engine (`Trainer._fit`, exactly what builds a cross-validated run's version) on all 8
studies of the new site, no cross-validation, then parent and result scored on 5 unseen
studies of that site and 3 of site A. `--blend 0.5,0.7` also scores the result blended back
toward the parent (WiSE-FT) without training again.

Seeds: development only, from 150000 (finetune_protocol's development runs start at 100000,
its test runs at 200000): draw d trains on base + 1000 d + 0..7, tests on + 100.. and + 200...
Studies are kept in --work and reused; a line a variant is appended to --work/results.jsonl.

    nice python benchmarks/finetune_variants.py NAME [--site b|c] [--draws 0,1,2]
        [--slices 96] [--set epochs=8 ...] [--blend 0.5]"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DEV_BASE = 150_000
SITE_OFFSET = {"b": 0, "c": 25_000}


def _draw(a: argparse.Namespace, d: int, base: str) -> dict:
    import torch
    from finetune_protocol import _generate, summary

    from medview.ai.models import registry
    from medview.ai.runtime.loading import load_model
    from medview.ai.training import data as td
    from medview.ai.training.adapt import blend
    from medview.ai.training.dist import Dist
    from medview.ai.training.engine import Job, Settings, Trainer
    from medview.ai.training.metrics import scores_kept, study_scores

    entry = registry.resolve(base)
    card = entry.card
    block = DEV_BASE + SITE_OFFSET[a.site] + 1000 * d
    root = a.work / f"studies-{a.slices or 'full'}"
    train = _generate(
        root / f"train-{a.site}-{block}", a.site, list(range(block, block + 8)), a.slices
    )
    tests = {
        a.site: _generate(
            root / f"test-{a.site}-{block}", a.site, list(range(block + 100, block + 105)), a.slices
        ),
        "a": _generate(
            root / f"test-a-{block}", "a", list(range(block + 200, block + 203)), a.slices
        ),
    }
    s = Settings(threads=a.threads)
    for item in a.set:
        s.assign(item)
    cache = a.work / "cache"
    job = Job(
        data=str(train),
        base=base,
        work=str(a.work / "runs" / f"{a.name}-{block}-{os.getpid()}"),
        cache=str(cache),
        settings=s,
    )
    trainer = Trainer(job, lambda ev: None, lambda: False)
    trainer.dist, trainer.lock, trainer.folds = Dist(s.device), None, []
    own = [td.prepare_study(x, card, cache) for x in td.find_studies(train)]
    trainer.replay = trainer._replay(entry, card)
    trainer.replay_prepared = [td.prepare_study(x, card, cache) for x in trainer.replay]
    trainer._setup_torch()
    trainer.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model, _, _ = trainer._fit(entry, card, own + trainer.replay_prepared, [], None, 0)
    fit_s = time.perf_counter() - t0
    cpu = torch.device("cpu")
    model = model.to(cpu)
    parent = load_model(entry.folder, cpu, reuse=False).module
    start = {k: v.clone() for k, v in parent.state_dict().items()}
    fitted = {k: v.clone() for k, v in model.state_dict().items()}
    out: dict = {"draw": d, "train_seeds": [block, block + 7], "fit_s": round(fit_s, 1)}
    for side, folder in tests.items():
        prepared = [td.prepare_study(x, card, cache) for x in td.find_studies(folder)]
        out[side] = {"parent": summary(scores_kept(parent, card, prepared, cpu), card, full=True)}
        for fraction in [1.0, *a.blend]:
            model.load_state_dict(fitted)
            blend(model, start, fraction)
            key = "new" if fraction == 1.0 else f"blend {fraction:g}"
            out[side][key] = summary(study_scores(model, card, prepared, cpu)[0], card, full=True)
    return out


def _change(draws: list[dict], side: str, who: str, key: str) -> list[float]:
    return [r[side][who][key] - r[side]["parent"][key] for r in draws]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="what this variant is called in the results")
    p.add_argument("--site", choices=("b", "c"), default="b")
    p.add_argument("--draws", default="0,1,2")
    p.add_argument("--slices", type=int, default=96, help="0: full-size studies")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--blend", default="", help="also score these fractions of the change")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("/tmp/finetune-variants"))
    a = p.parse_args(argv)
    a.slices = a.slices or None
    a.blend = [float(x) for x in a.blend.split(",") if x]
    os.environ["MEDVIEW_DATA_DIR"] = str(a.work / "data")
    from medview.ai.models import registry

    base = max(
        (e for e in registry.list_models() if e.bundled and e.card.name == "lesion-seg"),
        key=lambda e: registry.version_key(e.card.version),
    ).card.ref
    draws = []
    for d in (int(x) for x in a.draws.split(",")):
        r = _draw(a, d, base)
        draws.append(r)
        site, A = r[a.site], r["a"]
        fp = "false_positives_per_study"
        for who in [k for k in site if k != "parent"]:
            print(
                f"{a.name} ({who}) draw {d}: site {a.site.upper()} Dice "
                f"{site['parent']['dice_mean']:.3f}->{site[who]['dice_mean']:.3f}, "
                f"FP {site['parent'][fp]:.1f}->{site[who][fp]:.1f}; site A Dice "
                f"{A['parent']['dice_mean']:.3f}->{A[who]['dice_mean']:.3f}, "
                f"FP {A['parent'][fp]:.1f}->{A[who][fp]:.1f}; training {r['fit_s']:.0f} s",
                flush=True,
            )
        with open(a.work / "draws.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": a.name, "set": a.set, **r}) + "\n")
    lines = []
    for who in ["new", *(f"blend {f:g}" for f in a.blend)]:
        gain = _change(draws, a.site, who, "dice_mean")
        lines.append(
            f"{a.name} ({who}) {' '.join(a.set)}: site {a.site.upper()} Dice "
            f"{np.mean(gain):+.3f} (draws {', '.join(f'{g:+.3f}' for g in gain)}), site A "
            f"{np.mean(_change(draws, 'a', who, 'dice_mean')):+.3f}, FP "
            f"{np.mean(_change(draws, a.site, who, 'false_positives_per_study')):+.2f} a study; "
            f"{np.mean([r['fit_s'] for r in draws]):.0f} s a training "
            f"(load {os.getloadavg()[0]:.1f})"
        )
    print("\n".join(lines))
    with open(a.work / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "name": a.name,
                    "site": a.site,
                    "slices": a.slices,
                    "set": a.set,
                    "draws": draws,
                    "summary": lines,
                }
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())

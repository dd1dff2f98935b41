"""Does a fine-tune help a new site's UNSEEN studies, in every draw? Issue 15's proof protocol.

Each draw fine-tunes the newest bundled lesion-seg (the app's default) through the engine
`medview train` runs, with the engine's default Settings (plus any --set), on 8 labelled
studies of the new site (B, or C with --site c), then scores parent and new version on 5
other studies of that site and 3 of site A, none of which the fine-tune or the bundled model
ever saw. Per draw and as mean ± sd over draws: voxel Dice of the listed findings' label map
(mean over labels, pooled over the studies), lesion sensitivity >= 6 mm, false positives a
study; then the goals, each met / not met:

- site B (C) Dice +0.10 or more on average, no draw below +0.03;
- false positives a study on the new site not above the parent's (mean over draws);
- site A Dice down by at most 0.02 (mean over draws);
- each fine-tune within 10 minutes on this machine (wall time, with the load beside it).

Seeds. The bundled model trained on site-A seeds 1-56 and was validated on 1001-1010;
bench_finetune used 3001-3012 and 1001-1004. Here draw d uses the block base + site offset +
1000 d: training seeds block+0..7, the new site's unseen studies block+100.., site A's
block+200... Development runs (the default) take base 100000: try variants there as often as
you like. A test run (--test) takes base 200000 or --test-base, and is refused when its
seed range overlaps one a test run in the results file already used (the file is committed:
benchmarks/results/finetune_protocol.json), so the test seeds are used once, after the
defaults are frozen. Every run, development or test, is appended to that file with its
seed ranges, settings and numbers, labelled as what it is.

`--slices N` makes smaller studies (N slices around the diaphragm) and `--draws`, `--test-n`
fewer draws and studies: for ranking variants on development seeds only. A test run uses the
protocol's sizes (full studies, >= 3 draws, 5 + 3 test studies) and refuses less.

    nice -n 10 python benchmarks/finetune_protocol.py [--site b|c] [--draws 3]
        [--slices 60] [--set folds=3 ...] [--work /tmp/finetune-protocol] [--test]"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from medview.ai.training.job import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "finetune_protocol.json"
DEV_BASE, TEST_BASE = 100_000, 200_000
SITE_OFFSET = {"b": 0, "c": 50_000}
BLOCK = 1000  # seeds per draw
N_TRAIN, TRAIN_AT, SITE_AT, A_AT = 8, 0, 100, 200
KEYS = ("dice_mean", "sensitivity_ge_6mm", "false_positives_per_study")
GOAL_MEAN, GOAL_MIN, GOAL_A, GOAL_S = 0.10, 0.03, -0.02, 600.0


class Refused(Exception):
    """A run the protocol does not allow, in one sentence."""


def seed_block(base: int, site: str, draw: int) -> int:
    return base + SITE_OFFSET[site] + BLOCK * draw


def run_range(base: int, site: str, draws: int) -> list[int]:
    """[first, last] seed a run of `draws` draws may use."""
    first = seed_block(base, site, 0)
    return [first, first + BLOCK * draws - 1]


def committed_runs(path: Path = RESULTS) -> list[dict]:
    """The runs in the results file as git's HEAD holds it (what was committed), else as on
    disk (outside a git checkout)."""
    try:
        rel = path.resolve().relative_to(Path(__file__).resolve().parent.parent)
        text = subprocess.run(
            ["git", "show", f"HEAD:{rel.as_posix()}"],
            capture_output=True,
            text=True,
            check=True,
            cwd=path.parent,
        ).stdout
    except (ValueError, OSError, subprocess.CalledProcessError):
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    return json.loads(text).get("runs", []) if text.strip() else []


def check_test_range(seeds: list[int], runs: list[dict]) -> None:
    """Refuse a test run whose seeds overlap a test run already recorded."""
    if seeds[0] < TEST_BASE:
        raise Refused(
            f"test seeds start at {TEST_BASE} (below are development seeds); "
            f"choose --test-base {TEST_BASE} or more"
        )
    for run in runs:
        if run.get("kind") != "test":
            continue
        lo, hi = run["seed_range"]
        if seeds[0] <= hi and lo <= seeds[1]:
            raise Refused(
                f"test seeds {seeds[0]}-{seeds[1]} overlap {lo}-{hi}, used by the "
                f"test run of {run.get('date', '?')} in {RESULTS.name}; the test "
                f"seeds are used once: choose --test-base {max(hi + 1, TEST_BASE)} "
                f"or more"
            )


def check_test_size(a: argparse.Namespace) -> None:
    """A test run uses the protocol's sizes: nothing shrunk to make it pass."""
    if a.slices or a.draws < 3 or a.test_n < 5 or a.test_a < 3:
        raise Refused(
            "a test run uses full-size studies, at least 3 draws, 5 studies of the "
            "new site and 3 of site A: drop --slices and keep --draws >= 3, "
            "--test-n >= 5, --test-a >= 3"
        )


def _generate(root: Path, site: str, seeds: list[int], slices: int | None) -> Path:
    """Folder of one study a seed (kept: a second run reuses them)."""
    from medview.demo import generate_demo_study

    for seed in seeds:
        folder = root / f"{site}-{seed}"
        if not (folder / "labels.nii.gz").exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            generate_demo_study(folder, seed=seed, site=site, slices=slices)
    return root


def summary(scores: list[dict], card: object, full: bool = False) -> dict:
    """The protocol's numbers (KEYS) of per-study scores; `full`: also per label."""
    from medview.ai.training.crossval import _int_keys
    from medview.ai.training.metrics import summarise

    out = summarise([_int_keys(s) for s in scores], card)
    return out if full else {k: out[k] for k in KEYS}


def _short(numbers: dict) -> dict:
    return {k: numbers[k] for k in KEYS}


def mean_sd(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "—"
    sd = float(np.std(got, ddof=1)) if len(got) > 1 else float("nan")
    return f"{np.mean(got):+.3f} ± {sd:.3f}" if len(got) > 1 else f"{got[0]:+.3f}"


def _change(draw: dict, site: str, key: str) -> float | None:
    p, n = draw[site]["parent"][key], draw[site]["new"][key]
    return None if p is None or n is None else n - p


def goals(draws: list[dict], site: str) -> list[tuple[str, bool]]:
    """(goal in words, met) for the protocol's goals over the draws."""
    gains = [_change(d, site, "dice_mean") for d in draws]
    fp = [_change(d, site, "false_positives_per_study") for d in draws]
    a = [_change(d, "a", "dice_mean") for d in draws]
    wall = [d["fine_tune_s"] for d in draws]
    S = site.upper()
    return [
        (
            f"site {S} Dice +{GOAL_MEAN:.2f} on average (measured {np.mean(gains):+.3f})",
            float(np.mean(gains)) >= GOAL_MEAN,
        ),
        (
            f"no draw below +{GOAL_MIN:.2f} on site {S} (lowest {min(gains):+.3f})",
            min(gains) >= GOAL_MIN,
        ),
        (
            f"site {S} false positives a study not above the parent's (change {np.mean(fp):+.2f})",
            float(np.mean(fp)) <= 0,
        ),
        (
            f"site A Dice down at most {-GOAL_A:.2f} (measured {np.mean(a):+.3f})",
            float(np.mean(a)) >= GOAL_A,
        ),
        (
            f"each fine-tune within {GOAL_S / 60:.0f} min (longest {max(wall) / 60:.1f} min)",
            max(wall) <= GOAL_S,
        ),
    ]


def _pair(d: dict, side: str, key: str, digits: int = 3) -> str:
    p, n = d[side]["parent"][key], d[side]["new"][key]
    return "—" if p is None or n is None else f"{p:.{digits}f}->{n:.{digits}f}"


def table(draws: list[dict], site: str) -> str:
    S = site.upper()
    head = (
        f"{'draw':<5}{'seeds':<14}{S + ' Dice parent->new':<24}{'A Dice parent->new':<24}"
        f"{S + ' sens>=6mm':<16}{S + ' FP/study':<16}{'A FP/study':<14}{'min':>5}"
    )
    lines = [head]
    for d in draws:
        lines.append(
            f"{d['draw']:<5}{str(d['train_seeds'][0]) + '..':<14}"
            f"{_pair(d, site, 'dice_mean'):<24}{_pair(d, 'a', 'dice_mean'):<24}"
            f"{_pair(d, site, 'sensitivity_ge_6mm', 2):<16}"
            f"{_pair(d, site, 'false_positives_per_study', 1):<16}"
            f"{_pair(d, 'a', 'false_positives_per_study', 1):<14}"
            f"{d['fine_tune_s'] / 60:>5.1f}"
        )
    lines.append(
        f"mean ± sd over {len(draws)} draws: site {S} Dice change "
        f"{mean_sd([_change(d, site, 'dice_mean') for d in draws])}, site A "
        f"{mean_sd([_change(d, 'a', 'dice_mean') for d in draws])}; sensitivity "
        f">=6 mm {S} {mean_sd([_change(d, site, 'sensitivity_ge_6mm') for d in draws])}"
        f"; FP a study {S} "
        f"{mean_sd([_change(d, site, 'false_positives_per_study') for d in draws])}, A "
        f"{mean_sd([_change(d, 'a', 'false_positives_per_study') for d in draws])}"
    )
    return "\n".join(lines)


def run_draw(a: argparse.Namespace, draw: int, base: str) -> dict:
    import torch

    from medview.ai.models import registry
    from medview.ai.models.verdict import verdict
    from medview.ai.runtime.loading import load_model
    from medview.ai.training import data as train_data
    from medview.ai.training.engine import Job, Settings, Trainer
    from medview.ai.training.metrics import scores_kept

    block = seed_block(a.base, a.site, draw)
    train = list(range(block + TRAIN_AT, block + TRAIN_AT + N_TRAIN))
    site_test = list(range(block + SITE_AT, block + SITE_AT + a.test_n))
    a_test = list(range(block + A_AT, block + A_AT + a.test_a))
    root = a.work / f"studies-{a.slices or 'full'}"
    t0 = time.perf_counter()
    _generate(root / f"train-{a.site}-{block}", a.site, train, a.slices)
    _generate(root / f"test-{a.site}-{block}", a.site, site_test, a.slices)
    _generate(root / f"test-a-{block}", "a", a_test, a.slices)
    print(f"draw {draw}: studies ready in {time.perf_counter() - t0:.0f} s", flush=True)
    settings = Settings(threads=a.threads)
    for item in a.set:
        settings.assign(item)
    work = a.work / f"run-{a.site}-{block}-{time.strftime('%H%M%S')}-{os.getpid()}"
    job = Job(
        data=str(root / f"train-{a.site}-{block}"),
        base=base,
        work=str(work),
        cache=str(a.work / "cache"),
        settings=settings,
    )
    events: dict[str, float] = {}
    wall0 = time.perf_counter()

    def emit(ev: dict) -> None:
        events.setdefault(ev["event"], round(time.perf_counter() - wall0, 1))
        if ev["event"] in ("start", "done", "error"):
            print(
                f"  {ev['event']} at {time.perf_counter() - wall0:.0f} s: "
                + json.dumps(
                    {
                        k: v
                        for k, v in ev.items()
                        if k in ("fold", "folds", "train", "val", "version", "message")
                    }
                ),
                flush=True,
            )

    load0 = os.getloadavg()[0]
    done = Trainer(job, emit, lambda: False).run()
    wall = time.perf_counter() - wall0
    if done is None:
        raise Refused(f"draw {draw}: the fine-tune stopped without a version")
    entry = registry.resolve(done["parent"])
    card = entry.card
    device = torch.device("cpu")
    parent = load_model(entry.folder, device, reuse=False).module
    new = load_model(done["folder"], device, reuse=False).module
    out = {
        "draw": draw,
        "train_seeds": train,
        "site_seeds": site_test,
        "a_seeds": a_test,
        "fine_tune_s": round(wall, 1),
        "load_before": round(load0, 1),
        "load_after": round(os.getloadavg()[0], 1),
        "phases_s": events,
        "version": done["version"],
    }
    new_card = registry.resolve(done["version"]).card
    out["fp_refit_kept"] = new_card.postprocess != card.postprocess
    for side in (a.site, "a"):
        folder = root / f"test-{side}-{block}"
        prepared = [
            train_data.prepare_study(s, card, a.work / "cache")
            for s in train_data.find_studies(folder)
        ]
        own, with_parents, bare = new_version_scores(new, new_card, card, prepared, device)
        out[side] = {
            "parent": summary(scores_kept(parent, card, prepared, device), card, True),
            "new": summary(own, new_card, True),
            "new_with_parent_postprocess": summary(with_parents, card, True),
            "new_without_fp_classifier": summary(bare, card, True),
        }
    said = verdict(registry.resolve(done["version"]).card.validation, card.version)
    cv = done.get("cross_validation") or {}
    out["card"] = {
        "verdict": said.text if said else None,
        "dice_change": (cv.get("change") or {}).get("dice"),
        "parent": {k: done["parent_metrics"].get(k) for k in KEYS},
        "new": {k: done["metrics"].get(k) for k in KEYS},
    }
    print(
        f"  draw {draw}: fine-tune {wall:.0f} s (load {load0:.1f}); site {a.site.upper()} "
        f"{_short(out[a.site]['parent'])} -> {_short(out[a.site]['new'])}; site A "
        f"{_short(out['a']['parent'])} -> {_short(out['a']['new'])}; the false-positive "
        f"refit kept: {out['fp_refit_kept']}; the card said: {out['card']['verdict']}",
        flush=True,
    )
    return out


def new_version_scores(
    new: object, new_card: object, parent_card: object, prepared: list, device: object
) -> tuple[list[dict], list[dict], list[dict]]:
    """Per-study scores of the new network, segmenting each study once, listed three ways:
    with its own card's postprocess (what the reader gets: the refit false-positive
    classifier when the fine-tune kept it), with the parent's, and with no false-positive
    classifier. The last two say what the refit did, apart from the network."""
    from medview.ai.training.metrics import listed_maps, score, without_fp_classifier

    bare = without_fp_classifier(parent_card) or parent_card  # type: ignore[arg-type]
    values = [lab.value for lab in parent_card.labels]  # type: ignore[attr-defined]
    lists: tuple[list[dict], list[dict], list[dict]] = ([], [], [])
    for st in prepared:
        maps = listed_maps(new, [new_card, parent_card, bare], st, device)  # type: ignore[list-item]
        for got, pred in zip(lists, maps, strict=True):
            got.append(score(pred, np.asarray(st.labels), st.spacing_mm, values, 1))
    return lists


def warm_up(base: str, settings: Settings, cache: Path) -> float:
    """Make, cache and mine the rehearsal studies before the first draw, as an installation's
    first fine-tune of a base model does once (minutes: 8 full studies generated, the base's
    mistakes found in each); returns its seconds, which the draws' fine-tune times then do
    not include."""
    import torch

    from medview.ai.models import registry
    from medview.ai.runtime.loading import load_model
    from medview.ai.training import data as train_data
    from medview.ai.training.replay import replay_studies
    from medview.ai.training.tasks import mined_mistakes
    from medview.io import saved

    t0 = time.perf_counter()
    n = settings.replay_studies
    entry = registry.resolve(base)
    cpu = torch.device("cpu")
    module = load_model(entry.folder, cpu, reuse=False).module
    for study in replay_studies(n, saved.replay_dir(), max(1, os.cpu_count() or 1)) if n else []:
        prepared = train_data.prepare_study(study, entry.card, cache)
        if settings.mined_fraction > 0:
            mined_mistakes(module, entry.card, prepared, cpu, None, settings.mined_threshold)
    seconds = time.perf_counter() - t0
    print(f"rehearsal studies ready in {seconds:.0f} s (once per installation)", flush=True)
    return seconds


def record(entry: dict, path: Path = RESULTS) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"runs": []}
    data["runs"].append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--site", choices=("b", "c"), default="b")
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--slices", type=int, default=None, help="smaller studies (development only)")
    p.add_argument("--test-n", type=int, default=5, help="unseen studies of the new site")
    p.add_argument("--test-a", type=int, default=3, help="unseen studies of site A")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any training Settings field (development: the defaults are what a test run measures)",
    )
    p.add_argument("--work", type=Path, default=Path("/tmp/finetune-protocol"))
    p.add_argument(
        "--test", action="store_true", help="use the test seeds (once, with the frozen defaults)"
    )
    p.add_argument("--test-base", type=int, default=TEST_BASE)
    p.add_argument("--dev-base", type=int, default=DEV_BASE)
    p.add_argument("--note", default="", help="what this run tries, for the results file")
    p.add_argument("--no-record", action="store_true", help="development: do not record")
    a = p.parse_args(argv)
    a.base = a.test_base if a.test else a.dev_base
    seeds = run_range(a.base, a.site, a.draws)
    try:
        if a.test:
            check_test_size(a)
            if a.set:
                raise Refused(
                    "a test run measures the engine's defaults: drop --set (change "
                    "the defaults in Settings first, on development seeds)"
                )
            check_test_range(seeds, committed_runs())
        elif not (seeds[0] >= DEV_BASE and seeds[1] < TEST_BASE):
            raise Refused(
                f"development seeds lie in {DEV_BASE}-{TEST_BASE - 1}: choose another --dev-base"
            )
    except Refused as exc:
        print(f"finetune_protocol: {exc}", file=sys.stderr)
        return 2
    os.environ["MEDVIEW_DATA_DIR"] = str(a.work / "data")
    from medview.ai.models import registry
    from medview.ai.training.job import Settings

    base = max(
        (e for e in registry.list_models() if e.bundled and e.card.name == "lesion-seg"),
        key=lambda e: registry.version_key(e.card.version),
    ).card.ref
    settings = Settings(threads=a.threads)
    for item in a.set:
        settings.assign(item)
    warm = warm_up(base, settings, a.work / "cache")
    kind = "test" if a.test else "development"
    print(
        f"{kind} run: site {a.site.upper()}, base {base}, seeds {seeds[0]}-{seeds[1]}, "
        f"{a.draws} draws, studies {a.slices or 'full size'}; settings {asdict(settings)}",
        flush=True,
    )
    draws = [run_draw(a, d, base) for d in range(a.draws)]
    print("\n" + table(draws, a.site))
    met = goals(draws, a.site)
    for words, ok in met:
        print(f"  {'MET    ' if ok else 'NOT MET'} {words}")
    if kind == "development":
        print("(development seeds: these numbers rank variants; they prove nothing)")
    entry = {
        "kind": kind,
        "site": a.site,
        "seed_range": seeds,
        "base_model": base,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "slices": a.slices,
        "draws": draws,
        "settings": asdict(settings),
        "set": a.set,
        "note": a.note,
        "goals": [[w, ok] for w, ok in met],
        "machine": f"{os.cpu_count()} cores, threads {a.threads}",
        "rehearsal_warm_up_s": round(warm, 1),
    }
    if not a.no_record:
        record(entry)
        print(f"recorded in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())

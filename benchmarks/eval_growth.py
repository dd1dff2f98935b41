"""How well the prior comparison's AI pairing recovers known growth (issue 18 goal: the growth
of each lesion within 5% on the demo study and its follow-up).

For each seed, the demo study and its follow-up (`--months` later: the patient moved on the
table, each lesion grown by a known volume factor, one gone, one new) are generated and
paired as the comparison window pairs them (viewer.growth: aligned by body centre and table
position): once with the findings of the active bundled lesion model (the card's
post-processing included, as the app lists them), and once, as the reference in the same run,
with the findings a perfect model would give (the truth label maps as probabilities through
the same post-processing). Per lesion of the follow-up that has a baseline: whether it was
paired with the right baseline lesion (nearest truth centres), and the measured volume ratio
against the known factor. Printed: paired right / lesions, lesions within 5%, the median
factor error, new and gone found, for both, and their ratio; the load average.

Run: python benchmarks/eval_growth.py [--seeds 0,1] [--months 6] [--slices 160]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

TOLERANCE = 0.05


def perfect_findings(volume, labels_path: Path, card) -> list:
    """The findings of a model whose probabilities are the truth label map."""
    import SimpleITK as sitk

    from medview.ai.findings.postprocess import encode, findings_from

    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(labels_path)))
    codes = np.concatenate(
        [
            encode(np.stack([c == lab.value for lab in card.labels], axis=1).astype(np.float32))
            for c in np.array_split(labels, max(1, len(labels) // 8))
        ]
    )
    return list(findings_from(codes, volume, card, 0.5))


def nearest_id(entries: list[dict], centre) -> int:
    return min(entries, key=lambda e: np.linalg.norm(np.subtract(e["centre_lps_mm"], centre)))["id"]


def score(pairs: list, then_truth: list[dict], now_meta: dict) -> dict:
    """Per known growing lesion: paired right, and the factor error when it was."""
    truth = {t["id"]: t for t in now_meta["follow_up"]["lesions"]}
    errors, right = [], 0
    found_new = found_gone = False
    for p in pairs:
        if p.status == "new":
            found_new |= (
                truth[nearest_id(now_meta["lesions"], p.now.centre_lps_mm)]["baseline_id"] is None
            )
        elif p.status == "gone":
            found_gone |= (
                nearest_id(then_truth, p.then.centre_lps_mm)
                in now_meta["follow_up"]["gone_baseline_ids"]
            )
        else:
            known = truth[nearest_id(now_meta["lesions"], p.now.centre_lps_mm)]
            if known["baseline_id"] is not None and known["baseline_id"] == nearest_id(
                then_truth, p.then.centre_lps_mm
            ):
                right += 1
                errors.append(p.now.volume_ml / p.then.volume_ml / known["volume_factor"] - 1)
    growing = sum(t["baseline_id"] is not None for t in truth.values())
    return {
        "lesions": growing,
        "paired_right": right,
        "within_5pct": int(sum(abs(e) <= TOLERANCE for e in errors)),
        "errors": [round(e, 3) for e in errors],
        "new_found": found_new,
        "gone_found": found_gone,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--months", type=float, default=6.0)
    ap.add_argument("--slices", type=int, default=160)
    args = ap.parse_args()
    from medview.core.jobs import CancelToken, JobContext
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume
    from medview.jobs.inference import infer_job, resolve_model
    from medview.viewer.growth import (
        alignment,
        body_centre_xy,
        lesions_from_findings,
        pair_findings,
    )

    card = resolve_model("lesion-seg")[0]
    load = os.getloadavg()[0]
    totals: dict[str, list] = {"ai": [], "perfect": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            then = generate_demo_study(Path(tmp) / f"{seed}-then", seed=seed, slices=args.slices)
            now = generate_demo_study(
                Path(tmp) / f"{seed}-now",
                seed=seed,
                slices=args.slices,
                follow_up_months=args.months,
            )
            studies = []
            for s in (then, now):
                volume, _ = load_volume([s.series_dir])
                t0 = time.perf_counter()
                gen = infer_job(volume, card.ref, JobContext(CancelToken()), series_key=str(s))
                try:
                    while True:
                        next(gen)
                except StopIteration as stop:
                    result = stop.value
                studies.append((volume, s, result, time.perf_counter() - t0))
            (tv, ts, tr, t_then), (nv, ns, nr, t_now) = studies
            shift = alignment(
                body_centre_xy(tv.array, tv.affine), body_centre_xy(nv.array, nv.affine)
            )
            then_truth = json.loads(ts.lesions_json.read_text())["lesions"]
            now_meta = json.loads(ns.lesions_json.read_text())
            for name, (a, b) in {
                "ai": (tr.findings, nr.findings),
                "perfect": (
                    perfect_findings(tv, ts.labels_path, card),
                    perfect_findings(nv, ns.labels_path, card),
                ),
            }.items():
                pairs = pair_findings(lesions_from_findings(a), lesions_from_findings(b), shift)
                result = score(pairs, then_truth, now_meta)
                totals[name].append(result)
                print(f"seed {seed} {name:7s} {result}")
            print(f"seed {seed}: {card.ref} took {t_then:.0f} s and {t_now:.0f} s")
    print(f"{args.months:g} months, {args.slices} slices, {card.ref}, tolerance {TOLERANCE:.0%}")
    summary = {}
    for name, runs in totals.items():
        errors = [abs(e) for r in runs for e in r["errors"]]
        lesions = sum(r["lesions"] for r in runs)
        summary[name] = sum(r["within_5pct"] for r in runs) / lesions
        print(
            f"{name:7s} paired right {sum(r['paired_right'] for r in runs)}/{lesions}, "
            f"within 5% {sum(r['within_5pct'] for r in runs)}/{lesions}, median factor error "
            f"{np.median(errors) if errors else float('nan'):.1%}, new found "
            f"{sum(r['new_found'] for r in runs)}/{len(runs)}, gone found "
            f"{sum(r['gone_found'] for r in runs)}/{len(runs)}"
        )
    print(
        f"share of lesions within 5%: AI / perfect model = {summary['ai']:.2f} / "
        f"{summary['perfect']:.2f} (ratio {summary['ai'] / max(summary['perfect'], 1e-9):.2f})"
    )
    print(f"load average at the start {load:.2f}, now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

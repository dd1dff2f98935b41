"""`medview demo`: make the synthetic demo study (once) and show what MedView finds in it.

Until the viewer lands this is the README's main job; the study is generated into the user
data folder and reused on later runs, since the same seed gives byte-identical files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def default_demo_dir(seed: int, site: str) -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("medview", appauthor=False)) / "demo" / f"seed{seed}-site{site}"


def run_demo(args: argparse.Namespace) -> int:
    from medview.commands.info import scan_json, scan_text, terminal_progress
    from medview.io.demo import generate_demo_study
    from medview.io.dicom_index import scan

    custom = any(v is not None for v in (args.slices, args.thickness, args.noise, args.lesions)
                 ) or args.no_lesions
    out = Path(args.out) if args.out else default_demo_dir(args.seed, args.site)
    series_dir = out / "series"
    if args.out or custom or not series_dir.is_dir():
        study = generate_demo_study(
            out, seed=args.seed, site=args.site, slices=args.slices,
            thickness_mm=args.thickness, noise_hu=args.noise, n_lesions=args.lesions,
            lesions=not args.no_lesions, progress=terminal_progress)
        series_dir = study.series_dir
    result = scan([series_dir])
    print(json.dumps(scan_json(result), indent=1) if args.json else scan_text(result))
    if not args.json:
        print(f"Demo study in {series_dir.parent} (ground truth: labels.nii.gz, lesions.json)")
    return 0

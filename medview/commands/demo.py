"""`medview demo`: make the synthetic demo study (once) and open it in the viewer, or with
`--no-gui` (or `--json`) show what MedView finds in it.

The study is generated into the MedView data folder (io.saved.demo_dir) and reused on
later runs, since the same seed gives byte-identical files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def default_demo_dir(seed: int, site: str) -> Path:
    from medview.io import saved

    return saved.demo_dir(seed, site)


def demo_series_dir(args: argparse.Namespace) -> Path:
    """The demo series folder for these options, generated unless the default one exists."""
    from medview.commands.info import terminal_progress
    from medview.demo import generate_demo_study

    months = getattr(args, "follow_up_months", None)
    custom = (
        any(v is not None for v in (args.slices, args.thickness, args.noise, args.lesions, months))
        or args.no_lesions
    )
    out = Path(args.out) if args.out else default_demo_dir(args.seed, args.site)
    if months is not None and not args.out:  # beside the baseline, never over it
        out = out.with_name(f"{out.name}-follow-up-{months:g}m")
    series_dir = out / "series"
    if args.out or custom or not series_dir.is_dir():
        if not args.out:
            out.parent.mkdir(parents=True, exist_ok=True)
        study = generate_demo_study(
            out,
            seed=args.seed,
            site=args.site,
            slices=args.slices,
            thickness_mm=args.thickness,
            noise_hu=args.noise,
            n_lesions=args.lesions,
            lesions=not args.no_lesions,
            follow_up_months=months,
            progress=terminal_progress,
        )
        series_dir = study.series_dir
    return series_dir


def demo_paths(args: argparse.Namespace) -> list[Path]:
    """The series folders to open: the demo study; for a follow-up in the data folder, the
    follow-up and its baseline (made with the same options when missing), so the viewer
    opens the follow-up with the baseline offered as its prior."""
    series_dir = demo_series_dir(args)
    if getattr(args, "follow_up_months", None) is None or args.out:
        return [series_dir]
    return [
        series_dir,
        demo_series_dir(argparse.Namespace(**{**vars(args), "follow_up_months": None})),
    ]


def run_demo(args: argparse.Namespace) -> int:
    paths = demo_paths(args)
    series_dir = paths[0]
    if not (args.no_gui or args.json):
        from medview.app import run_gui

        return run_gui([str(p) for p in paths], demo=True)
    from medview.commands.info import scan_json, scan_text
    from medview.io.dicom.index import scan

    result = scan(paths)
    print(json.dumps(scan_json(result), indent=1) if args.json else scan_text(result))
    if not args.json:
        print(f"Demo study in {series_dir.parent} (ground truth: labels.nii.gz, lesions.json)")
    return 0

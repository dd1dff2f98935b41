"""`medview models`: the installed models and versions with their validation numbers;
`medview models activate NAME:VERSION` chooses the version that runs; `medview models import
FILE --card CARD.json` adds the user's own .pt2 or .onnx model as a new version, and `medview
models import PATH` a MONAI bundle (folder or zip; --allow-code for one that runs code) or an
nnU-Net v2 model folder.

Listing reads only the cards (no torch), so it answers at once; a damaged model folder is
reported on its own line and never hides the others. A card's development numbers (measured
on seeds that shaped the model, ai.models.card_numbers) get a line of their own that says so."""

from __future__ import annotations

import json
import sys
from typing import Any

from medview.ai.models.card_numbers import development, development_title
from medview.ai.models.registry import ModelEntry, scan_models
from medview.commands import EXIT_OK, EXIT_USAGE

# validation entries worth a column, matched inside the card's metric names
_MAIN_METRICS = ("dice", "sensitivity", "per_study", "auc", "accuracy", "specificity")
_MAX_METRICS = 5


def main_metrics(validation: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of a card's validation: the top-level numbers whose names speak
    of Dice, sensitivity, something per study (false positives), AUC, accuracy or
    specificity (in the card's order, five at most), else its first few numbers."""
    numbers = {
        k: float(v)
        for k, v in validation.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    main = {k: v for k, v in numbers.items() if any(m in k for m in _MAIN_METRICS)}
    return dict(list((main or numbers).items())[:_MAX_METRICS])


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def entry_json(entry: ModelEntry) -> dict[str, Any]:
    card = entry.card
    return {
        "ref": card.ref,
        "name": card.name,
        "version": card.version,
        "task": card.task,
        "source": "bundled" if entry.bundled else "user",
        "active": entry.active,
        "modality": card.modality,
        "labels": [lab.name for lab in card.labels],
        "architecture": card.architecture,
        "parent_version": card.parent_version,
        "created": card.created,
        "folder": str(entry.folder),
        "main_metrics": main_metrics(card.validation),
        "validation": card.validation,
        "development_metrics": main_metrics(development(card.validation)),
        # an imported model's own published numbers, never mixed with MedView's
        "claims": card.claims,
        "provenance": card.provenance,
        "runs_code_with_consent": bool(card.consent),
    }


def entry_line(entry: ModelEntry, ref_width: int) -> str:
    card = entry.card
    metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in main_metrics(card.validation).items())
    line = (
        f"{card.ref:<{ref_width}}  {card.task:<14}  "
        f"{'bundled' if entry.bundled else 'user':<7}  "
        f"{'active' if entry.active else '':<6}  {metrics or 'no validation results'}"
    ).rstrip()
    dev = main_metrics(development(card.validation))
    if dev:
        line += f"\n{'':<{ref_width}}  {development_title(card.validation)}: " + ", ".join(
            f"{k} {_fmt(v)}" for k, v in dev.items()
        )
    claims = main_metrics(card.claims)
    if claims:
        line += (
            f"\n{'':<{ref_width}}  the model's own claims (not measured by MedView): "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in claims.items())
        )
    return line


def run_list(as_json: bool) -> int:
    listing = scan_models()
    if as_json:
        print(
            json.dumps(
                {"models": [entry_json(e) for e in listing.models], "problems": listing.problems},
                indent=2,
            )
        )
        return EXIT_OK
    if not listing.models:
        print("no models installed")
    width = max((len(e.ref) for e in listing.models), default=0)
    for entry in listing.models:
        print(entry_line(entry, width))
    for problem in listing.problems:
        print(f"medview: {problem}", file=sys.stderr)
    return EXIT_OK


def run_activate(ref: str) -> int:
    from medview.ai.models.registry import activate

    name, _, version = ref.partition(":")
    if not version:
        print(
            f"medview: {ref}: name the version too, NAME:VERSION (see medview models)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    entry = activate(name, version)
    print(f"{entry.ref} now runs for {entry.card.name} and is the default {entry.card.task} model")
    return EXIT_OK


def describe(path: str) -> int:
    """What a MONAI bundle would run, as read without running it."""
    from medview.ai.runtime.bundle_import import opened_bundle

    with opened_bundle(path) as plan:
        for line in plan.description:
            print(line)
        for line in plan.needs_code:
            print(f"needs code: {line}")
        for line in plan.unsupported:
            print(f"cannot run: {line}")
        print(
            "MedView runs it without running code from it"
            if plan.runs_without_code
            else "importing it needs --allow-code"
            if not plan.unsupported
            else "MedView cannot run it"
        )
    return EXIT_OK


def run_import(
    path: str, card: str | None, name: str | None, version: str | None, allow_code: bool = False
) -> int:
    """A .pt2 / .onnx file with --card, TotalSegmentator's task (totalsegmentator:TASK), else
    a MONAI bundle or an nnU-Net v2 folder."""
    from pathlib import Path

    from medview.ai.runtime import totalseg_models

    source = Path(path)
    if card is not None or source.suffix.lower() in (".pt2", ".onnx"):
        from medview.ai.runtime.user_models import import_model

        if card is None:
            print(
                f"medview: {path}: a .pt2 or .onnx model needs its card (--card CARD.json)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        entry = import_model(path, card, name=name, version=version)
    elif totalseg_models.is_reference(path):
        entry = totalseg_models.import_totalseg(path, name=name, version=version)
    elif (source / "dataset.json").is_file() and (source / "plans.json").is_file():
        from medview.ai.runtime.nnunet_models import import_nnunet

        entry = import_nnunet(source, name=name, version=version)
    else:
        from medview.ai.runtime.bundle_import import import_bundle

        entry = import_bundle(source, allow_code=allow_code, name=name, version=version)
    print(f"imported {entry.ref} into {entry.folder}")
    if entry.card.consent:
        print(f"{entry.ref} runs code that came with it; your consent is recorded on its card")
    return EXIT_OK


def run_models(args: Any) -> int:
    if args.models_command == "activate":
        return run_activate(args.ref)
    if args.models_command == "import":
        if args.describe:
            return describe(args.path)
        return run_import(args.path, args.card, args.name, args.version, args.allow_code)
    return run_list(args.json)

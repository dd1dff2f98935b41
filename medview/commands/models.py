"""`medview models`: the installed models and versions with their validation numbers;
`medview models activate NAME:VERSION` chooses the version that runs; `medview models import
FILE --card CARD.json` adds the user's own .pt2 or .onnx model as a new version.

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
    numbers = {k: float(v) for k, v in validation.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    main = {k: v for k, v in numbers.items() if any(m in k for m in _MAIN_METRICS)}
    return dict(list((main or numbers).items())[:_MAX_METRICS])


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def entry_json(entry: ModelEntry) -> dict[str, Any]:
    card = entry.card
    return {
        "ref": card.ref, "name": card.name, "version": card.version, "task": card.task,
        "source": "bundled" if entry.bundled else "user", "active": entry.active,
        "modality": card.modality, "labels": [lab.name for lab in card.labels],
        "architecture": card.architecture, "parent_version": card.parent_version,
        "created": card.created, "folder": str(entry.folder),
        "main_metrics": main_metrics(card.validation), "validation": card.validation,
        "development_metrics": main_metrics(development(card.validation)),
    }


def entry_line(entry: ModelEntry, ref_width: int) -> str:
    card = entry.card
    metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in main_metrics(card.validation).items())
    line = (f"{card.ref:<{ref_width}}  {card.task:<14}  "
            f"{'bundled' if entry.bundled else 'user':<7}  "
            f"{'active' if entry.active else '':<6}  {metrics or 'no validation results'}"
            ).rstrip()
    dev = main_metrics(development(card.validation))
    if dev:
        line += (f"\n{'':<{ref_width}}  {development_title(card.validation)}: "
                 + ", ".join(f"{k} {_fmt(v)}" for k, v in dev.items()))
    return line


def run_list(as_json: bool) -> int:
    listing = scan_models()
    if as_json:
        print(json.dumps({"models": [entry_json(e) for e in listing.models],
                          "problems": listing.problems}, indent=2))
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
        print(f"medview: {ref}: name the version too, NAME:VERSION (see medview models)",
              file=sys.stderr)
        return EXIT_USAGE
    entry = activate(name, version)
    print(f"{entry.ref} now runs for {entry.card.name} and is the default "
          f"{entry.card.task} model")
    return EXIT_OK


def run_import(path: str, card: str, name: str | None, version: str | None) -> int:
    from medview.ai.runtime.user_models import import_model

    entry = import_model(path, card, name=name, version=version)
    print(f"imported {entry.ref} into {entry.folder}")
    return EXIT_OK


def run_models(args: Any) -> int:
    if args.models_command == "activate":
        return run_activate(args.ref)
    if args.models_command == "import":
        return run_import(args.path, args.card, args.name, args.version)
    return run_list(args.json)

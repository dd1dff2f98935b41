"""Put numbers measured on fresh demo seeds on the bundled models' cards, and keep the
numbers measured during development beside them, labelled as such.

The recipe's validation seeds (1001-1010) were looked at while the models were designed:
lesion-seg 1.2's extra training phase was made from 1.1's misses there, and each version was
kept or changed after its numbers on them. Numbers on those seeds are development numbers.
This step scores every version through the same evaluation code
(medview.ai.bundled.evaluation, run by benchmarks/eval_models.py) on demo seeds that no
training, tuning or design decision used, and rewrites only the card's `validation`: the
weights and everything else stay, so weights_sha256 stays valid.

Speed is not on the cards: it is the machine's and its load's as much as the model's. On the
shared 2-core machine the cards were made on, evaluation.seconds_per_slice gave lesion-seg
1.2 273 ms a 512² slice with 1 thread and 2743 ms with 2 at load average 15, against the
28.7 ms once typed into the 1.1 and 1.2 cards from an unloaded run. benchmarks/bench_infer.py
measures speed against references in the same run.

    python benchmarks/eval_models.py --seeds 3001-3020 --models seg --seg-version 1.2 \\
        --threads 1 > seg-1.2.json          # and so on for each version
    python -m medview.ai.bundled.held_out seg-1.2.json seg-1.1.json ... cls-1.0.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medview.ai.models.card_numbers import DEVELOPMENT, seed_range
from medview.ai.models.cards import CARD_FILE, card_from_dict, load_card

# what eval_models adds around the evaluation's numbers, and speeds (typed or measured):
# none goes on a card
NOT_ON_CARD = (
    "model",
    "wall_s",
    "goals_met",
    "card_reproduces",
    "seconds_per_study",
    "eval_seconds_per_study",
    "speed_measured_on",
)
SPEED_PREFIXES = ("ms_per_512_slice_", "study_300_slices_s_")
DEVELOPMENT_NOTE = (
    "Development numbers: measured on demo seeds {seeds}, which were looked at while the "
    "bundled models were developed (each version was kept or changed after its numbers "
    "there; lesion-seg 1.2's extra training phase was designed on 1.1's misses there), so "
    "they flatter the model. The held-out numbers above them are the ones to quote."
)
HELD_OUT_NOTE = (
    "Held-out numbers: medview.ai.bundled.evaluation on demo seeds {seeds} (site A), chosen "
    "after every bundled version was made; no training, tuning or design decision of a "
    "bundled model used them (benchmarks/bench_finetune.py fine-tunes on the site-B scans of "
    "seeds 3001-3012, the same patients; none of those runs shaped a bundled version)."
)


def _is_speed(key: str) -> bool:
    return key in NOT_ON_CARD or key.startswith(SPEED_PREFIXES)


def development_numbers(validation: dict[str, Any]) -> dict[str, Any]:
    """A card's numbers from development, labelled: its `development` block when it has
    one, else its top-level numbers (what the recipe measured on its validation seeds)."""
    if isinstance(validation.get(DEVELOPMENT), dict):
        return dict(validation[DEVELOPMENT])
    dev = {k: v for k, v in validation.items() if not _is_speed(k)}
    seeds = dev.pop("held_out_seeds", None)
    return {
        "note": DEVELOPMENT_NOTE.format(seeds=seed_range(seeds) or "not recorded"),
        "seeds": seeds,
        **dev,
    }


def held_out_validation(old: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """The card's new validation: the measured numbers on top (seeds and missed lesions in
    order) and the old numbers under `development`."""
    new = {k: v for k, v in measured.items() if not _is_speed(k)}
    seeds = sorted(new["held_out_seeds"])
    new["held_out_seeds"] = seeds
    if isinstance(new.get("missed_ge_6mm"), list):
        new["missed_ge_6mm"] = sorted(new["missed_ge_6mm"], key=lambda m: (m["seed"], m["id"]))
    new["measured"] = HELD_OUT_NOTE.format(seeds=seed_range(seeds))
    new[DEVELOPMENT] = development_numbers(old)
    return new


def rewrite_validation(folder: Path, validation: dict[str, Any]) -> None:
    """Replace the card's validation, checked as a card before it is written (atomically)."""
    from medview.io.workspace import atomic_write_text

    path = Path(folder) / CARD_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    data["validation"] = validation
    card_from_dict(data, str(path))
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    load_card(folder)  # the weights still match the sha256 the card names


def main(argv: list[str] | None = None) -> int:
    from medview.ai.models.registry import resolve

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="benchmarks/eval_models.py output")
    a = p.parse_args(argv)
    for file in a.results:
        for measured in json.loads(file.read_text(encoding="utf-8")).values():
            entry = resolve(measured["model"])
            rewrite_validation(entry.folder, held_out_validation(entry.card.validation, measured))
            print(f"{entry.ref}: {len(measured['held_out_seeds'])} held-out studies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

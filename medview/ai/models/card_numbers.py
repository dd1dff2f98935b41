"""Which of a model card's validation numbers were measured on data nobody had looked at,
and which while the model was being developed.

A bundled card's top-level validation numbers come from demo seeds picked after every
version was made (`held_out_seeds`): no training, tuning or design decision saw them. The
numbers measured while the models were developed sit under `validation["development"]`
with a `note` saying what those seeds decided (lesion-seg 1.2's extra training phase was
designed on 1.1's misses there), because a number measured on data that shaped the model
flatters it. Every place that shows a card (the AI panel, the Versions list, the About
dialog, `medview models`) names them with DEVELOPMENT_LABEL, never as plain validation.
Torch-free, like the rest of ai.models."""

from __future__ import annotations

from typing import Any

DEVELOPMENT = "development"
DEVELOPMENT_LABEL = "development numbers (not held out)"


def development(validation: dict[str, Any]) -> dict[str, Any]:
    """The card's development measurement ({} when it has none)."""
    raw = validation.get(DEVELOPMENT)
    return raw if isinstance(raw, dict) else {}


def numbers(values: dict[str, Any]) -> dict[str, float]:
    """The plain numbers of a validation dict (not lists, objects or flags)."""
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def seed_range(seeds: object) -> str:
    """'3001-3020' for a run of demo seeds, '1, 5, 9' otherwise, '' for none."""
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        return ""
    if sorted(seeds) == list(range(min(seeds), max(seeds) + 1)) and len(seeds) > 2:
        return f"{min(seeds)}-{max(seeds)}"
    return ", ".join(map(str, seeds))


def development_title(validation: dict[str, Any]) -> str:
    """'Development numbers (not held out; demo seeds 1001-1010)', '' when there are none."""
    dev = development(validation)
    if not dev:
        return ""
    seeds = seed_range(dev.get("seeds"))
    return (
        DEVELOPMENT_LABEL[0].upper()
        + DEVELOPMENT_LABEL[1:-1]
        + (f"; demo seeds {seeds})" if seeds else ")")
    )

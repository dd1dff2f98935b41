"""Is a fine-tuned version better than its parent on the reader's own studies? One sentence,
in words, from the card's cross-validated numbers (validation.fine_tune.cross_validation,
written by training.crossval), shown next to Activate in the Versions list and the Compare
view: "Not better than 1.2 on your 8 studies: Dice -0.05 ± 0.08; false positives +1.5 a
study."

The rule is stated where it is applied, so the reader can check it:
- better: the Dice change's 95% interval lies above 0 and false positives a study did not
  rise;
- not clearly better: Dice rose on average but the interval reaches 0 or below (few
  studies, or studies that disagree), and false positives did not rise;
- not better: Dice fell on average, or false positives rose.
Nothing is activated on this verdict: the reader decides (registry.activate).

A card from before cross-validation (one held-out split, no intervals) gets the same words
from its parent_metrics, with the number of validation studies and "no interval". Torch-
and Qt-free: the UI reads it from the card."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BETTER, UNCLEAR, WORSE = "better", "not clearly better", "not better"


@dataclass(frozen=True)
class Verdict:
    level: str  # BETTER, UNCLEAR or WORSE
    text: str  # the sentence a reader sees


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}".replace("-", "−")


def _change(change: dict | None, digits: int) -> str | None:
    """'+0.10 ± 0.04' (or without ± when no interval), None when not measured."""
    if not change or not isinstance(change.get("mean"), (int, float)):
        return None
    half = change.get("half_width")
    tail = f" ± {half:.{digits}f}" if isinstance(half, (int, float)) else " (no interval)"
    return _signed(float(change["mean"]), digits) + tail


def judge(dice: dict | None, fp: dict | None) -> str:
    """The level from the Dice change and the false-positive change ({"mean",
    "half_width"})."""
    d = (dice or {}).get("mean")
    rose = isinstance((fp or {}).get("mean"), (int, float)) and fp["mean"] > 0
    if not isinstance(d, (int, float)) or d <= 0 or rose:
        return WORSE
    half = (dice or {}).get("half_width")
    if not isinstance(half, (int, float)) or d - half <= 0:
        return UNCLEAR
    return BETTER


def verdict(validation: dict[str, Any], parent_version: str) -> Verdict | None:
    """The verdict of a card's validation numbers against its parent; None for a version
    that is not a fine-tune (a bundled one is measured on its own held-out studies)."""
    ft = validation.get("fine_tune") if isinstance(validation, dict) else None
    if not isinstance(ft, dict):
        return None
    cv = ft.get("cross_validation")
    if isinstance(cv, dict):
        dice, fp = (
            cv.get("change", {}).get("dice"),
            cv.get("change", {}).get("false_positives_per_study"),
        )
        n = cv.get("studies")
    else:  # one validation split, before cross-validation: differences without intervals
        parent = ft.get("parent_metrics") or {}
        vals = ft.get("val_studies", [])
        n = vals if isinstance(vals, int) else len(vals)

        def diff(key: str) -> dict | None:
            a, b = parent.get(key), validation.get(key)
            ok = all(isinstance(v, (int, float)) for v in (a, b))
            return {"mean": b - a, "half_width": None} if ok else None

        dice, fp = diff("dice_mean"), diff("false_positives_per_study")
    level = judge(dice, fp)
    studies = f"your {n} stud{'y' if n == 1 else 'ies'}" if isinstance(n, int) else "your studies"
    parts = [f"Dice {_change(dice, 2) or 'not measured'}"]
    fp_text = _change(fp, 1)
    if fp_text is not None:
        parts.append(f"false positives {fp_text} a study")
    head = {BETTER: "Better than", UNCLEAR: "Not clearly better than", WORSE: "Not better than"}[
        level
    ]
    text = f"{head} {parent_version} on {studies}: {'; '.join(parts)}."
    if level == UNCLEAR:
        text += " The interval includes no gain."
    return Verdict(level, text)

"""How sure a number measured on a handful of studies is: 95% intervals over studies.

A fine-tune is judged on the 5-20 studies a reader labelled; one study more or less moved a
card's Dice by 0.15 (issue 15), so every number a card gives comes with its interval and the
count of studies behind it. Two kinds:

- `bootstrap_interval`: a pooled statistic (Dice of all voxels summed over studies, lesions
  found over lesions, false positives a study) recomputed on studies drawn with replacement,
  the 2.5th and 97.5th percentiles; seeded, so a card is the same every time.
- `paired_change`: the mean of per-study differences (new - parent on the same study) with
  Student's t half-width, the "Dice -0.05 ± 0.08" a verdict states; paired, because the
  studies' own difficulty varies far more than the versions differ.

numpy and scipy only: the findings layer, used by the training engine and readable without
torch."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000


def bootstrap_interval(
    items: Sequence[Any],
    statistic: Callable[[list[Any]], float | None],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> tuple[float, float] | None:
    """(low, high) of `statistic` over `items` resampled with replacement; None with fewer
    than 2 items (one study says nothing about the spread) or when the statistic is
    undefined on most draws (e.g. no lesion in them)."""
    if len(items) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        drawn = [items[i] for i in rng.integers(0, len(items), len(items))]
        value = statistic(drawn)
        if value is not None:
            values.append(value)
    if len(values) < resamples // 2:
        return None
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_change(
    new: Sequence[float | None], parent: Sequence[float | None]
) -> dict[str, float | int | None]:
    """Mean of new - parent over the studies where both are defined, with the 95% t
    half-width (None with one study) and the number of studies: {"mean", "half_width",
    "n"}; mean None when no study has both."""
    diffs = [a - b for a, b in zip(new, parent, strict=True) if a is not None and b is not None]
    n = len(diffs)
    if n == 0:
        return {"mean": None, "half_width": None, "n": 0}
    mean = float(np.mean(diffs))
    if n < 2:
        return {"mean": round(mean, 4), "half_width": None, "n": 1}
    from scipy.stats import t

    sd = float(np.std(diffs, ddof=1))
    half = float(t.ppf(0.5 + LEVEL / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": round(mean, 4), "half_width": round(half, 4), "n": n}

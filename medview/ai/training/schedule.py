"""The learning-rate schedule of every MedView training run: the bundled models' recipe and
the fine-tune engine share it, so a fine-tune continues the way its base was trained."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 2% of the peak learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    q = (step - warmup) / max(1, total - warmup)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(q, 1.0)))

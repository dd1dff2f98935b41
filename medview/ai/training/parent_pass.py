"""One pass of the parent over each of the reader's studies, for two uses.

A cross-validated fine-tune needs the parent's mistakes in every training study (the mined
hard negatives, tasks.mined_mistakes) and the parent's scores on every study a fold holds out
(metrics.scores_kept). Each used to segment the study on its own: about 7 s and 20 s a
300-slice study on a 2-core CPU, the mining pass all but wasted. Here one segmentation through
the app's own path gives both: the mistakes are the raw label map at 0.5 (before the
postprocess, as mining has always taken them), the scores those of the listed findings. Both
are kept where the two callers look, so they find them and segment nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from medview.ai.models.cards import ModelCard
from medview.ai.training.data import PreparedStudy, save_cached
from medview.ai.training.metrics import Check, kept_scores_path, listed_segmentation, score
from medview.ai.training.tasks import mined_path


def parent_pass(
    module: Any,
    card: ModelCard,
    studies: list[PreparedStudy],
    device: Any,
    progress: Callable[[int, int], None] | None = None,
    check: Check = None,
    threshold: float = 0.5,
) -> None:
    """Keep the parent's mined mistakes (at `threshold`, Settings.mined_threshold) and scores
    of each study that lacks either (progress(i, n) after each study; check: a stop)."""
    from medview.ai.findings.postprocess import label_map_at
    from medview.ai.findings.scoring import sample_mistakes
    from medview.io.workspace import atomic_write_text

    values = [lab.value for lab in card.labels]
    for i, st in enumerate(studies):
        mined, kept = mined_path(card, st, threshold), kept_scores_path(card, st)
        if mined.exists() and (kept is None or kept.exists()):
            continue
        _, result, listed = listed_segmentation(module, card, st, device, check)
        gt = np.asarray(st.labels)
        if kept is not None:
            atomic_write_text(kept, json.dumps(score(listed, gt, st.spacing_mm, values, 1)))
        raw = label_map_at(result.codes, card, threshold, result.coarse_max)
        save_cached(mined, sample_mistakes(raw, gt, np.random.default_rng(0)))
        if progress is not None:
            progress(i + 1, len(studies))

"""Two versions of a model run on the same open series, one after the other, as one job: the
comparison view of the fine-tuning issue (a fine-tuned version beside its parent, or any
two versions of a model) shows both outputs on the study the reader has open.

Each version runs as the AI panel runs it (jobs.ai_assist.live_infer_job: one torch thread,
a result kept from an earlier run of the same version on the same series is reused without
loading the model). Versions with a kept result go first: running the other one first
could push a kept result out (ai.inference keeps only MAX_KEPT). Each version's result is
emitted (`VersionRun`) as soon as it is in, with its label map made here, off the GUI
thread; progress covers both runs (0..0.5 the first, 0.5..1 the second)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medview.ai.models.cards import load_card
from medview.core.jobs import JobContext, Progress
from medview.core.volume import Volume
from medview.jobs.ai_assist import has_kept_result, live_infer_job
from medview.jobs.inference import InferenceResult


def _through(
    scale: Callable[[Progress], Progress], report: Callable[[Progress], None]
) -> Callable[[Progress], None]:
    """A progress callback that scales each report into its model's share of the whole."""
    return lambda p: report(scale(p))


@dataclass(frozen=True)
class VersionRun:
    index: int  # the version's place in the request (0 = A, 1 = B)
    result: InferenceResult
    # uint8 (slice, row, col): what the viewer draws (InferenceResult.label_map)
    label_map: np.ndarray = field(repr=False, compare=False)


def compare_versions_job(
    volume: Volume,
    folders: Sequence[Path],
    ctx: JobContext,
    *,
    series_key: str = "",
    threshold: float = 0.5,
    device: str = "auto",
) -> Generator[Progress, None, list[VersionRun]]:
    """Run each model folder in `folders` on `volume`; returns their runs in request order.
    Cancel lands within a batch of slices of the version running."""
    cards = [load_card(folder) for folder in folders]  # a broken card fails before any run
    kept = [has_kept_result(volume, card, False, series_key) for card in cards]
    order = sorted(range(len(folders)), key=lambda i: not kept[i])
    runs: dict[int, VersionRun] = {}
    share = 1.0 / len(folders)
    for step, index in enumerate(order):

        def scaled(
            p: Progress, base: float = step * share, ref: str = cards[index].ref
        ) -> Progress:
            return Progress(
                -1 if p.fraction < 0 else base + share * p.fraction,
                f"{ref}: {p.message}" if p.message else "",
            )

        sub = JobContext(
            ctx.cancel, None if ctx.progress is None else _through(scaled, ctx.progress), ctx.event
        )
        gen = live_infer_job(
            volume,
            folders[index],
            sub,
            device=device,
            tta=False,
            threshold=threshold,
            series_key=series_key,
        )
        try:
            while True:
                try:
                    p = next(gen)
                except StopIteration as stop:
                    result: InferenceResult = stop.value
                    break
                yield scaled(p)
        finally:
            gen.close()  # cancelled: the version's own `finally` frees its model at once
        run = VersionRun(index, result, result.label_map())
        runs[index] = run
        ctx.emit(run)
    yield Progress(1.0, "both versions in")
    return [runs[i] for i in range(len(folders))]

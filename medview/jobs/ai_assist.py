"""The jobs behind the AI panel, beside jobs.inference: the devices this machine offers, a
model run with torch held to one thread while the viewer is on screen, and a Grad-CAM
explanation of one slice by the slice classifier.

Each imports torch inside the job, on the worker thread, so the window never waits for
torch to load. One thread, set on the thread that runs the model (torch initialises each
thread's pool from it): two threads collapse to a third of one thread's speed when the UI
busies the other core (docs/development.md, "torch"), and a reader who keeps scrolling
matters more than a faster model."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.models.cards import ModelCard, load_card
from medview.ai.runtime.inference import check_fits, kept_result
from medview.core.errors import InvalidInputError, SettingError
from medview.core.jobs import JobContext, Progress
from medview.core.volume import Volume
from medview.jobs.inference import InferenceResult, infer_job

EXPLAIN_WINDOW = 16  # neighbouring slices the classifier reads (as it was validated)


def devices_job(ctx: JobContext) -> Generator[Progress, None, tuple[str, ...]]:
    """The device choices this machine can honour: "auto", "cpu", then "cuda" and "mps"
    where present."""
    yield Progress(-1, "looking for GPUs")
    from medview.ai.runtime.device import choose_device

    found = ["auto", "cpu"]
    for kind in ("cuda", "mps"):
        try:
            choose_device(kind)
        except SettingError:  # this machine has none
            continue
        found.append(kind)
    return tuple(found)


def live_infer_job(
    volume: Volume, model: Any, ctx: JobContext, **options: Any
) -> Generator[Progress, None, InferenceResult]:
    """jobs.inference.infer_job as the viewer runs it: one torch thread (module docstring).
    Same options, same result."""
    from medview.ai.runtime.device import set_threads_for_ui

    set_threads_for_ui(True)
    return (yield from infer_job(volume, model, ctx, **options))


def check_model_fits(volume: Volume, card: ModelCard) -> list[str]:
    """Refuse, in one sentence, a model that does not fit the series (task, modality,
    colour) before anything loads or runs; return what fits only loosely."""
    return check_fits(volume, card, volume.metadata.source or "the series")


def findings_job(
    result: InferenceResult, volume: Volume, threshold: float, ctx: JobContext
) -> Generator[Progress, None, InferenceResult]:
    """The findings of a run at another threshold, from its kept probabilities (no model):
    off the GUI thread, since a model that lights up hundreds of regions takes seconds
    to measure."""
    yield Progress(-1, f"measuring findings at p ≥ {threshold:.2f}")
    return result.at_threshold(volume, threshold)


def has_kept_result(volume: Volume, card: ModelCard, tta: bool, series_key: str) -> bool:
    """Whether this model already ran on this series and its result is kept: showing it
    again then costs no model run (no torch either)."""
    return kept_result(volume, card, tta, series_key) is not None


@dataclass(frozen=True)
class SliceExplanation:
    index: int  # slice (array axis 0) explained
    probability: float  # the classifier's probability that this slice holds a lesion
    heatmap: np.ndarray  # (row, col) float32 0..1: where the evidence lies
    card: ModelCard
    device: str


def _check_classifier(card: ModelCard, volume: Volume, where: str) -> None:
    if card.task != "classification" or card.architecture != "medview.SliceClassifier":
        raise InvalidInputError(
            where,
            f"holds {card.ref}, which is not MedView's slice "
            f"classifier; Grad-CAM explains only that model",
        )
    modality = (volume.metadata.modality or "").upper()
    if volume.is_colour or (modality and modality != card.modality.upper()):
        raise InvalidInputError(
            volume.metadata.source or "the series",
            f"is a {'colour image' if volume.is_colour else modality} "
            f"series; {card.ref} is made for {card.modality}",
        )


def explain_slice_job(
    volume: Volume,
    folder: Path,
    index: int,
    ctx: JobContext,
    device: str = "auto",
    window: int = EXPLAIN_WINDOW,
) -> Generator[Progress, None, SliceExplanation]:
    """The slice classifier's lesion probability for slice `index` (axis 0) and its
    Grad-CAM heatmap, read with up to `window` neighbouring slices around it (the GRU
    needs the context the model was validated with)."""
    card = load_card(folder)
    _check_classifier(card, volume, str(folder))
    if not 0 <= index < volume.shape[0]:
        raise InvalidInputError(None, f"slice {index + 1} is outside the series")
    yield Progress(0.0, f"loading {card.ref}")
    from medview.ai.runtime.device import choose_device, set_threads_for_ui
    from medview.ai.runtime.gradcam import gradcam
    from medview.ai.runtime.loading import load_model

    set_threads_for_ui(True)
    model = load_model(folder, choose_device(device))
    if model.module is None:
        raise InvalidInputError(
            str(folder),
            f"holds {card.ref} as an imported program; Grad-CAM needs the network MedView builds",
        )
    ctx.cancel.raise_if_cancelled()
    n = volume.shape[0]
    start = int(np.clip(index - window // 2, 0, max(n - window, 0)))
    stack = volume.array[start : start + window].astype(np.float32)
    lo, hi = card.intensity.low, card.intensity.high
    np.clip(stack, lo, hi, out=stack)
    stack -= lo
    stack /= hi - lo
    yield Progress(0.3, f"explaining slice {index + 1} with {card.ref}")
    result = gradcam(model.module, stack, target=1)
    t = index - start
    yield Progress(1.0, f"slice {index + 1} explained")
    return SliceExplanation(
        index, float(result.probabilities[t]), result.heatmaps[t], card, str(model.device)
    )

"""Running a segmentation model on an open series, as one job for the GUI, the CLI and tests.

Stages (after MONAI Label's basic_infer, each timed in `InferenceResult.timings`, seconds):
load (the model, when the job loads it), preprocess / predict / postprocess (summed over
batches by ai.inference.segment), findings (connected regions at the threshold).

The model is named by reference ("name[:version]", resolved by the registry), by its folder,
or passed already loaded (the GUI keeps one warm: then `device` is not used). Whether the
model fits the study is checked from its card before any weights load, and a result kept
from an earlier run of the same model on the same series is returned without loading the
model at all. Changing the threshold afterwards needs no model: `at_threshold`.

For a card with a postprocess, the label map (`label_map`, what the viewer's mask, labels
NIfTI and SEG show) holds the listed findings' regions only, so image, export and list agree
at every threshold; other cards' maps show every region at the threshold, as before."""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.findings.postprocess import (
    MAX_FINDINGS,
    FindingList,
    Region,
    findings_for,
    paint_regions,
    quantized_threshold,
)
from medview.ai.models.cards import CARD_FILE, ModelCard, load_card
from medview.ai.runtime.inference import SegmentationResult, check_fits, kept_result, segment
from medview.core.errors import InvalidInputError
from medview.core.findings import Finding
from medview.core.jobs import JobContext, Progress
from medview.core.volume import Volume


@dataclass(frozen=True)
class InferenceResult:
    segmentation: SegmentationResult
    findings: list[Finding]
    card: ModelCard
    threshold: float
    series_key: str
    reused: bool  # True when an earlier run's kept result answered
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # the findings' regions (FindingList.regions); arrays: not compared, not in repr
    regions: tuple[Region, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def model_ref(self) -> str:
        return self.card.ref

    @property
    def device(self) -> str:
        return self.segmentation.device

    def label_map(self, out: np.ndarray | None = None) -> np.ndarray:
        """uint8 (slice, row, col) label values at this result's threshold: the listed
        findings' regions when the card has a postprocess, else every region (the mask the
        findings were cut from)."""
        if self.regions is None:
            return self.segmentation.label_map(self.threshold, out)
        if out is None:
            out = np.zeros(self.segmentation.shape, np.uint8)
        return paint_regions(out, self.regions)

    def prune(self, label_map: np.ndarray) -> bool:
        """Make `label_map` (this run's map at this threshold, e.g. the one the slider drew
        from the segmentation before these findings were measured) show the listed
        findings only; False, leaving it as it is, for a card without a postprocess."""
        if self.regions is None:
            return False
        paint_regions(label_map, self.regions)
        return True

    def at_threshold(self, volume: Volume, threshold: float) -> InferenceResult:
        """The same run's findings at another threshold, from the kept probabilities."""
        t0 = time.perf_counter()
        threshold = _checked(threshold)
        found = findings_for(self.segmentation, volume, threshold)
        timings = {**self.timings, "findings": time.perf_counter() - t0}
        warnings = [*self.segmentation.warnings, *_capped(found)]
        return replace(
            self,
            findings=found,
            threshold=threshold,
            timings=timings,
            warnings=warnings,
            regions=found.regions,
        )


def _capped(found: FindingList) -> list[str]:
    if len(found) < MAX_FINDINGS:
        return []
    return [
        f"Only the {len(found)} largest of {len(found) + found.omitted} regions are "
        f"listed; this model may not suit this study."
    ]


def _checked(threshold: float) -> float:
    try:
        quantized_threshold(float(threshold))
    except (TypeError, ValueError):
        raise InvalidInputError(
            None, f"threshold must be above 0 and at most 1, not {threshold}"
        ) from None
    return float(threshold)


def resolve_model(model: Any) -> tuple[ModelCard, Path | None, Any]:
    """(card, folder, loaded model or None) for a reference, a folder or a loaded model."""
    if hasattr(model, "predict") and hasattr(model, "card"):
        return model.card, None, model
    if isinstance(model, Path) or (isinstance(model, str) and (Path(model) / CARD_FILE).is_file()):
        return load_card(model), Path(model), None
    from medview.ai.models.registry import resolve

    entry = resolve(str(model))
    return entry.card, Path(entry.folder), None


@dataclass(frozen=True)
class PartialSegmentation:
    """Emitted (ctx.emit) once in a run with a focus, as soon as the slab around the
    reader's slice is done: `result` holds study slices span[0]..span[1]-1 only (a copy,
    empty elsewhere) and the findings in them, measured on the worker's thread. The run goes
    on; its InferenceResult replaces this one."""

    result: InferenceResult
    span: tuple[int, int]


def infer_job(
    volume: Volume,
    model: Any,
    ctx: JobContext,
    device: str = "auto",
    tta: bool = False,
    threshold: float = 0.5,
    series_key: str = "",
    batch_size: int | None = None,
    focus: int | None = None,
) -> Generator[Progress, None, InferenceResult]:
    """Segment `volume` with `model` and cut findings at `threshold`. `series_key` (the
    SeriesInfo key) lets a second run on the same series reuse the first one's result.
    `focus` (the slice the reader looks at) is computed first and announced with a
    PartialSegmentation (its findings measured) through ctx.emit, then the rest
    (ai.runtime.inference.segment)."""
    threshold = _checked(threshold)
    yield Progress(0.0, "checking the model")
    card, folder, loaded = resolve_model(model)
    check_fits(volume, card, volume.metadata.source or "the series")  # before any loading
    timings: dict[str, float] = {}
    announced: list[tuple[int, int]] = []

    def partial(seg: SegmentationResult, span: tuple[int, int]) -> None:
        """The focus slab (the first part done) with its findings; later parts are not
        announced: the whole result follows soon after."""
        if not announced:
            announced.append(span)
            part = seg.slab(span)
            found = findings_for(part, volume, threshold)
            ctx.emit(
                PartialSegmentation(
                    InferenceResult(
                        part, found, card, threshold, series_key, False, {}, [], found.regions
                    ),
                    span,
                )
            )

    seg = kept_result(volume, card, tta, series_key)
    reused = seg is not None
    own_model = None
    try:
        if seg is None:
            if loaded is None:
                from medview.ai.runtime.device import choose_device
                from medview.ai.runtime.loading import load_model

                yield Progress(0.0, f"loading {card.ref}")
                t0 = time.perf_counter()
                loaded = own_model = load_model(folder, choose_device(device))
                timings["load"] = time.perf_counter() - t0
            ctx.cancel.raise_if_cancelled()
            yield Progress(0.0, f"running {card.ref}")
            seg = segment(
                volume,
                loaded,
                batch_size=batch_size,
                progress=ctx.progress,
                cancel=ctx.cancel,
                tta=tta,
                series_key=series_key,
                reuse=False,
                focus=focus,
                on_partial=partial,
            )
            timings.update(seg.timings)
        yield Progress(0.98, "measuring findings")
        t0 = time.perf_counter()
        found = findings_for(seg, volume, threshold)
        timings["findings"] = time.perf_counter() - t0
    finally:
        if own_model is not None:  # a model this job loaded goes with the job
            from medview.ai.runtime.inference import release_device_memory

            device_of = own_model.device
            own_model = loaded = None
            release_device_memory(device_of)
    yield Progress(1.0, f"{len(found)} finding(s)")
    return InferenceResult(
        seg,
        found,
        card,
        threshold,
        series_key,
        reused,
        timings,
        [*seg.warnings, *_capped(found)],
        found.regions,
    )

"""3D sliding-window segmentation of a study with an imported MONAI model (volume_models).

The study is turned and resampled to the model's grid (model_grid), normalised as the card
says, and run window by window with MONAI's sliding_window_inference (overlapping windows,
Gaussian or constant blending as the bundle's inferer does); the blended scores become class
probabilities and are sampled back onto the study's own voxels, where they are kept exactly as
the 2.5D runner keeps its own (inference.SegmentationResult).

- Progress is reported per window and the cancel flag checked before each one, so a cancel
  lands within one window's time.
- Out of memory on a GPU: first fewer windows at a time (sw_batch_size halved down to 1),
  then smaller windows (halved, not below MIN_ROI), then the CPU; each kind of step is said
  once in the result's warnings.
- Progressive: given the slice the reader looks at (`focus`), the model-grid slab around it
  is computed first and handed to `on_partial` on the study's grid at once; then the rest of
  the volume, each part with half a window of context so the seams blend."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from medview.ai.models.cards import ModelCard, Volume3D
from medview.ai.runtime.device import is_out_of_memory
from medview.ai.runtime.model_grid import ModelGrid
from medview.core.errors import ResourceLimitError
from medview.core.jobs import CancelToken, ProgressCallback, report
from medview.core.volume import Volume

MIN_ROI = 16
FOCUS_HALF_SLICES = 8  # study slices either side of the focus computed first


def normalise(image: np.ndarray, card: ModelCard) -> np.ndarray:
    """In place: the card's intensity normalisation (cards.Volume3D)."""
    spec = card.volume3d
    assert spec is not None
    if spec.normalise == "zscore":
        values = image[image != 0] if spec.nonzero else image
        mean, std = (float(values.mean()), float(values.std())) if values.size else (0.0, 1.0)
        image -= mean
        image /= max(std, 1e-8)
        return image
    lo, hi = card.intensity.low, card.intensity.high
    image -= lo
    image *= (spec.out_high - spec.out_low) / (hi - lo)
    image += spec.out_low
    if spec.clip:
        np.clip(
            image, min(spec.out_low, spec.out_high), max(spec.out_low, spec.out_high), out=image
        )
    return image


def window_count(shape: tuple[int, ...], roi: tuple[int, ...], overlap: float) -> int:
    """Windows sliding_window_inference runs over `shape` (as monai.data.dense_patch_slices)."""
    total = 1
    for n, r in zip(shape, roi, strict=True):
        step = max(int(r * (1 - overlap)), 1)
        total *= 1 if n <= r else -(-(n - r) // step) + 1
    return total


class _Windows:
    """Runs sliding_window_inference on model-grid blocks with the out-of-memory fallback,
    counting windows for progress."""

    def __init__(
        self,
        model: Any,
        spec: Volume3D,
        warnings: list[str],
        total: int,
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> None:
        self.model, self.warnings = model, warnings
        self.batch, self.roi = spec.sw_batch_size, tuple(spec.roi_size)
        self.spec, self.total, self.done = spec, max(1, total), 0
        self.progress, self.cancel = progress, cancel
        self._said: set[str] = set()

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """One batch of windows: moved to the model's device by the model, blended on the
        CPU (the volume and its scores never occupy the GPU)."""
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        out = self.model.forward(x)
        self.done += len(x)
        report(
            self.progress,
            min(0.97, 0.97 * self.done / self.total),
            f"{self.model.card.ref}: window {min(self.done, self.total)} of {self.total}",
        )
        return out.to("cpu")

    def run(self, block: np.ndarray) -> torch.Tensor:
        """Blended class scores (K, *block.shape), float32 on the CPU."""
        from monai.inferers import sliding_window_inference

        x = torch.from_numpy(np.ascontiguousarray(block))[None, None]
        start = self.done
        while True:
            try:
                with torch.inference_mode():  # the blending buffers too, not just the model
                    out = sliding_window_inference(
                        x,
                        self.roi,
                        self.batch,
                        self._predict,
                        overlap=self.spec.overlap,
                        mode=self.spec.blend,
                        device=torch.device("cpu"),
                    )
                return out[0]
            except Exception as exc:  # only out-of-memory is handled; the rest re-raised
                if not is_out_of_memory(exc):
                    raise
                self.done = start
                self._shrink(exc)

    def _say(self, kind: str, sentence: str) -> None:
        if kind not in self._said:
            self._said.add(kind)
            self.warnings.append(sentence)

    def _shrink(self, exc: BaseException) -> None:
        from medview.ai.runtime.inference import release_device_memory

        device = torch.device(self.model.device)
        release_device_memory(device)
        name = device.type.upper()
        if self.batch > 1:
            self.batch //= 2
            self._say("batch", f"The {name} ran out of memory; fewer windows now run at a time.")
        elif max(self.roi) > MIN_ROI:
            self.roi = tuple(max(MIN_ROI, r // 2) for r in self.roi)
            self._say(
                "roi",
                f"The {name} ran out of memory; smaller windows now run "
                f"(halved each time, down to {MIN_ROI} voxels a side).",
            )
        elif device.type != "cpu":
            self.model = self.model.to(torch.device("cpu")) or self.model
            self._say(
                "cpu",
                f"The {name} ran out of memory even for the smallest windows; "
                f"the model finished on the CPU (slower).",
            )
        else:
            raise ResourceLimitError(
                None,
                "Not enough memory to run the model on its "
                "smallest window; close other studies and try "
                "again.",
            ) from exc


def _probabilities(scores: torch.Tensor, logits: bool) -> torch.Tensor:
    return torch.softmax(scores, dim=0) if logits else scores


def _parts(
    grid: ModelGrid, focus: int | None, roi: tuple[int, ...]
) -> list[tuple[int, int, int, int]]:
    """Model-grid parts along the study's slice axis as (kept from, kept to, run from, run
    to): the slab around `focus` first, then what lies before and after it, each run with
    half a window of context."""
    n = grid.shape[grid.slice_axis]
    if focus is None:
        return [(0, n, 0, n)]
    s = grid.study_shape[0]
    k = min(max(int(focus), 0), s - 1)
    a, b = grid.model_range(max(0, k - FOCUS_HALF_SLICES), min(s, k + FOCUS_HALF_SLICES + 1))
    margin = roi[grid.slice_axis] // 2
    parts = [(a, b, max(0, a - margin), min(n, b + margin))]
    if a > 0:
        parts.append((0, a, 0, min(n, a + margin)))
    if b < n:
        parts.append((b, n, max(0, b - margin), n))
    return parts


def segment_volume(
    volume: Volume,
    model: Any,
    *,
    store: Callable[[int, np.ndarray], None],
    warnings: list[str],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    focus: int | None = None,
    on_partial: Callable[[tuple[int, int]], None] | None = None,
) -> dict[str, float]:
    """Segment `volume` with a VolumeModel; `store(k0, probs)` receives float32 (n, K, R, C)
    probabilities of study slices k0..k0+n-1 (inference._Outputs.store), the focus slab's
    first when `focus` is given, then `on_partial((k0, k1))` says which slices are ready.
    Returns timings (seconds)."""
    card: ModelCard = model.card
    spec = card.volume3d
    assert spec is not None
    timings = {"preprocess": 0.0, "predict": 0.0, "postprocess": 0.0}
    t0 = time.perf_counter()
    grid = ModelGrid.make(volume, spec)
    image = normalise(grid.to_model(volume.array, _resampling_device(model)), card)
    timings["preprocess"] = time.perf_counter() - t0
    parts = _parts(grid, focus, tuple(spec.roi_size))
    ax = grid.slice_axis
    total = 0
    for _, _, r0, r1 in parts:
        shape = list(grid.shape)
        shape[ax] = r1 - r0
        total += window_count(tuple(shape), tuple(spec.roi_size), spec.overlap)
    windows = _Windows(model, spec, warnings, total, progress, cancel)
    probs = torch.zeros((len(card.labels) + 1, *grid.shape), dtype=torch.float32)
    stored = np.zeros(grid.study_shape[0], bool)
    for keep0, keep1, run0, run1 in parts:
        t1 = time.perf_counter()
        block = np.take(image, np.arange(run0, run1), axis=ax)
        scores = windows.run(block)
        t2 = time.perf_counter()
        index = [slice(None)] * 4
        index[ax + 1] = slice(keep0 - run0, keep1 - run0)
        target = [slice(None)] * 4
        target[ax + 1] = slice(keep0, keep1)
        probs[tuple(target)] = _probabilities(scores[tuple(index)], model.logits)
        k0, k1 = (
            (0, grid.study_shape[0])
            if keep1 - keep0 == grid.shape[ax]
            else grid.study_range(keep0, keep1)
        )
        ready = [k for k in range(k0, k1) if not stored[k]]
        _store_slices(grid, probs, ready, store, _resampling_device(windows.model))
        stored[ready] = True
        timings["predict"] += t2 - t1
        timings["postprocess"] += time.perf_counter() - t2
        if ready and on_partial is not None and len(parts) > 1:
            on_partial((ready[0], ready[-1] + 1))
    t3 = time.perf_counter()
    _store_slices(
        grid,
        probs,
        [k for k in range(grid.study_shape[0]) if not stored[k]],
        store,
        _resampling_device(windows.model),
    )
    timings["postprocess"] += time.perf_counter() - t3
    report(progress, 0.97, f"{card.ref}: {windows.done} windows")
    return timings


def _resampling_device(model: Any) -> torch.device:
    """Resampling runs on the model's CUDA device (tens of times faster than the CPU for a
    300-slice study), else on the CPU (3D grid_sample is not on every other backend)."""
    device = torch.device(model.device)
    return device if device.type == "cuda" and torch.cuda.is_available() else torch.device("cpu")


def _store_slices(
    grid: ModelGrid,
    probs: torch.Tensor,
    slices: list[int],
    store: Callable[[int, np.ndarray], None],
    device: torch.device,
    chunk: int = 8,
) -> None:
    """Sample `probs` back at the listed study slices, in runs of consecutive slices."""
    i = 0
    while i < len(slices):
        j = i
        while j + 1 < len(slices) and slices[j + 1] == slices[j] + 1 and j - i < chunk - 1:
            j += 1
        store(slices[i], grid.to_study(probs, slices[i], slices[j] + 1, device))
        i = j + 1

"""Card-driven segmentation of a whole series: preprocess -> predict in batches of slices ->
postprocess into compact maps (after MONAI Label's basic_infer, each stage timed).

Why it looks the way it does:
- Memory. A 300 x 512 x 512 CT is 150 MiB of int16; a float32 copy would double it and a
  float64 one quadruple it. So nothing volume-sized is ever float: each batch is clipped,
  scaled and stacked into reused float32 buffers (ai/preprocess.py), and what is kept is
  one byte per voxel — the most probable label and its probability (ai/findings.py) — a
  coarse "where could anything be" index for fast thresholding, and with TTA an
  uncertainty map.
- Responsiveness. Progress is reported and the cancel flag checked per batch (and between
  TTA members), so a cancel lands within one batch's time (one slice on the CPU: well
  under a second).
- Robustness. A GPU out-of-memory halves the batch and retries, down to 1, then moves the
  model to the CPU; each step is a sentence in `result.warnings`.
- Reuse. Results are kept in a small module-level cache (see `kept_result`), so running the
  same model on the same series again answers at once.

Preprocessing follows the card (ai/preprocess.py)."""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medview.ai.findings.postprocess import (
    BLOCK,
    UNCERTAINTY_SCALE,
    block_max,
    encode,
    label_map_at,
    level_of,
    probability_of,
)
from medview.ai.models.cards import ModelCard
from medview.ai.runtime.preprocess import Plan
from medview.core.errors import InvalidInputError, ResourceLimitError
from medview.core.jobs import CancelToken, ProgressCallback, report
from medview.core.volume import Volume

MAX_KEPT = 2  # results kept for reuse: each half the int16 volume's bytes (more with TTA)
CPU_BATCH, GPU_BATCH = 1, 16
MAX_LABELS = 63  # keeps at least 4 probability levels per label in the one-byte code
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (3,), (2,))  # none, left-right, up-down


@dataclass(eq=False)
class SegmentationResult:
    """What a segmentation model made of one volume, on the volume's own grid.

    codes: uint8 (slice, row, col), per voxel the most probable label and its probability
      in one byte (ai.findings: `probability(value)` decodes one label's map).
    coarse_max: uint8 (slice, ceil(row/BLOCK), ceil(col/BLOCK)), the largest probability
      level in each block: thresholding looks only where this reaches the threshold.
    uncertainty: uint8 (slice, row, col) or None without TTA: per voxel, the largest (over
      labels) standard deviation of the probability across TTA members, times 510.
    No label map is kept: `label_map(threshold)` makes one in a fraction of a second.
    Kept results are shared: their arrays are read-only."""

    codes: np.ndarray
    coarse_max: np.ndarray
    uncertainty: np.ndarray | None
    card: ModelCard
    device: str
    tta: bool
    batch_size: int
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def probability(self, label_value: int, index: Any = ...) -> np.ndarray:
        """uint8 probability (p = v / 255) of one label over `index` of the volume (all of
        it by default; `k` or `np.s_[:, r]` for one plane, as the viewer draws), 0 where
        another label is more probable."""
        for i, lab in enumerate(self.card.labels):
            if lab.value == label_value:
                return probability_of(self.codes[index], len(self.card.labels), i)
        raise KeyError(f"{self.card.ref} has no label {label_value}")

    def max_probability(self, index: Any = ...) -> np.ndarray:
        """uint8 probability (p = v / 255) of the most probable label over `index`: the
        heatmap of all labels at once."""
        return probability_of(self.codes[index], len(self.card.labels), None)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The volume's (slice, row, col) this result lies on."""
        s, r, c = self.codes.shape
        return s, r, c

    def label_map(self, threshold: float = 0.5, out: np.ndarray | None = None) -> np.ndarray:
        """uint8 (slice, row, col) of label values at `threshold` (ai.findings.label_map_at)."""
        return label_map_at(self.codes, self.card, threshold, self.coarse_max, out)

    def slab(self, span: tuple[int, int]) -> SegmentationResult:
        """A copy holding study slices span[0]..span[1]-1 only, empty elsewhere: a run's
        partial result, taken while the run goes on filling this one's maps (np.zeros
        leaves the pages of the empty slices unallocated)."""
        a, b = span

        def part(array: np.ndarray) -> np.ndarray:
            out = np.zeros(array.shape, array.dtype)  # zeros_like would touch every page
            out[a:b] = array[a:b]
            return out

        return SegmentationResult(
            part(self.codes),
            part(self.coarse_max),
            None if self.uncertainty is None else part(self.uncertainty),
            self.card,
            self.device,
            self.tta,
            self.batch_size,
            list(self.warnings),
            dict(self.timings),
        )


# ---------------------------------------------------------------------------------------
# Reuse


@dataclass
class _Kept:
    fingerprint: str
    result: SegmentationResult
    volume: weakref.ref | None  # identity check when there is no series key


_KEPT: OrderedDict[tuple, _Kept] = OrderedDict()
_KEPT_LOCK = threading.Lock()


def _fingerprint(volume: Volume) -> str:
    """Shape, dtype, geometry and a strided sample of ~100k voxels: cheap (about a
    millisecond), and different whenever a series was reloaded with other content."""
    a = volume.array
    step = max(1, a.shape[0] // 32)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((a.shape, str(a.dtype), volume.metadata.source)).encode())
    h.update(np.ascontiguousarray(volume.affine, np.float64).tobytes())
    h.update(np.ascontiguousarray(a[::step, ::8, ::8]).tobytes())
    return h.hexdigest()


def _key(series_key: str, card: ModelCard, tta: bool) -> tuple:
    return (series_key, card.ref, card.weights_sha256, bool(tta))


def kept_result(
    volume: Volume, card: ModelCard, tta: bool = False, series_key: str = ""
) -> SegmentationResult | None:
    """The result kept from an earlier run of this model (name, version and weights hash)
    on this series, or None.

    Invalidation: an entry is used only if the volume's fingerprint (shape, dtype, affine,
    source, a voxel sample) still matches; without a series key it must also be the very
    same Volume object. The oldest entry goes when more than MAX_KEPT are kept, and
    `clear_kept()` drops all (e.g. when studies close)."""
    with _KEPT_LOCK:
        entry = _KEPT.get(_key(series_key, card, tta))
        if entry is None:
            return None
        if entry.volume is not None and entry.volume() is not volume:
            return None
        if entry.fingerprint != _fingerprint(volume):
            return None
        _KEPT.move_to_end(_key(series_key, card, tta))
        return entry.result


def _keep(volume: Volume, series_key: str, result: SegmentationResult) -> None:
    for arr in (result.codes, result.coarse_max, result.uncertainty):
        if arr is not None:
            arr.flags.writeable = False
    entry = _Kept(_fingerprint(volume), result, None if series_key else weakref.ref(volume))
    with _KEPT_LOCK:
        _KEPT[_key(series_key, result.card, result.tta)] = entry
        _KEPT.move_to_end(_key(series_key, result.card, result.tta))
        while len(_KEPT) > MAX_KEPT:
            _KEPT.popitem(last=False)


def clear_kept() -> None:
    with _KEPT_LOCK:
        _KEPT.clear()


# ---------------------------------------------------------------------------------------
# Checks and geometry


def check_fits(volume: Volume, card: ModelCard, where: str) -> list[str]:
    """Refuse a model that does not fit the study, with one sentence; return warnings for
    what fits only loosely (unknown modality)."""
    if card.task != "segmentation":
        raise InvalidInputError(
            where, f"model {card.ref} is a {card.task} model; choose a segmentation model"
        )
    if volume.is_colour:
        raise InvalidInputError(
            where, f"is a colour image; model {card.ref} reads {card.modality} greyscale series"
        )
    if len(card.labels) > MAX_LABELS:
        raise InvalidInputError(
            where,
            f"model {card.ref} has {len(card.labels)} labels; "
            f"MedView runs models of up to {MAX_LABELS}",
        )
    modality = (volume.metadata.modality or "").upper()
    if modality and modality != card.modality.upper():
        raise InvalidInputError(
            where, f"is a {modality} series; model {card.ref} is made for {card.modality}"
        )
    if not modality:
        return [
            f"The image does not say its modality; it was read as {card.modality} in "
            f"the range {card.intensity.low:g}..{card.intensity.high:g}."
        ]
    return []


# ---------------------------------------------------------------------------------------
# Running


class _Outputs:
    """The kept uint8 maps, filled batch by batch from float probabilities."""

    def __init__(self, shape: tuple[int, int, int], n_labels: int, tta: bool) -> None:
        s, h, w = shape
        self.n_labels = n_labels
        self.codes = np.zeros(shape, np.uint8)
        self.hb, self.wb = -(-h // BLOCK), -(-w // BLOCK)
        self.coarse = np.zeros((s, self.hb, self.wb), np.uint8)
        self.uncertainty = np.zeros(shape, np.uint8) if tta else None
        self.timings = {"preprocess": 0.0, "predict": 0.0, "postprocess": 0.0}

    def store(self, k0: int, total: np.ndarray, sq: np.ndarray | None, members: int) -> None:
        n = len(total)
        mean = total[:, 1:]
        if members > 1:
            mean /= members
        codes = self.codes[k0 : k0 + n]
        codes[...] = encode(mean)
        self.coarse[k0 : k0 + n] = block_max(level_of(codes, self.n_labels))
        if self.uncertainty is not None and sq is not None:
            var = sq[:, 1:] / members - mean * mean
            std = np.sqrt(np.maximum(var, 0, out=var), out=var).max(axis=1)
            self.uncertainty[k0 : k0 + n] = np.clip(std * UNCERTAINTY_SCALE + 0.5, 0, 255)


class _Runner:
    """Predicts one batch, halving the batch and then falling back to the CPU on GPU
    out-of-memory errors."""

    def __init__(self, model: Any, batch_size: int | None, warnings: list[str]) -> None:
        if batch_size is None:
            kind = str(getattr(model, "device", "cpu")).split(":")[0]
            batch_size = CPU_BATCH if kind == "cpu" else GPU_BATCH
        self.model, self.batch, self.warnings = model, max(1, int(batch_size)), warnings

    def predict(self, x: np.ndarray, cancel: CancelToken | None) -> np.ndarray:
        from medview.ai.runtime.device import is_out_of_memory

        out: np.ndarray | None = None
        i = 0
        while i < len(x):
            if cancel is not None:
                cancel.raise_if_cancelled()
            try:
                y = self.model.predict(x[i : i + self.batch])
            except Exception as exc:  # only out-of-memory is handled; the rest re-raised
                if not is_out_of_memory(exc):
                    raise
                self._shrink(exc)
                continue
            if out is None:
                out = np.empty((len(x), *y.shape[1:]), np.float32)
            out[i : i + len(y)] = y
            i += len(y)
        assert out is not None
        return out

    def _shrink(self, exc: BaseException) -> None:
        import torch

        device = torch.device(self.model.device)
        release_device_memory(device)
        if self.batch > 1:
            self.batch //= 2
            self.warnings.append(
                f"The {device.type.upper()} ran out of memory; the batch "
                f"was reduced to {self.batch} slice(s)."
            )
        elif device.type != "cpu":
            self.model = self.model.to(torch.device("cpu")) or self.model
            self.warnings.append(
                f"The {device.type.upper()} ran out of memory even for one "
                f"slice; the model finished on the CPU (slower)."
            )
        else:
            raise ResourceLimitError(
                None,
                "Not enough memory to run the model on one slice; "
                "close other studies and try again.",
            ) from exc


def release_device_memory(device: Any) -> None:
    """Hand the GPU allocator's cached blocks back after a run or a cancel, so nothing of
    the run stays on the device (the model's own weights stay with whoever holds it)."""
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.empty_cache()
    elif kind == "mps":
        torch.mps.empty_cache()


def _flip(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(np.flip(a, axes)) if axes else a


def segment(
    volume: Volume,
    model: Any,
    *,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    tta: bool = False,
    series_key: str = "",
    reuse: bool = True,
    focus: int | None = None,
    on_partial: PartialCallback | None = None,
) -> SegmentationResult:
    """Segment every slice of `volume` with a LoadedModel (card, device, predict, to), or a
    3D model (runtime.sliding3d, runtime.nnunet_models) when its card says so.

    batch_size None: CPU_BATCH slices a batch on the CPU (batching gains nothing on a few
    cores and its working memory grows fast: 30 MiB at 1, 190 MiB at 4 for 512^2 here),
    GPU_BATCH on a GPU. Returns the kept result at once when this model already ran on this
    series (see `kept_result`); `reuse=False` always runs (and replaces what was kept).

    Progressive results: with `focus` (the slice the reader looks at), the slices around it
    are computed first and `on_partial(result, (k0, k1))` receives the result so far (its
    maps are filled in as the run goes on) as soon as slices k0..k1-1 are ready."""
    card: ModelCard = model.card
    if reuse:
        kept = kept_result(volume, card, tta, series_key)
        if kept is not None:
            report(progress, 1.0, f"{card.ref}: reused the earlier result")
            return kept
    warnings = check_fits(volume, card, volume.metadata.source or "the series")
    if card.volume3d is not None or card.architecture == "nnunet":
        return _segment_3d(
            volume, model, warnings, progress, cancel, tta, series_key, focus, on_partial
        )
    plan = Plan.make(volume, card)
    runner = _Runner(model, batch_size, warnings)
    out = _Outputs(volume.shape, len(card.labels), tta)
    stack = plan.stack(volume.array, runner.batch)
    members = TTA_FLIPS if tta else TTA_FLIPS[:1]
    s = volume.shape[0]
    done = 0
    try:
        for first, last in _focus_first(s, focus):
            k0 = first
            while k0 < last:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                t0 = time.perf_counter()
                n = min(runner.batch, last - k0)
                x = plan.windows(stack, k0, n)
                t1 = time.perf_counter()
                total = sq = None
                t_back = 0.0
                for axes in members:
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    y = runner.predict(_flip(x, axes), cancel)
                    tb = time.perf_counter()
                    _check_channels(card, y.shape[1])
                    y = plan.outputs(_flip(y, axes))
                    if total is None:
                        total, sq = y, (y * y if tta else None)
                    else:
                        total += y
                        sq += y * y
                    t_back += time.perf_counter() - tb
                t2 = time.perf_counter()
                out.store(k0, total, sq, len(members))
                t3 = time.perf_counter()
                out.timings["preprocess"] += t1 - t0
                out.timings["predict"] += t2 - t1 - t_back
                out.timings["postprocess"] += t3 - t2 + t_back
                k0 += n
                done += n
                report(progress, done / s, f"{card.ref}: {done} of {s} slices")
            if on_partial is not None and (first, last) != (0, s):
                on_partial(_result(out, card, runner, tta, warnings), (first, last))
    finally:
        release_device_memory(getattr(runner.model, "device", "cpu"))
    result = _result(out, card, runner, tta, warnings)
    _keep(volume, series_key, result)
    return result


PartialCallback = Callable[[SegmentationResult, tuple[int, int]], None]


def _check_channels(card: ModelCard, channels: int) -> None:
    if channels != len(card.labels) + 1:
        raise InvalidInputError(
            None,
            f"model {card.ref} gives {channels} output channels "
            f"for {len(card.labels)} labels plus background; the "
            f"card does not match the weights",
        )


FOCUS_HALF = 8  # slices either side of the focus computed first


def _focus_first(s: int, focus: int | None) -> list[tuple[int, int]]:
    """Slice ranges in the order they run: the slab around `focus`, then the rest."""
    if focus is None:
        return [(0, s)]
    k = min(max(int(focus), 0), s - 1)
    a, b = max(0, k - FOCUS_HALF), min(s, k + FOCUS_HALF + 1)
    return [r for r in ((a, b), (0, a), (b, s)) if r[1] > r[0]]


def _result(
    out: _Outputs, card: ModelCard, runner: Any, tta: bool, warnings: list[str]
) -> SegmentationResult:
    return SegmentationResult(
        out.codes,
        out.coarse,
        out.uncertainty,
        card,
        str(getattr(runner.model, "device", "cpu")),
        tta,
        getattr(runner, "batch", 1),
        warnings,
        out.timings,
    )


class _Held:
    """What _result needs of a runner, for the 3D runners (their model may move to the CPU
    on out-of-memory, so the device is read at the end)."""

    def __init__(self, model: Any) -> None:
        self.model, self.batch = model, 1


def _segment_3d(
    volume: Volume,
    model: Any,
    warnings: list[str],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    tta: bool,
    series_key: str,
    focus: int | None,
    on_partial: PartialCallback | None,
) -> SegmentationResult:
    """A 3D model's run (MONAI bundle or nnU-Net), kept like a 2.5D one."""
    out = _Outputs(volume.shape, len(model.card.labels), False)
    held = _Held(model)
    if tta:
        warnings.append("Flip averaging (TTA) is not used with 3D models.")

    def store(k0: int, probs: np.ndarray) -> None:
        _check_channels(model.card, probs.shape[1])
        out.store(k0, probs, None, 1)

    def partial(span: tuple[int, int]) -> None:
        if on_partial is not None:
            on_partial(_result(out, model.card, held, False, warnings), span)

    try:
        if model.card.architecture == "nnunet":
            from medview.ai.runtime.nnunet_models import segment_nnunet as run
        else:
            from medview.ai.runtime.sliding3d import segment_volume as run
        out.timings.update(
            run(
                volume,
                model,
                store=store,
                warnings=warnings,
                progress=progress,
                cancel=cancel,
                focus=focus,
                on_partial=partial,
            )
        )
    finally:
        release_device_memory(getattr(model, "device", "cpu"))
    result = _result(out, model.card, held, False, warnings)
    _keep(volume, series_key, result)
    return result

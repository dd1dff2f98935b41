"""Card-driven preprocessing of slices for a 2D / 2.5D network, batch by batch, and the way
back from network output to the series' own grid.

- Intensity: clip to the card's low..high (modality units, HU for CT) and scale to 0..1,
  in float32 buffers the size of one batch: never a float copy of the volume.
- 2.5D: slice k's input stacks slices k-c..k+c as channels (c = context_slices // 2),
  replicating the first and last slice at the ends of the series.
- Spacing: in-plane resampling (bilinear, antialiased when shrinking) only when the card's
  expected spacing differs from the series' by more than RESAMPLE_TOLERANCE; smaller
  differences are within what the model saw in training, and resampling would cost time
  and blur small lesions.
- Size: a card's fixed input_size is met by centre padding / cropping; otherwise the plane
  is padded to what the network's down-sampling needs. Outputs are cropped / padded back
  (background where the input was cropped away) and resampled back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.ai.models.cards import ModelCard, pad_multiple
from medview.core.volume import Volume

RESAMPLE_TOLERANCE = 0.25
STACK_SPARE = (
    16  # slices a Stack holds beyond one batch's windows: fewer shifts, 1 MiB each at 512²
)


def resize(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of the last two axes of (N, C, H, W)."""
    if batch.shape[-2:] == tuple(size):
        return batch
    import torch
    import torch.nn.functional as F

    down = size[0] < batch.shape[-2] or size[1] < batch.shape[-1]
    out = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(batch)),
        size=size,
        mode="bilinear",
        align_corners=False,
        antialias=down,
    )
    return out.numpy()


def fit(batch: np.ndarray, size: tuple[int, int], fill: np.ndarray | float) -> np.ndarray:
    """Centre-pad (with `fill`, per channel) or centre-crop the last two axes to `size`."""
    n, k, h, w = batch.shape
    if (h, w) == tuple(size):
        return batch
    out = np.empty((n, k, *size), np.float32)
    out[...] = np.asarray(fill, np.float32).reshape(1, -1, 1, 1)
    src, dst = [], []
    for have, want in ((h, size[0]), (w, size[1])):
        cut, off, m = max(0, (have - want) // 2), max(0, (want - have) // 2), min(have, want)
        src.append(slice(cut, cut + m))
        dst.append(slice(off, off + m))
    out[:, :, dst[0], dst[1]] = batch[:, :, src[0], src[1]]
    return out


@dataclass(frozen=True)
class Plan:
    """How the slices of one volume become network input and how outputs come back."""

    shape: tuple[int, int, int]  # the volume's (slice, row, col)
    resampled: tuple[int, int]  # in-plane size after resampling (== shape[1:] when none)
    padded: tuple[int, int]  # what the network sees
    context: int
    low: float
    high: float

    @staticmethod
    def make(volume: Volume, card: ModelCard) -> Plan:
        s, h, w = volume.shape
        size = (h, w)
        if card.expected_spacing_mm:
            (sr, sc), (er, ec) = volume.spacing_mm[1:], card.expected_spacing_mm
            if abs(sr / er - 1) > RESAMPLE_TOLERANCE or abs(sc / ec - 1) > RESAMPLE_TOLERANCE:
                size = (max(1, round(h * sr / er)), max(1, round(w * sc / ec)))
        if card.input_size:
            padded = (int(card.input_size[0]), int(card.input_size[1]))
        else:
            m = pad_multiple(card)
            padded = (-(-size[0] // m) * m, -(-size[1] // m) * m)
        return Plan(
            (s, h, w),
            size,
            padded,
            card.context_slices,
            float(card.intensity.low),
            float(card.intensity.high),
        )

    def new_slab(self, batch: int) -> np.ndarray:
        """The float32 buffer `inputs` normalises into, reused for every batch."""
        return np.empty((batch + self.context - 1, *self.shape[1:]), np.float32)

    def inputs(self, array: np.ndarray, k0: int, n: int, slab: np.ndarray) -> np.ndarray:
        """Network input (n, context, H', W') for slices k0..k0+n-1 of `array`."""
        half = self.context // 2
        idx = np.clip(np.arange(k0 - half, k0 + n + half), 0, self.shape[0] - 1)
        buf = slab[: len(idx)]
        np.copyto(buf, array[idx], casting="unsafe")
        np.clip(buf, self.low, self.high, out=buf)
        buf -= self.low
        buf *= 1.0 / (self.high - self.low)
        x = np.empty((n, self.context, *self.shape[1:]), np.float32)
        for c in range(self.context):
            x[:, c] = buf[c : c + n]
        return fit(resize(x, self.resampled), self.padded, 0.0)

    def stack(self, array: np.ndarray, batch: int) -> Stack:
        """A Stack of `array`'s normalised slices for batches of up to `batch` slices."""
        return Stack(self, array, batch + self.context - 1 + STACK_SPARE)

    def windows(self, stack: Stack, k0: int, n: int) -> np.ndarray:
        """What `inputs` gives for slices k0..k0+n-1, from a Stack: each slice normalised
        once however many windows hold it, and the windows a view (no re-stacking) unless
        the plan resamples or pads."""
        return fit(resize(stack.window(k0, n), self.resampled), self.padded, 0.0)

    def outputs(self, y: np.ndarray) -> np.ndarray:
        """Network output (n, K, padded) back to (n, K, H, W); cropped-away parts are
        background."""
        background = np.zeros(y.shape[1], np.float32)
        background[0] = 1.0
        return resize(fit(y, self.resampled, background), self.shape[1:])


class Stack:
    """The normalised slices of one volume in 2.5D order, each normalised once.

    `inputs` normalises every slice of a batch's windows, so at batch 1 with 5 context
    slices each slice was clipped and scaled five times and copied into a fresh
    (1, 5, H, W) stack. Here the volume is read as its sequence of windows with the end
    slices repeated (position p holds slice clip(p - context // 2)), a window of positions
    is contiguous, and a batch's (n, context, H, W) input is a strided view of the buffer.
    Moving on past the buffer's end keeps the positions still needed (shifted to the front),
    so a run through the volume normalises each slice once."""

    def __init__(self, plan: Plan, array: np.ndarray, size: int) -> None:
        self.plan, self.array = plan, array
        self.buf = np.empty((size, *plan.shape[1:]), np.float32)
        self.first, self.count = 0, 0  # positions first..first+count-1 are in buf

    def window(self, k0: int, n: int) -> np.ndarray:
        """(n, context, H, W) float32 view: slice k0 + i's window at [i]. Read it only."""
        c = self.plan.context
        need = n + c - 1
        if need > len(self.buf):
            raise ValueError(f"a Stack of {len(self.buf)} positions cannot hold {need}")
        if not (self.first <= k0 and k0 + need <= self.first + self.count):
            self._load(k0, need)
        start = self.buf[k0 - self.first :]
        step, row, col = start.strides
        # writeable, as torch.from_numpy wants without a warning; the windows overlap, so
        # nothing may write into them (fast_network.network_input copies)
        return np.lib.stride_tricks.as_strided(
            start, (n, c, *start.shape[1:]), (step, step, row, col)
        )

    def _load(self, p0: int, need: int) -> None:
        """Positions p0.. into buf from its front, as many as fit (at least `need`)."""
        keep = 0
        if self.first <= p0 < self.first + self.count:
            keep = self.first + self.count - p0
            self.buf[:keep] = self.buf[p0 - self.first : self.count]
        last = len(self.array) + self.plan.context - 1  # positions in all
        count = max(need, min(len(self.buf), last - p0))
        half = self.plan.context // 2
        for at in range(keep, count, 8):  # 8 slices a time: the gathered int16 copy stays small
            ps = np.arange(p0 + at, p0 + min(at + 8, count))
            idx = np.clip(ps - half, 0, len(self.array) - 1)
            part = self.buf[at : at + len(idx)]
            np.copyto(part, self.array[idx], casting="unsafe")
            np.clip(part, self.plan.low, self.plan.high, out=part)
            part -= self.plan.low
            part *= 1.0 / (self.plan.high - self.plan.low)
        self.first, self.count = p0, count

"""What the network sees in a fine-tune: seeded 2.5D patches drawn from the cached studies,
centred on a labelled voxel or anywhere in the body (MONAI's RandCropByPosNegLabel idea),
then augmented on the training device in one batched resampling.

Lesions are a few hundred voxels of tens of millions, so a uniform sampler would almost
never show one: `pos_fraction` of the patches centre near a labelled voxel, every label as
likely as any other (a rare label is not drowned by a common one); `mined_fraction` on the
base model's own false positives in the training studies (hard negatives: without them the
lesion-rich patches teach the model to see lesions everywhere, measured: false positives
per study rose from 30 to 52 on site B); the rest on a voxel inside the body.

Spacing follows the base card: a study whose in-plane spacing differs from the card's by
more than inference's tolerance (preprocess.RESAMPLE_TOLERANCE) is resampled to it here, in
the same affine resampling as the augmentation (flips, a rotation of up to `max_rotate_deg`,
a zoom of up to `max_zoom`), so training sees what inference will feed the model. Intensity
is the card's window scaled to 0..1, then jittered (gain, offset, noise): another scanner's
noise and contrast are exactly what a site shift changes.

Every draw comes from a numpy Generator the caller seeds per epoch and process, so a
resumed run draws the same patches as an uninterrupted one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.ai.models.cards import ModelCard, pad_multiple
from medview.ai.runtime.preprocess import RESAMPLE_TOLERANCE
from medview.ai.training.data import PreparedStudy
from medview.core.errors import InvalidInputError

MAX_FOREGROUND = 50_000  # voxels kept per (study, label) to draw positive centres from
_GRID = 8  # body centres are drawn from a coarse grid


@dataclass(frozen=True)
class Augment:
    enabled: bool = True
    max_rotate_deg: float = 10.0
    max_zoom: float = 0.1  # zoom 1 -/+ this
    # intensity jitter in the card's 0..1 units; small, since 0.01 is 14 HU on a CT window
    # of 1400 HU, and a liver lesion may differ from the liver by 30 HU
    gain: float = 0.03
    offset: float = 0.01
    noise: float = 0.01  # largest added noise SD
    # another scanner (issue 15): each with probability 1/2 a patch gets a softer or
    # sharper kernel, grainy correlated noise, or soft tissue enhanced as after contrast
    scanner: bool = False


def _ratio(study: PreparedStudy, card: ModelCard) -> tuple[float, float]:
    """Source pixels per network pixel along rows and columns."""
    if not card.expected_spacing_mm:
        return 1.0, 1.0
    (sr, sc), (er, ec) = study.spacing_mm[1:], card.expected_spacing_mm
    if abs(sr / er - 1) > RESAMPLE_TOLERANCE or abs(sc / ec - 1) > RESAMPLE_TOLERANCE:
        return er / sr, ec / sc
    return 1.0, 1.0


def check_patch(card: ModelCard, patch: int) -> None:
    m = pad_multiple(card)
    if patch < m or patch % m:
        raise InvalidInputError(
            None, f"patch size {patch} does not suit {card.ref}: use a multiple of {m}"
        )


class PatchSampler:
    def __init__(
        self,
        studies: list[PreparedStudy],
        card: ModelCard,
        patch: int,
        pos_fraction: float = 0.4,
        augment: Augment | None = None,
        mined: list[np.ndarray] | None = None,
        mined_fraction: float = 0.3,
    ) -> None:
        check_patch(card, patch)
        self.studies, self.card, self.patch = studies, card, patch
        self.pos_fraction, self.aug = pos_fraction, augment or Augment()
        self.mined = mined or [np.zeros((0, 3), np.int32)] * len(studies)
        self.mined_studies = [i for i, m in enumerate(self.mined) if len(m)]
        self.mined_fraction = mined_fraction if self.mined_studies else 0.0
        self.half = card.context_slices // 2
        self.low, self.high = float(card.intensity.low), float(card.intensity.high)
        self.ratios = [_ratio(s, card) for s in studies]
        reach = 1.0 / (1.0 - self.aug.max_zoom) if self.aug.enabled else 1.0  # zoomed out
        turn = math.radians(self.aug.max_rotate_deg) if self.aug.enabled else 0.0
        grow = reach * (math.cos(turn) + math.sin(turn))
        self.src = [math.ceil(patch * max(r) * grow) + 2 for r in self.ratios]
        self.foreground: dict[int, list[tuple[int, np.ndarray]]] = {}
        self.body: list[np.ndarray] = []
        rng = np.random.default_rng(0)  # which voxels are kept must not depend on the run
        for i, st in enumerate(studies):
            labels = np.asarray(st.labels)
            idx = np.argwhere(labels > 0)
            values = labels[tuple(idx.T)]
            for v in np.unique(values):
                vox = idx[values == v]
                if len(vox) > MAX_FOREGROUND:
                    vox = vox[rng.choice(len(vox), MAX_FOREGROUND, replace=False)]
                self.foreground.setdefault(int(v), []).append((i, vox.astype(np.int32)))
            grid = np.asarray(st.image[:, ::_GRID, ::_GRID])
            inside = np.argwhere(grid > self.low + 0.05 * (self.high - self.low))
            if not len(inside):
                inside = np.argwhere(np.ones(grid.shape, bool))
            self.body.append((inside * [1, _GRID, _GRID]).astype(np.int32))

    def _centre(self, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """A labelled voxel (moved up to a quarter patch, so the lesion is not always in the
        middle), a voxel the base model wrongly called a label, or one in the body."""
        labels = sorted(self.foreground)
        draw = rng.random()
        if labels and draw < self.pos_fraction:
            pools = self.foreground[labels[rng.integers(len(labels))]]
            s, vox = pools[rng.integers(len(pools))]
            c = vox[rng.integers(len(vox))].copy()
            c[1:] += rng.integers(-self.patch // 4, self.patch // 4 + 1, 2)
            return s, c
        if draw < self.pos_fraction + self.mined_fraction:
            s = self.mined_studies[rng.integers(len(self.mined_studies))]
            return s, self.mined[s][rng.integers(len(self.mined[s]))]
        s = int(rng.integers(len(self.studies)))
        return s, self.body[s][rng.integers(len(self.body[s]))]

    def _crop(self, s: int, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        st, src = self.studies[s], self.src[s]
        n, h, w = st.image.shape
        k, i, j = (int(c) for c in centre)
        ks = np.clip(np.arange(k - self.half, k + self.half + 1), 0, n - 1)
        x = np.zeros((len(ks), src, src), np.float32)  # 0 = the window's low end, as padding
        y = np.zeros((src, src), np.int64)
        i0, j0 = i - src // 2, j - src // 2
        a0, b0 = max(i0, 0), max(j0, 0)
        a1, b1 = min(i0 + src, h), min(j0 + src, w)
        part = np.asarray(st.image[ks, a0:a1, b0:b1], np.float32)
        np.clip(part, self.low, self.high, out=part)
        x[:, a0 - i0 : a1 - i0, b0 - j0 : b1 - j0] = (part - self.low) / (self.high - self.low)
        y[a0 - i0 : a1 - i0, b0 - j0 : b1 - j0] = st.labels[k, a0:a1, b0:b1]
        return x, y

    def batch(self, rng: np.random.Generator, size: int, device: object) -> tuple:
        """(x (size, C, P, P) float32, y (size, 1, P, P) int64) tensors on `device`, and
        the index of the study each patch came from (numpy)."""
        import torch

        xs, ys, drawn = [], [], []
        for _ in range(size):
            s, centre = self._centre(rng)
            xo, yo = self._resample(*self._crop(s, centre), s, rng, device)
            xs.append(xo)
            ys.append(yo)
            drawn.append(s)
        x = torch.cat(xs)
        y = torch.cat(ys).long()
        if self.aug.enabled:
            a = self.aug
            gain = torch.from_numpy(rng.uniform(1 - a.gain, 1 + a.gain, (size, 1, 1, 1)))
            shift = torch.from_numpy(rng.uniform(-a.offset, a.offset, (size, 1, 1, 1)))
            sd = torch.from_numpy(rng.uniform(0, a.noise, (size, 1, 1, 1)))
            noise = torch.from_numpy(rng.standard_normal(x.shape, dtype=np.float32))
            x = (
                x * gain.float().to(device)
                + shift.float().to(device)
                + noise.to(device) * sd.float().to(device)
            )
        if self.aug.enabled and self.aug.scanner:
            x = self._scanner(x, rng, device)
        return x, y, np.asarray(drawn, np.int64)

    def _scanner(self, x: Any, rng: np.random.Generator, device: object) -> Any:
        """What another CT scanner changes, in the card's 0..1 units (HU = low + x *
        (high - low)), each with probability 1/2 a patch: the kernel (x + a (x - blur(x)),
        a in [-1, 0.8]: -1 a smooth kernel's blur, > 0 a sharp kernel's overshoot); noise
        of up to 25 HU standard deviation, its grain coarsened by 0-2 [1, 2, 1] passes; and
        contrast enhancement, soft tissue (0..200 HU) raised by k times its HU, k in
        [-0.3, 0.9] (a liver of 60 HU becomes one of 42-114)."""
        import torch
        import torch.nn.functional as F

        n, c = x.shape[0], x.shape[1]
        span = self.high - self.low
        w = torch.tensor([0.25, 0.5, 0.25], device=device)
        k2 = (w[:, None] * w[None, :]).expand(c, 1, 3, 3)

        def smooth(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), k2, groups=c)

        def pick(lo: float, hi: float) -> torch.Tensor:
            on = rng.random(n) < 0.5
            v = np.where(on, rng.uniform(lo, hi, n), 0.0).astype(np.float32)
            return torch.from_numpy(v).to(device)[:, None, None, None]

        a = pick(-1.0, 0.8)
        x = x + a * (x - smooth(x))
        sd = pick(0.0, 25.0 / span)
        noise = torch.from_numpy(rng.standard_normal(x.shape, dtype=np.float32)).to(device)
        for _ in range(int(rng.integers(0, 3))):
            noise = smooth(noise)
        x = x + sd * noise / noise.std()
        k = pick(-0.3, 0.9)
        soft0, soft1 = (0.0 - self.low) / span, (200.0 - self.low) / span
        return x + k * (x.clamp(soft0, soft1) - soft0)

    def _resample(
        self, x: np.ndarray, y: np.ndarray, s: int, rng: np.random.Generator, device: object
    ) -> tuple:
        """Rotate, zoom, flip and resample one crop to P x P on the device."""
        import torch
        import torch.nn.functional as F

        p, src = self.patch, self.src[s]
        rr, rc = self.ratios[s]
        angle, zoom, flips = 0.0, 1.0, (1.0, 1.0)
        if self.aug.enabled:
            a = self.aug
            angle = math.radians(rng.uniform(-a.max_rotate_deg, a.max_rotate_deg))
            zoom = float(rng.uniform(1 - a.max_zoom, 1 + a.max_zoom))
            flips = tuple(float(v) for v in rng.choice([-1.0, 1.0], 2))
            if rng.random() < 0.5:
                x = x[::-1]  # the context slices upside down: z flip
        kx, ky = p * rc / (zoom * src) * flips[1], p * rr / (zoom * src) * flips[0]
        c, sn = math.cos(angle), math.sin(angle)
        theta = torch.tensor(
            [[[kx * c, -kx * sn, 0.0], [ky * sn, ky * c, 0.0]]], dtype=torch.float32, device=device
        )
        xt = torch.from_numpy(np.ascontiguousarray(x))[None].to(device)
        yt = torch.from_numpy(y.astype(np.float32))[None, None].to(device)
        grid = F.affine_grid(theta, [1, 1, p, p], align_corners=False)
        xo = F.grid_sample(xt, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        yo = F.grid_sample(yt, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        return xo, yo


def validation_slices(
    study: PreparedStudy, rng: np.random.Generator, most: int = 24, background: int = 8
) -> np.ndarray:
    """The slices each epoch's quick validation predicts: those holding labels (at most
    `most`, evenly spread) and a few without (fixed by the seed)."""
    labels = np.asarray(study.labels)
    has = labels.reshape(labels.shape[0], -1).any(axis=1)
    pos, neg = np.flatnonzero(has), np.flatnonzero(~has)
    if len(pos) > most:
        pos = pos[np.linspace(0, len(pos) - 1, most).round().astype(int)]
    neg = rng.choice(neg, min(background, len(neg)), replace=False) if len(neg) else neg
    return np.sort(np.concatenate([pos, neg]).astype(int))

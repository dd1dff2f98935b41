"""What the scanner adds to the ideal image: tissue grain, the reconstruction kernel's blur
or edge overshoot, and correlated quantum noise; then rounding to stored HU.

Noise is uniform white noise smoothed by [1, 2, 1] passes (a few passes of a uniform add up
to a near-Gaussian), scaled so its standard deviation is exactly the site's `noise_hu`; more
passes give the coarse, blotchy grain of a soft kernel, fewer the fine grain of a sharp one.
"""

from __future__ import annotations

import math

import numpy as np

from medview.demo.shapes import F32, blur3
from medview.demo.sites import Site

HU_MIN, HU_MAX = -1024, 3071
_TEXTURE_PERIOD_MM = 7.0
_TEXTURE_FIELDS = 6


def _smooth(a: np.ndarray, passes: int) -> np.ndarray:
    for _ in range(passes):
        blur3(a, 0)
        blur3(a, 1)
    return a


def _kernel_gain(passes: int) -> float:
    """Standard deviation left of unit-variance white noise after `passes` 2D passes."""
    w = np.array([1.0])
    for _ in range(passes):
        w = np.convolve(w, [0.25, 0.5, 0.25])
    return float((w**2).sum())  # per axis; squared sum per axis, two axes -> product below


class Texture:
    """Smooth random fields that give tissues their grain, continuous along z: the field at
    z blends two of a small pool, so neighbouring slices share their texture."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int]) -> None:
        fields = []
        for _ in range(_TEXTURE_FIELDS):
            f = rng.random(shape, dtype=F32) - F32(0.5)
            _smooth(f, 3)
            f /= F32(f.std() + 1e-6)
            fields.append(f)
        self._fields = fields

    def at(self, z: float) -> np.ndarray:
        q = z / _TEXTURE_PERIOD_MM
        k = math.floor(q)
        f = F32(q - k)
        a = self._fields[k % _TEXTURE_FIELDS]
        b = self._fields[(k + 1) % _TEXTURE_FIELDS]
        # equal-power blend keeps the grain's amplitude steady between the pool's fields
        return a * F32(math.cos(f * math.pi / 2)) + b * F32(math.sin(f * math.pi / 2))


def apply_kernel(hu: np.ndarray, site: Site) -> np.ndarray:
    """The reconstruction kernel's point-spread: a soft blur (more passes for a smoother
    kernel), plus overshoot if sharp."""
    if site.sharpen > 0:
        soft = _smooth(hu.copy(), 1)
        hu += F32(site.sharpen) * (hu - soft)
    else:
        _smooth(hu, site.blur_passes)
    return hu


def add_noise(hu: np.ndarray, rng: np.random.Generator, site: Site, noise_hu: float) -> None:
    """Add correlated noise of standard deviation `noise_hu` in place."""
    if noise_hu <= 0:
        return
    n = rng.random(hu.shape, dtype=F32)
    n -= F32(0.5)
    _smooth(n, site.noise_smooth_passes)
    gain = _kernel_gain(site.noise_smooth_passes)
    scale = noise_hu / math.sqrt(gain * gain / 12.0)
    n *= F32(scale)
    hu += n


def to_stored(hu: np.ndarray) -> np.ndarray:
    """Round to int16 HU in the scanner's range (air floors at -1024)."""
    np.rint(hu, out=hu)
    np.clip(hu, HU_MIN, HU_MAX, out=hu)
    return hu.astype(np.int16)

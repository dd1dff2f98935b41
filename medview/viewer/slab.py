"""Thick slabs: maximum (MIP), minimum (MinIP) or average intensity projection of the slices
around the crosshair, in any plane, the way reading stations show lung nodules (MIP) or
airways (MinIP).

A slab of T mm in a plane spans round(T / spacing) slices along that plane's normal, centred
on the slice the plane is at (one more below than above for an even count), cut at the
volume's ends. Overlay layers (AI findings, labels, heatmaps) are projected by their maximum
whatever the image's mode, so a nodule found on a MIP shows its finding.

Reducing along the last array axis (sagittal of an axial CT) reads short strided runs, which
numpy does about 100 times slower than along the first; the projector keeps one copy of the
image volume with that axis first, made the first time a slab needs it and dropped with the
volume (benchmarks/bench_slab.py measures all three planes).

A turned (oblique) plane's slab is its parallel planes a pixel apart (the volume's finest
spacing) across the thickness, each resampled (`oblique_slab`): n planes cost n reslices,
so a thick slab in a turned view is far slower than in an orthogonal one."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from medview.viewer.oblique import ObliqueMap
from medview.viewer.planes import PlaneMap


class SlabMode(enum.Enum):
    OFF = "Off"
    MIP = "MIP"
    MINIP = "MinIP"
    AVERAGE = "Avg"


MAX_SLAB_MM = 100.0
DEFAULT_SLAB_MM = 10.0
# what the thicker/thinner keys step through, in mm
SLAB_STEPS_MM = (2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 75.0, 100.0)


def step_thickness(current_mm: float, direction: int) -> float:
    """The next slab thickness of SLAB_STEPS_MM above (direction > 0) or below current."""
    if direction > 0:
        return next((t for t in SLAB_STEPS_MM if t > current_mm + 1e-6), SLAB_STEPS_MM[-1])
    return next((t for t in reversed(SLAB_STEPS_MM) if t < current_mm - 1e-6), SLAB_STEPS_MM[0])


@dataclass(frozen=True)
class Slab:
    mode: SlabMode = SlabMode.OFF
    thickness_mm: float = DEFAULT_SLAB_MM

    @property
    def on(self) -> bool:
        return self.mode is not SlabMode.OFF

    def label(self) -> str:
        """Corner text: "MIP 10 mm"; "" when off."""
        return f"{self.mode.value} {self.thickness_mm:g} mm" if self.on else ""


def slab_bounds(
    n_slices: int, index: int, thickness_mm: float, spacing_mm: float
) -> tuple[int, int]:
    """[lo, hi) slice range of a slab of `thickness_mm` centred on `index`."""
    n = max(1, round(thickness_mm / spacing_mm)) if spacing_mm > 0 else 1
    lo = index - (n - 1) // 2
    return max(0, lo), min(n_slices, lo + n)


def _reduce(sub: np.ndarray, axis: int, mode: SlabMode) -> np.ndarray:
    if mode is SlabMode.MIP:
        return np.maximum.reduce(sub, axis=axis)
    if mode is SlabMode.MINIP:
        return np.minimum.reduce(sub, axis=axis)
    n = sub.shape[axis]
    if sub.dtype.kind in "iu":
        # the rounded mean keeps the volume's integer type: HU stay HU, and the int16 fast
        # path of the image item still draws it
        total = np.add.reduce(sub, axis=axis, dtype=np.int64)
        return np.rint(total / n).astype(sub.dtype)
    return (np.add.reduce(sub, axis=axis, dtype=np.float64) / n).astype(sub.dtype)


def project(array: np.ndarray, axis: int, lo: int, hi: int, mode: SlabMode) -> np.ndarray:
    """The projection of slices [lo, hi) along `axis`: a 2D array of the other two axes in
    array order (what PlaneMap.orient turns for the screen)."""
    sl: list[slice] = [slice(None)] * 3
    sl[axis] = slice(lo, hi)
    return _reduce(np.asarray(array[tuple(sl)]), axis, mode)


class SlabProjector:
    """Projects the image volume of one ViewerState, keeping the last-axis-first copy."""

    def __init__(self, array: np.ndarray | None = None) -> None:
        self.array = array
        self._last_first: np.ndarray | None = None

    def image(self, pm: PlaneMap, index: int, slab: Slab, spacing_mm: float) -> np.ndarray:
        """The slab image of plane `pm` at slice `index`, oriented for the screen."""
        lo, hi = slab_bounds(pm.n_slices, index, slab.thickness_mm, spacing_mm)
        a = self.array
        if pm.normal_axis == 2 and isinstance(a, np.ndarray) and a.ndim == 3:
            if self._last_first is None:
                self._last_first = np.ascontiguousarray(np.moveaxis(a, 2, 0))
            return pm.orient(_reduce(self._last_first[lo:hi], 0, slab.mode))
        return pm.orient(project(a, pm.normal_axis, lo, hi, slab.mode))


def layer_image(
    pm: PlaneMap, array: np.ndarray, index: int, slab: Slab, spacing_mm: float
) -> np.ndarray:
    """An overlay layer's image under the slab: its maximum over the same slices."""
    if not slab.on:
        return pm.image(array, index)
    lo, hi = slab_bounds(pm.n_slices, index, slab.thickness_mm, spacing_mm)
    return pm.orient(project(array, pm.normal_axis, lo, hi, SlabMode.MIP))


def oblique_slab(
    om: ObliqueMap, array: np.ndarray, index: int, slab: Slab, mode: SlabMode | None = None
) -> np.ndarray:
    """The slab of turned plane `om` at slice `index` (module docstring), reduced by `mode`
    (default the slab's; layers pass MIP); its planes as slab_bounds counts slices."""
    mode = mode or slab.mode
    n = max(1, round(slab.thickness_mm / om.pixel))
    first = om.image(array, index - (n - 1) // 2)
    if mode is SlabMode.AVERAGE:
        total = first.astype(np.float64)
    for k in range(index - (n - 1) // 2 + 1, index - (n - 1) // 2 + n):
        img = om.image(array, k)
        if mode is SlabMode.AVERAGE:
            total += img
        elif mode is SlabMode.MIP:
            np.maximum(first, img, out=first)
        else:
            np.minimum(first, img, out=first)
    if mode is not SlabMode.AVERAGE:
        return first
    mean = total / n
    return (np.rint(mean) if first.dtype.kind in "iu" else mean).astype(first.dtype)

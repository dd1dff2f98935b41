"""Lesions with known answers: lung nodules (solid and ground-glass, some against a vessel or
the pleura) and hypodense liver lesions, placed inside the scanned range, rendered into the
slices and measured back from the label map that is written beside the series.

The ground truth reported for each lesion is what its voxelised label holds (centroid,
volume, mean stored HU), so a detector can be scored against exactly what the file shows;
the nominal size it was drawn with is kept as well.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from medview.core.errors import InvalidInputError
from medview.demo.phantom import Phantom
from medview.demo.scanner import Texture
from medview.demo.shapes import F32, Canvas, Ellipsoid, Region, ellipsoid_alpha, rotation
from medview.demo.sites import T

LABEL_VALUES = {"lung_nodule": 1, "liver_lesion": 2}
MAX_LESIONS = 40
_GAP_MM = 6.0  # least distance between two lesions' surfaces


@dataclass(frozen=True)
class Lesion:
    id: int
    cls: str  # a key of LABEL_VALUES
    kind: str  # "solid" | "ground_glass" | "hypodense"
    attachment: str  # "vessel" | "pleura" | "none"
    shape: Ellipsoid  # real frame (scanner LPS mm)
    diameter_mm: float  # nominal, volume-equivalent
    plain_hu: float
    contrast_hu: float
    grain_hu: float

    @property
    def radius(self) -> float:
        return self.diameter_mm / 2

    @property
    def stage(self) -> str:
        """Ground glass goes under the lung vessels (they run through it), the rest on top."""
        return "under_vessels" if self.kind == "ground_glass" else "on_top"


@functools.cache
def _directions() -> np.ndarray:
    """Fixed, evenly spread unit vectors (a Fibonacci sphere) to probe around a lesion."""
    n = 64
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azim = math.pi * (1 + 5**0.5) * k
    return np.stack([np.cos(azim) * np.sin(polar), np.sin(azim) * np.sin(polar), np.cos(polar)], 1)


def _z_margin(r: float) -> float:
    """Distance a lesion's centre keeps from the ends of the scan: its longest semi-axis
    (see `_shape`) and a little more."""
    return 1.3 * r + 2.0


class _Placer:
    def __init__(
        self, phantom: Phantom, rng: np.random.Generator, z_range: tuple[float, float]
    ) -> None:
        self.ph, self.rng, self.z_range = phantom, rng, z_range
        plan = phantom.plan
        k, i, j = np.nonzero(plan.tissue == T.LUNG)
        self.lung = phantom.to_real(np.stack([plan.xs[j], plan.ys[i], plan.zs[k]], 1))
        k, i, j = np.nonzero(plan.tissue == T.LIVER)
        self.liver = phantom.to_real(np.stack([plan.xs[j], plan.ys[i], plan.zs[k]], 1))
        v = phantom.thorax.lung_vessels
        mid = phantom.to_real((v.p0 + v.p1) / 2)
        self.vessels = (v, mid, (v.r0 + v.r1) / 2 * min(phantom.patient.scale))
        self.placed: list[tuple[np.ndarray, float]] = []

    def in_range(self, pts: np.ndarray, margin: float) -> np.ndarray:
        lo, hi = self.z_range
        return (pts[:, 2] > lo + margin) & (pts[:, 2] < hi - margin)

    def tissue_around(self, c: np.ndarray, r: float) -> np.ndarray:
        pts = np.concatenate([c + r * _directions(), c + 0.5 * r * _directions(), c[None]])
        return self.ph.plan.lookup(self.ph.to_ref(pts))

    def free(self, c: np.ndarray, r: float) -> bool:
        return all(np.linalg.norm(c - c2) > r + r2 + _GAP_MM for c2, r2 in self.placed)

    def pick(self, pool: np.ndarray, r: float) -> np.ndarray | None:
        ok = np.nonzero(self.in_range(pool, _z_margin(r)))[0]
        return pool[self.rng.choice(ok)] if len(ok) else None

    def lung_centre(self, r: float, attachment: str) -> np.ndarray | None:
        if attachment == "vessel":
            tubes, mid, rad = self.vessels
            ok = np.nonzero(self.in_range(mid, _z_margin(r)) & (rad > 0.9) & (rad < 4.0))[0]
            if not len(ok):
                return None
            s = self.rng.choice(ok)
            axis = self.ph.to_real(tubes.p1[s]) - self.ph.to_real(tubes.p0[s])
            side = np.cross(axis, self.rng.standard_normal(3))
            side /= np.linalg.norm(side) + 1e-9
            c = mid[s] + side * (r + rad[s] - 0.4)
            inside = self.tissue_around(c, r)
        elif attachment == "pleura":
            p = self.pick(self.lung, r)
            if p is None:
                return None
            out = np.array([p[0] - self.ph.patient.shift_x, p[1] + 10.0, 0.0])
            out /= np.linalg.norm(out) + 1e-9
            steps = p + np.arange(0, 80, 1.0)[:, None] * out
            t = self.ph.plan.lookup(self.ph.to_ref(steps))
            wall = np.nonzero(t != T.LUNG)[0]
            if not len(wall) or t[min(wall[0] + 3, len(t) - 1)] not in (
                T.MUSCLE,
                T.FAT,
                T.BONE_CORTEX,
            ):
                return None
            c = steps[wall[0]] - out * (r - 0.3)
            inside = self.tissue_around(c, max(r - 1.5, 0.5))
        else:
            c = self.pick(self.lung, r)
            if c is None:
                return None
            inside = self.tissue_around(c, r + 3.0)
        ok = np.all(inside == T.LUNG) and self.in_range(c[None], _z_margin(r))[0]
        return c if ok else None

    def liver_centre(self, r: float) -> np.ndarray | None:
        c = self.pick(self.liver, r)
        if c is None or not np.all(self.tissue_around(c, r + 3.0) == T.LIVER):
            return None
        return c


def _shape(rng: np.random.Generator, centre: np.ndarray, r: float) -> Ellipsoid:
    """A slightly irregular ellipsoid of the volume of a sphere of radius r."""
    axes = np.clip(1 + 0.12 * rng.standard_normal(3), 0.8, 1.25)
    axes = r * axes / np.prod(axes) ** (1 / 3)
    rot = rotation(*rng.uniform(0, 360, 3))
    return Ellipsoid.make(centre, axes, rot)


def place_lesions(
    phantom: Phantom,
    rng: np.random.Generator,
    n: int,
    z_range: tuple[float, float],
    strict: bool = True,
) -> list[Lesion]:
    """Place `n` lesions (about 3 in 5 lung nodules) fully inside the scanned z range.
    When `strict`, failing to fit one is an error; otherwise as many as fit are placed."""
    placer = _Placer(phantom, rng, z_range)
    has_lung = placer.in_range(placer.lung, 5).any()
    has_liver = placer.in_range(placer.liver, 8).any()
    if not (has_lung or has_liver):
        if not (strict and n):
            return []
        raise InvalidInputError(
            None,
            "the scanned range holds neither lung nor liver, so "
            "lesions cannot be placed; scan more slices or use no lesions",
        )
    n_lung = n if not has_liver else (0 if not has_lung else round(0.6 * n))
    classes = rng.permutation(["lung"] * n_lung + ["liver"] * (n - n_lung))
    attachments = ("none", "vessel", "pleura")
    first = int(rng.integers(3))
    out: list[Lesion] = []
    n_seen = 0
    for what in classes:
        lung = what == "lung"
        if lung:  # every third nodule ground glass; attachments take turns
            kind = "ground_glass" if n_seen % 3 == 1 else "solid"
            attachment = attachments[(first + n_seen) % 3]
            n_seen += 1
        else:
            kind, attachment = "hypodense", "none"
        lo, hi = {"solid": (4, 30), "ground_glass": (6, 25), "hypodense": (5, 40)}[kind]
        d = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        centre = None
        for attempt in range(400):
            if attempt and attempt % 80 == 0:
                d = max(lo, d * 0.75)
            r = d / 2
            c = placer.lung_centre(r, attachment) if lung else placer.liver_centre(r)
            if c is not None and placer.free(c, r):
                centre = c
                break
        if centre is None:
            if not strict:
                continue
            raise InvalidInputError(
                None,
                f"only {len(out)} of {n} lesions fit in the scanned "
                "range; scan more slices or ask for fewer lesions",
            )
        placer.placed.append((centre, d / 2))
        if kind == "solid":
            plain = float(rng.uniform(25, 55))
            hus = (plain, plain + 15.0, 8.0)
        elif kind == "ground_glass":
            plain = float(rng.uniform(-600, -420))
            hus = (plain, plain, 45.0)
        else:
            hus = (float(rng.uniform(12, 35)), float(rng.uniform(40, 72)), 5.0)
        out.append(
            Lesion(
                len(out) + 1,
                "lung_nodule" if lung else "liver_lesion",
                kind,
                attachment,
                _shape(rng, centre, d / 2),
                round(d, 2),
                *hus,
            )
        )
    return out


def paint_lesions(
    cv: Canvas,
    lesions: list[Lesion],
    stage: str,
    contrast: bool,
    texture: Texture | None,
    hits: list[tuple[Lesion, Region, np.ndarray]],
) -> None:
    """Paint the lesions of one stage on a real-frame slice; note where each is labelled."""
    grain = None
    for les in lesions:
        if les.stage != stage:
            continue
        out = ellipsoid_alpha(cv, les.shape)
        if out is None:
            continue
        reg, a = out
        value = les.contrast_hu if contrast else les.plain_hu
        if texture is not None:
            if grain is None:
                grain = texture.at(cv.z)
            value = value + F32(les.grain_hu) * grain[reg]
        t = (
            T.GROUND_GLASS_NODULE
            if les.kind == "ground_glass"
            else (T.LUNG_NODULE if les.cls == "lung_nodule" else T.LIVER_LESION)
        )
        cv.paint(reg, a, value, int(t))
        mask = a >= 0.5
        if mask.any():
            hits.append((les, reg, mask))

"""The patient's outline: body wall, thoracic/abdominal cavity, diaphragm domes, lung apices,
and the scanner table, plus the per-slice context the other anatomy modules paint with.

The anatomy lives in a reference frame (mm; x to the patient's left, y posterior, z superior
with z = 0 at the top of the right diaphragm dome). A seed scales it (habitus), thickens the
fat, and shifts it; the renderer maps each slice's pixels into this frame, so every organ is
written once, in millimetres a radiologist would recognise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from medview.demo.shapes import F32, Canvas, Region, ellipse_sd, ramp
from medview.demo.sites import TISSUES, T

if TYPE_CHECKING:
    from medview.demo.scanner import Texture

# Cross-section keyframes along z (reference mm). Cavity = inside of ribs / abdominal wall.
_Z = np.array([260, 215, 185, 150, 100, 50, 0, -50, -100, -150, -200, -250, -300], float)
_KEYS = {
    "cav_a": [42, 75, 98, 115, 124, 128, 126, 121, 116, 112, 112, 115, 118],
    "cav_ant": [-25, -45, -66, -86, -97, -100, -102, -104, -104, -102, -100, -98, -96],
    "cav_post": [30, 52, 66, 76, 80, 80, 78, 75, 71, 68, 66, 66, 66],
    "mus_lat": [50, 60, 42, 26, 16, 10, 10, 11, 12, 12, 12, 12, 12],
    "mus_ant": [10, 14, 16, 14, 11, 9, 8, 9, 10, 10, 10, 10, 10],
    "mus_post": [20, 30, 30, 27, 22, 15, 13, 15, 17, 18, 18, 18, 18],
    "fat_lat": [10, 12, 12, 12, 12, 12, 14, 18, 22, 24, 25, 26, 26],
    "fat_ant": [8, 10, 10, 10, 10, 10, 12, 16, 20, 24, 26, 28, 28],
    "fat_post": [8, 10, 10, 10, 10, 10, 11, 13, 15, 16, 17, 18, 18],
    "vb_y": [10, 15, 22, 28, 30, 30, 28, 24, 20, 16, 14, 14, 16],
    "vb_r": [13, 14, 15, 16, 17, 18, 19, 21, 23, 24, 25, 25, 25],
    "med_w": [35, 32, 28, 27, 30, 22, 16, 14, 12, 12, 12, 12, 12],
}
# Diaphragm domes: peak (x, y, z) and how fast the surface falls laterally, medially,
# anteriorly and posteriorly (mm of z per mm^2); the posterior recess is the deepest.
DOMES = {
    "right": ((-58.0, -12.0, 0.0), (0.0117, 0.0089, 0.0078, 0.0148)),
    "left": ((58.0, -8.0, -16.0), (0.0117, 0.0089, 0.0078, 0.0148)),
}
# Lung apices: peak (x, y, z) and curvature.
APICES = {"right": (-45.0, 20.0, 188.0), "left": (45.0, 20.0, 188.0)}
APEX_CURVATURE = 0.010
DIAPHRAGM_MM = 6.0  # muscle between lung base and liver / spleen
DIAPHRAGM_FLOOR_MM = -125.0  # no recess reaches lower than this


@dataclass(frozen=True)
class Profile:
    """Cross-section sizes at one z, interpolated from the keyframes."""

    cav_a: float
    cav_ant: float
    cav_post: float
    mus_lat: float
    mus_ant: float
    mus_post: float
    fat_lat: float
    fat_ant: float
    fat_post: float
    vb_y: float
    vb_r: float
    med_w: float

    @classmethod
    def at(cls, z: float, fat_factor: float) -> Profile:
        v = {k: float(np.interp(-z, -_Z, np.asarray(a, float))) for k, a in _KEYS.items()}
        for k in ("fat_lat", "fat_ant", "fat_post"):
            v[k] *= fat_factor
        return cls(**v)

    @property
    def cav_y(self) -> float:
        return (self.cav_ant + self.cav_post) / 2

    @property
    def cav_b(self) -> float:
        return (self.cav_post - self.cav_ant) / 2

    @property
    def body_post(self) -> float:
        return self.cav_post + self.mus_post + self.fat_post


@dataclass(frozen=True)
class Patient:
    """What a seed changes about the body: size, habitus, fat and position."""

    scale: tuple[float, float, float]  # (lateral, AP, head-foot)
    fat_factor: float
    shift_x: float  # mm, real frame
    back_y: float  # reference y of the flattened back (table contact)

    @classmethod
    def from_rng(cls, rng: np.random.Generator) -> Patient:
        sx = float(rng.uniform(0.92, 1.06))
        sy = float(rng.uniform(0.90, 1.06))
        sz = float(rng.uniform(0.95, 1.05))
        fat = float(rng.uniform(0.6, 1.7))
        backs = [Profile.at(z, fat).body_post for z in np.arange(-250, 216, 5.0)]
        return cls((sx, sy, sz), fat, float(rng.uniform(-6, 6)), float(np.min(backs)) + 2.0)


@dataclass
class Slice:
    """Per-slice fields shared by the anatomy painters."""

    cv: Canvas  # reference frame
    prof: Profile
    contrast: bool
    texture: Texture | None  # tissue grain; None on the coarse planning grid
    cav_reg: Region | None = None
    cav_alpha: np.ndarray | None = None
    cav_sd: np.ndarray | None = None
    below_dia: np.ndarray | None = None  # over cav_reg: below the diaphragm surface
    lung_gate: np.ndarray | None = None  # over cav_reg: above diaphragm, below apices
    # over cav_reg: diaphragm height and its partial-volume ramp width; None when the slice
    # lies wholly below (dia_side 1) or wholly above (dia_side 0) the domes
    dia: tuple[np.ndarray, np.ndarray] | None = None
    dia_side: float = 1.0

    @cached_property
    def grain(self) -> np.ndarray | None:
        """Smooth unit-SD grain over the whole slice, continuous along z."""
        return None if self.texture is None else self.texture.at(self.cv.z)

    @cached_property
    def fast_grain(self) -> np.ndarray | None:
        """Grain that changes within a few mm along z (bubbles rather than streaks)."""
        return None if self.texture is None else self.texture.at(3.3 * self.cv.z + 500.0)

    def hu(self, t: T) -> float:
        tis = TISSUES[t]
        return tis.contrast_hu if self.contrast else tis.plain_hu

    def value(self, t: T, reg: Region) -> float | np.ndarray:
        """The tissue's CT number over `reg`, with its grain when textures are on."""
        base = self.hu(t)
        amp = TISSUES[t].grain_hu
        if self.grain is None or amp == 0:
            return base
        return base + F32(amp) * self.grain[reg]

    def paint(self, reg: Region, alpha: np.ndarray, t: T) -> None:
        self.cv.paint(reg, alpha, self.value(t, reg), int(t))


def sub(reg: Region, inner: Region) -> tuple[Region, Region] | None:
    """Intersection of `inner` with `reg`, as (index into reg's array, index into inner's)."""
    (ar, ac), (br, bc) = reg, inner
    r0, r1 = max(ar.start, br.start), min(ar.stop, br.stop)
    c0, c1 = max(ac.start, bc.start), min(ac.stop, bc.stop)
    if r0 >= r1 or c0 >= c1:
        return None
    return (
        (slice(r0 - ar.start, r1 - ar.start), slice(c0 - ac.start, c1 - ac.start)),
        (slice(r0 - br.start, r1 - br.start), slice(c0 - bc.start, c1 - bc.start)),
    )


def union_into(dst: np.ndarray, dst_reg: Region, reg: Region, alpha: np.ndarray) -> None:
    """dst = max(dst, alpha) where the box `reg` of `alpha` overlaps the box of `dst`."""
    both = sub(dst_reg, reg)
    if both is not None:
        mine, theirs = both
        np.maximum(dst[mine], alpha[theirs], out=dst[mine])


def table_background(cv: Canvas, back_y: float) -> tuple[np.ndarray, np.ndarray]:
    """HU and tissue of air plus the table (a thin mattress on a curved carbon-fibre top
    with a foam core), constant along z, in the real frame."""
    hu = np.full(cv.hu.shape, TISSUES[T.AIR].plain_hu, F32)
    tissue = np.zeros(cv.hu.shape, np.uint8)
    y = cv.ys[:, None] - F32(back_y) + F32(0.00025) * cv.xs[None, :] ** 2
    layers = ((0.0, 7.0, -780.0), (7.0, 9.5, 250.0), (9.5, 38.0, -940.0), (38.0, 40.5, 250.0))
    for top, bottom, value in layers:
        a = ramp((F32(top) - y) / F32(cv.px)) * ramp((y - F32(bottom)) / F32(cv.px))
        hu += a * (F32(value) - hu)
        tissue[a >= 0.5] = T.TABLE
    return hu, tissue


def paint_body(s: Slice, back_y: float) -> None:
    """Skin, subcutaneous fat and muscle by depth under the skin, then the cavity filler.
    Leaves the cavity's region, signed distance and occupancy on `s`."""
    p, cv = s.prof, s.cv
    a = p.cav_a + p.mus_lat + p.fat_lat
    ant = p.cav_ant - p.mus_ant - p.fat_ant
    out = ellipse_sd(cv, 0.0, p.cav_y, a, p.cav_y - ant, p.body_post - p.cav_y, pad=cv.px)
    if out is None:
        return
    reg, sd = out
    rs, cs = reg
    # The back rests flattened on the table: smooth maximum with the table plane.
    yb = cv.ys[rs] - F32(back_y)
    rows = np.nonzero(yb > -25)[0]
    if len(rows):
        k = F32(12.0)
        sa, sb = sd[rows], yb[rows][:, None]
        h = np.clip(F32(0.5) + F32(0.5) * (sb - sa) / k, 0, 1)
        sd[rows] = sa + (sb - sa) * h + k * h * (1 - h)
    body = ramp(sd / F32(cv.px))
    depth = -sd
    # fat thickness blends lateral / anterior / posterior by direction from the centre
    u2 = ((cv.xs[cs] / F32(a)) ** 2)[None, :]
    v = (cv.ys[rs] - F32(p.cav_y))[:, None]
    v2 = v * v / np.where(v < 0, F32((p.cav_y - ant) ** 2), F32((p.body_post - p.cav_y) ** 2))
    fat_ap = np.where(v < 0, F32(p.fat_ant), F32(p.fat_post))
    fat_t = (u2 * F32(p.fat_lat) + v2 * fat_ap) / (u2 + v2 + F32(1e-6))
    # one blended wall value (muscle under fat under skin), painted once
    wall = s.value(T.MUSCLE, reg)
    wall = wall + ramp((depth - fat_t) / F32(cv.px)) * (s.value(T.FAT, reg) - wall)
    wall += ramp((depth - F32(1.6)) / F32(cv.px)) * (F32(s.hu(T.SKIN)) - wall)
    s.cv.paint(reg, body, wall, int(T.MUSCLE))
    if s.cv.tissue is not None:
        tissue = s.cv.tissue[reg]
        tissue[(body >= 0.5) & (depth < fat_t)] = T.FAT
        tissue[(body >= 0.5) & (depth < 1.6)] = T.SKIN

    cav = ellipse_sd(cv, 0.0, p.cav_y, p.cav_a, p.cav_b, pad=14.0)
    if cav is None:
        return
    s.cav_reg, s.cav_sd = cav
    s.cav_alpha = ramp(s.cav_sd / F32(cv.px))
    s.paint(s.cav_reg, s.cav_alpha, T.FAT)
    _surfaces(s)
    if s.dia is not None:
        band = s.cav_alpha * s.below_dia * ramp(_dia_height(s, offset=-DIAPHRAGM_MM, above=True))
        s.paint(s.cav_reg, band, T.MUSCLE)


def _dome(cv: Canvas, reg: Region, peak, k) -> tuple[np.ndarray, np.ndarray]:
    """Height field of one dome over `reg` and its slope magnitude squared."""
    rs, cs = reg
    kl, km, ka, kp = k
    dx = cv.xs[cs] - F32(peak[0])
    lateral = (dx < 0) if peak[0] < 0 else (dx > 0)
    kx = np.where(lateral, F32(kl), F32(km))
    dy = cv.ys[rs] - F32(peak[1])
    ky = np.where(dy < 0, F32(ka), F32(kp))
    h = (F32(peak[2]) - kx * dx * dx)[None, :] - (ky * dy * dy)[:, None]
    g2 = ((2 * kx * dx) ** 2)[None, :] + ((2 * ky * dy) ** 2)[:, None]
    return h, g2


def _surfaces(s: Slice) -> None:
    """Occupancy of "below the diaphragm" and of the lung's vertical extent over the cavity.
    Slices wholly below the domes, wholly above them, or well below the apices skip the
    surfaces they cannot meet."""
    cv, reg = s.cv, s.cav_reg
    shape = (reg[0].stop - reg[0].start, reg[1].stop - reg[1].start)
    if cv.z < DIAPHRAGM_FLOOR_MM - DIAPHRAGM_MM - cv.dz:
        s.below_dia, s.dia_side = np.ones(shape, F32), 1.0
    elif cv.z > max(d[0][2] for d in DOMES.values()) + cv.dz + cv.px:
        s.below_dia, s.dia_side = np.zeros(shape, F32), 0.0
    else:
        hr, gr = _dome(cv, reg, *DOMES["right"])
        hl, gl = _dome(cv, reg, *DOMES["left"])
        right = hr >= hl
        h = np.maximum(np.where(right, hr, hl), F32(DIAPHRAGM_FLOOR_MM))
        g2 = np.where(right, gr, gl)
        width = np.sqrt(g2 * F32(cv.px**2) + F32(cv.dz**2))
        s.dia = (h, width)
        s.below_dia = ramp((F32(cv.z) - h) / width)
    s.lung_gate = 1 - s.below_dia
    rs, cs = reg
    xs = (float(cv.xs[cs][0]), float(cv.xs[cs][-1]))
    ys = (float(cv.ys[rs][0]), float(cv.ys[rs][-1]))
    # the caps are concave, so their lowest point over the box is at a corner
    lowest = max(
        min(az - APEX_CURVATURE * ((x - ax) ** 2 + (y - ay) ** 2) for x in xs for y in ys)
        for ax, ay, az in APICES.values()
    )
    if cv.z < lowest - 15.0:
        return
    top = None
    for ax, ay, az in APICES.values():
        dx2 = ((cv.xs[cs] - F32(ax)) ** 2)[None, :]
        dy2 = ((cv.ys[rs] - F32(ay)) ** 2)[:, None]
        cap = F32(az) - F32(APEX_CURVATURE) * (dx2 + dy2)
        top = cap if top is None else np.maximum(top, cap)
    peak = max(az for _, _, az in APICES.values())
    slope2 = F32(4 * APEX_CURVATURE) * np.maximum(F32(peak) - top, 0)
    apex_w = np.sqrt(slope2 * F32(cv.px**2) + F32(cv.dz**2))
    s.lung_gate *= ramp((F32(cv.z) - top) / apex_w)


def _dia_height(s: Slice, offset: float, above: bool) -> np.ndarray:
    """Signed distance in ramp units from the diaphragm surface moved by `offset` mm along z:
    feed to `ramp` for the occupancy of the side asked for."""
    h, width = s.dia
    q = (F32(s.cv.z) - (h + F32(offset))) / width
    return -q if above else q


def below_diaphragm(s: Slice, reg: Region, gap: float = DIAPHRAGM_MM) -> np.ndarray:
    """Occupancy of "at least `gap` mm below the diaphragm" over `reg` (a sub-box of the
    cavity; organs outside the cavity box get 1)."""
    out = np.full((reg[0].stop - reg[0].start, reg[1].stop - reg[1].start), s.dia_side, F32)
    both = sub(reg, s.cav_reg) if s.dia is not None else None
    if both is not None:
        mine, theirs = both
        out[mine] = ramp(_dia_height(s, offset=-gap, above=False)[theirs])
    return out

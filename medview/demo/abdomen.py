"""Abdominal organs: liver with its veins, gallbladder, spleen, stomach, pancreas, duodenum,
kidneys, psoas, small bowel and colon.

The liver is not an ellipsoid: it fills the right upper cavity under the dome, bounded by a
slanted medial edge (the left lobe reaches across in front of the stomach near the top) and
a sloping lower edge (the right lobe hangs lowest laterally), so its outline changes from
slice to slice the way a real liver's does. Bowel loops are a seeded random walk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.demo.body import Slice, below_diaphragm, sub, union_into
from medview.demo.shapes import F32, Ellipsoid, ellipse_alpha, ellipsoid_alpha, ramp, rotation
from medview.demo.sites import T
from medview.demo.tubes import Tubes, grow_tree, tubes_alpha
from medview.demo.vessels import abdominal_vessels

GAS_LEVEL_Y = -20.0  # supine air-fluid level in the stomach: gas in front of it
_SMALL_BOWEL_BOX = ((-95.0, 95.0), (-98.0, 8.0), (-320.0, -132.0))


@dataclass(frozen=True)
class Abdomen:
    liver: tuple[Ellipsoid, Ellipsoid]  # right and left lobe, cut by wall and diaphragm
    gallbladder: Ellipsoid
    spleen: Ellipsoid
    stomach: tuple[Ellipsoid, ...]
    kidneys: tuple[tuple[Ellipsoid, Ellipsoid, Ellipsoid, Ellipsoid], ...]
    pancreas: Tubes
    duodenum: Tubes
    colon: Tubes
    small_bowel: Tubes
    vessels: Tubes
    liver_vessels: Tubes

    @classmethod
    def make(cls, rng: np.random.Generator, liver_vessels: Tubes | None = None) -> Abdomen:
        kidneys = []
        for side, centre in ((-1, (-72.0, 40.0, -150.0)), (1, (72.0, 38.0, -135.0))):
            rot = rotation(yaw_deg=-25.0 * side, pitch_deg=12.0 * side, roll_deg=12.0)
            c = np.asarray(centre)
            medial = np.array([-side, -0.4, 0.0]) / np.hypot(1, 0.4)
            kidneys.append(
                (
                    Ellipsoid.make(c, (26, 22, 52), rot),
                    Ellipsoid.make(c + 3 * medial, (19, 15, 40), rot),
                    Ellipsoid.make(c + 14 * medial, (10, 8, 27), rot),
                    Ellipsoid.make(c + 17 * medial, (6, 5, 11), rot),
                )
            )
        return cls(
            liver=(
                Ellipsoid.make((-75, 10, -55), (85, 110, 105)),
                Ellipsoid.make((18, -52, -42), (62, 34, 38), rotation(yaw_deg=-15)),
            ),
            gallbladder=Ellipsoid.make((-52, -52, -100), (15, 15, 35), rotation(pitch_deg=25)),
            spleen=Ellipsoid.make((85, 32, -70), (58, 21, 48), rotation(yaw_deg=-53)),
            stomach=(
                Ellipsoid.make((50, -5, -45), (42, 46, 45)),
                Ellipsoid.make((35, -45, -95), (30, 28, 45), rotation(roll_deg=-20)),
            ),
            kidneys=tuple(kidneys),
            pancreas=Tubes.polyline(
                [(-28, -14, -122), (-8, -24, -112), (25, -16, -102), (60, 10, -92), (80, 28, -88)],
                [15, 11, 11, 10, 8],
            ),
            duodenum=Tubes.polyline(
                [
                    (25, -50, -105),
                    (-20, -42, -118),
                    (-50, -22, -112),
                    (-54, -10, -140),
                    (-20, -6, -162),
                    (10, -10, -155),
                    (20, -20, -132),
                ],
                [15, 13, 12, 12, 11, 11, 10],
            ),
            colon=Tubes.polyline(
                [
                    (-95, -10, -290),
                    (-105, 5, -220),
                    (-100, 0, -160),
                    (-85, -30, -135),
                    (-40, -75, -150),
                    (20, -78, -145),
                    (70, -45, -110),
                    (100, -5, -90),
                    (108, 20, -130),
                    (105, 25, -200),
                    (95, 15, -290),
                ],
                [25, 22, 21, 20, 18, 18, 18, 18, 15, 14, 14],
            ),
            small_bowel=_small_bowel(rng),
            vessels=Tubes.concat([*abdominal_vessels(), _mesenteric(rng)]),
            liver_vessels=liver_vessels if liver_vessels is not None else Tubes.concat([]),
        )


def _small_bowel(rng: np.random.Generator) -> Tubes:
    """Loops of small bowel: smooth random walks that bounce inside the lower abdomen, one
    starting in each quarter of it so the loops fill the space as real bowel does."""
    lo = np.array([b[0] for b in _SMALL_BOWEL_BOX])
    hi = np.array([b[1] for b in _SMALL_BOWEL_BOX])
    parts = []
    for fx, fz in ((0.25, 0.2), (0.75, 0.2), (0.25, 0.7), (0.75, 0.7)):
        p = lo + (hi - lo) * np.array([fx, 0.5, fz])
        d = rng.standard_normal(3)
        pts = [p]
        for _ in range(80):
            d = d + 0.55 * rng.standard_normal(3)
            d /= np.linalg.norm(d)
            out = (p + 12.0 * d < lo) | (p + 12.0 * d > hi)
            d[out] *= -1
            p = np.clip(p + 12.0 * d, lo, hi)
            pts.append(p)
        radii = np.linspace(12.5, 10.0, len(pts)) * (1 + 0.08 * rng.standard_normal(len(pts)))
        parts.append(Tubes.polyline(np.array(pts), radii))
    return Tubes.concat(parts)


def _mesenteric(rng: np.random.Generator) -> Tubes:
    """Mesenteric vessels fanning out from the superior mesenteric vein to the bowel."""
    lo = np.array([b[0] for b in _SMALL_BOWEL_BOX])
    hi = np.array([b[1] for b in _SMALL_BOWEL_BOX])
    pts = lo + (hi - lo) * rng.random((400, 3))
    return grow_tree(rng, (-8.0, -28.0, -150.0), pts, 4.0, 1.1, step=0.5).vessels


def liver_alpha(s: Slice, lobes: tuple[Ellipsoid, Ellipsoid]) -> np.ndarray | None:
    """Occupancy of the liver over the cavity box: two lobes, moulded by the abdominal wall
    and the underside of the diaphragm."""
    if s.cav_reg is None:
        return None
    rs, cs = s.cav_reg
    out = np.zeros((rs.stop - rs.start, cs.stop - cs.start), F32)
    for lobe in lobes:
        a = ellipsoid_alpha(s.cv, lobe)
        if a is not None:
            union_into(out, s.cav_reg, *a)
    if not out.any():
        return None
    return out * s.cav_alpha * below_diaphragm(s, s.cav_reg)


def _paint_ellipsoid(s: Slice, e: Ellipsoid, tissue: T, gate_dia: bool = False) -> None:
    out = ellipsoid_alpha(s.cv, e)
    if out is None:
        return
    reg, a = out
    if gate_dia:
        a *= below_diaphragm(s, reg)
    if s.cav_reg is not None:  # organs stay inside the abdominal wall
        both = sub(reg, s.cav_reg)
        inside = np.zeros_like(a)
        if both is not None:
            inside[both[0]] = s.cav_alpha[both[1]]
        a *= inside
    s.paint(reg, a, tissue)


def _paint_hollow(s: Slice, tubes: Tubes, content: T, lumen: float = 0.85) -> None:
    t = tubes_alpha(s.cv, tubes, lumen=lumen)
    if t is None:
        return
    reg, outer, inner = t
    s.paint(reg, outer, T.BOWEL_WALL)
    if content == T.STOOL and s.fast_grain is not None:
        # faeces: mottled soft matter with gas bubbles
        g = s.fast_grain[reg]
        value = np.where(g > 0.9, F32(-900.0), F32(-40.0) + F32(70.0) * g)
        s.cv.paint(reg, inner, value, int(T.STOOL))
    else:
        s.paint(reg, inner, content)


def paint_abdomen(s: Slice, ab: Abdomen, liver: np.ndarray | None) -> None:
    cv = s.cv
    if liver is not None:
        s.paint(s.cav_reg, liver, T.LIVER)
        t = tubes_alpha(cv, ab.liver_vessels)
        if t is not None:
            reg, a, _ = t
            both = sub(reg, s.cav_reg)
            if both is not None:
                a[both[0]] *= liver[both[1]]
            s.paint(reg, a, T.VESSEL)
    _paint_ellipsoid(s, ab.gallbladder, T.FLUID)
    for e in ab.stomach:
        _paint_ellipsoid(s, e, T.BOWEL_WALL, gate_dia=True)
    for e in ab.stomach:
        out = ellipsoid_alpha(cv, e.grown(-4.0))
        if out is not None:
            reg, a = out
            a *= below_diaphragm(s, reg, gap=10.0)
            s.paint(reg, a, T.BOWEL_CONTENT)
            gas = a * ramp((cv.ys[reg[0]] - F32(GAS_LEVEL_Y)) / F32(cv.px))[:, None]
            s.paint(reg, gas, T.GAS)
    _paint_ellipsoid(s, ab.spleen, T.SPLEEN, gate_dia=True)
    if cv.z < -80:
        _paint_hollow(s, ab.small_bowel, T.BOWEL_CONTENT, lumen=0.82)
        _paint_hollow(s, ab.colon, T.STOOL, lumen=0.9)
        _paint_hollow(s, ab.duodenum, T.BOWEL_CONTENT, lumen=0.8)
        t = tubes_alpha(cv, ab.pancreas)
        if t is not None:
            s.paint(t[0], t[1], T.PANCREAS)
        for cortex, medulla, sinus, pelvis in ab.kidneys:
            _paint_ellipsoid(s, cortex, T.KIDNEY_CORTEX)
            _paint_ellipsoid(s, medulla, T.KIDNEY_MEDULLA)
            _paint_ellipsoid(s, sinus, T.FAT)
            _paint_ellipsoid(s, pelvis, T.FLUID)
        _paint_psoas(s)
    t = tubes_alpha(cv, ab.vessels)
    if t is not None:
        s.paint(t[0], t[1], T.VESSEL)


def _paint_psoas(s: Slice) -> None:
    p, z = s.prof, s.cv.z
    r = 5.0 + 20.0 * float(np.clip((-90.0 - z) / 160.0, 0, 1))
    if z > -90:
        return
    for side in (-1, 1):
        a = ellipse_alpha(s.cv, side * (p.vb_r + 8 + 0.6 * r), p.vb_y + 4, r, 0.85 * r)
        if a is not None:
            s.paint(*a, T.MUSCLE)

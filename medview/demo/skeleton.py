"""Bones: vertebrae with discs, canal and posterior elements; ribs and costal cartilage;
sternum; scapulae; clavicles. Each bone is a cortex shell around cancellous marrow.

Ribs are the part a slice-by-slice renderer gets wrong most easily: a rib leaves the spine
near its own vertebra and slopes down as it runs forward, so one axial slice cuts several
ribs obliquely, each as a short curved band at a different angle around the chest. Here each
rib is a path z(angle) around the cavity, and a pixel belongs to a rib when it lies just
outside the cavity and the rib passes through the slice at the pixel's angle.
"""

from __future__ import annotations

import math

import numpy as np

from medview.demo.body import Slice, sub, union_into
from medview.demo.shapes import F32, Region, ellipse_alpha, ramp
from medview.demo.sites import T
from medview.demo.tubes import Tubes, tubes_alpha

# Vertebral levels: top z of C7 .. L5 and below (reference mm), vertebral body and disc heights.
_LEVELS = [(224.0 - 24 * i, 20.0, 4.0) for i in range(13)] + [
    (-88.0 - 36 * i, 28.0, 8.0) for i in range(7)
]
# Ribs 1-12: head height, drop to the front, angle (fraction of pi from the back) where bone
# ends and where costal cartilage ends (None: floating), half height and half thickness.
_RIB_DROP = (38, 62, 85, 98, 105, 108, 108, 105, 100, 90, 56, 38)
_RIB_BONE_END = (0.78, 0.80, 0.80, 0.80, 0.80, 0.80, 0.79, 0.76, 0.72, 0.66, 0.52, 0.40)
_RIB_CART_END = (0.93, 0.93, 0.93, 0.93, 0.93, 0.93, 0.93, 0.88, 0.84, 0.76, None, None)
_RIB_START = 0.09
_RIB_SLOPE = 0.45  # typical mm of z per mm along the rib, for the partial-volume ramp
# Sternum pieces: (z top, z bottom, half width, half depth)
_STERNUM = ((182.0, 135.0, 24.0, 7.0), (135.0, 25.0, 14.0, 6.0), (25.0, 6.0, 8.0, 3.5))


def _window(pos: float, lo: float, hi: float, w: float) -> float:
    """Occupancy along z of [lo, hi] at `pos` with a ramp `w` wide."""
    return float(np.clip(min(pos - lo, hi - pos) / w + 0.5, 0.0, 1.0))


def _level(z: float) -> tuple[float, float, float]:
    """(depth below the top of the vertebra that holds z, body height, disc height)."""
    for top, body, disc in _LEVELS:
        if top - body - disc < z <= top:
            return top - z, body, disc
    top, body, disc = _LEVELS[0] if z > _LEVELS[0][0] else _LEVELS[-1]
    return (top - z) % (body + disc), body, disc


def canal_centre(s: Slice) -> tuple[float, float, float]:
    p = s.prof
    rx = 0.45 * p.vb_r + 3.0
    return p.vb_y + 0.82 * p.vb_r + 9.5, rx, 7.5


def spine_alpha(s: Slice) -> np.ndarray:
    """Occupancy (over the cavity box) of the vertebral column and paraspinal muscles."""
    p, cv = s.prof, s.cv
    rs, cs = s.cav_reg
    out = np.zeros((rs.stop - rs.start, cs.stop - cs.start), F32)
    # Behind the vertebral body the lungs stop at a curve from the body's back corners to
    # the rib angles (the paravertebral gutters), not at the cavity's midline edge.
    back = p.body_post - p.fat_post - 1.5
    centre = p.cav_post + 10.0
    front = p.vb_y + 0.3 * p.vb_r
    for shape in (
        ellipse_alpha(cv, 0.0, p.vb_y, p.vb_r + 3, 0.82 * p.vb_r + 3),
        ellipse_alpha(cv, 0.0, centre, p.vb_r + 20, centre - front, back - centre),
    ):
        if shape is not None:
            union_into(out, s.cav_reg, *shape)
    return out


def _bone(
    s: Slice, cx: float, cy: float, ax: float, ay: float, fz: float, cortex: float = 1.3
) -> None:
    """An elliptic bone section: cortex, then marrow inside, both scaled by z-occupancy."""
    if fz <= 0:
        return
    outer = ellipse_alpha(s.cv, cx, cy, ax, ay)
    if outer is not None:
        s.paint(outer[0], outer[1] * F32(fz), T.BONE_CORTEX)
    if ax > cortex + 0.5 and ay > cortex + 0.5:
        inner = ellipse_alpha(s.cv, cx, cy, ax - cortex, ay - cortex)
        if inner is not None:
            s.paint(inner[0], inner[1] * F32(fz), T.BONE_MARROW)


def paint_spine(s: Slice, block: np.ndarray) -> None:
    p, cv = s.prof, s.cv
    s.paint(s.cav_reg, block, T.MUSCLE)
    pos, body, disc = _level(cv.z)
    w = max(cv.dz, 0.5)
    f_body = _window(pos, 0.0, body, w)
    disc_f = 1.0 - f_body
    if disc_f > 0:
        d = ellipse_alpha(cv, 0.0, p.vb_y, p.vb_r + 1, 0.82 * p.vb_r + 1)
        if d is not None:
            s.paint(d[0], d[1] * F32(disc_f), T.DISC)
    _bone(s, 0.0, p.vb_y, p.vb_r, 0.82 * p.vb_r, f_body, cortex=1.2)
    cy, rx, ry = canal_centre(s)
    pedicle = _window(pos, 0.12 * body, 0.7 * body, w)
    lamina = _window(pos, 0.2 * body, 0.85 * body, w)
    if max(pedicle, lamina) > 0:
        ring = ellipse_alpha(cv, 0.0, cy, rx + 5.5, ry + 5.5)
        hole = ellipse_alpha(cv, 0.0, cy, rx, ry)
        if ring is not None and hole is not None:
            reg, a = ring
            both = sub(reg, hole[0])
            a *= F32(max(pedicle, lamina))
            if both is not None:
                a[both[0]] *= 1 - hole[1][both[1]]
            if pedicle < lamina:  # below the pedicles only the laminae remain, behind
                a[cv.ys[reg[0]] < F32(cy)] *= F32(pedicle / lamina)
            s.paint(reg, a, T.BONE_CORTEX)
    spinous = _window(pos, 0.3 * body, 0.3 * body + 0.55 * (body + disc), w)
    length = 26.0 + 0.3 * p.vb_r
    _bone(s, 0.0, cy + ry + 4 + length / 2, 3.5, length / 2, spinous, cortex=1.0)
    transverse = _window(pos, 0.1 * body, 0.55 * body, w)
    lumbar = body > 24
    for side in (-1, 1):
        if lumbar:
            _bone(s, side * (rx + 24), cy - 3, 19.0, 4.0, transverse)
        else:
            _bone(s, side * (rx + 15), cy + 5, 12.0, 5.0, transverse)
    hole = ellipse_alpha(cv, 0.0, cy, rx, ry)
    if hole is not None:
        s.paint(*hole, T.CSF)
    if cv.z > -95:
        cord = ellipse_alpha(cv, 0.0, cy, 0.55 * rx, 0.6 * ry)
        if cord is not None:
            s.paint(*cord, T.CORD)


def _paint_points(
    s: Slice, reg: Region, idx: tuple[np.ndarray, np.ndarray], alpha: np.ndarray, tissue: T
) -> None:
    """Paint scattered pixels (indices into `reg`)."""
    keep = alpha > 0
    if not keep.any():
        return
    i, j, a = idx[0][keep], idx[1][keep], alpha[keep]
    view = s.cv.hu[reg]
    value = s.value(tissue, reg)
    v = value[i, j] if isinstance(value, np.ndarray) else F32(value)
    old = view[i, j]
    view[i, j] = old + a * (v - old)
    if s.cv.tissue is not None:
        tv = s.cv.tissue[reg]
        tv[i[a >= 0.5], j[a >= 0.5]] = int(tissue)


def _rib_section(
    radial: np.ndarray, dz: np.ndarray, half_r: float, half_z: float, px: float, wz: float
) -> np.ndarray:
    """Occupancy of a rib's rounded-box cross-section from the radial distance to its centre
    line and the z distance to its path."""
    return ramp((radial - F32(half_r)) / F32(px)) * ramp((dz - F32(half_z)) / F32(wz))


def paint_ribs(s: Slice) -> None:
    """Ribs, costal cartilage and scapulae in the band just outside the cavity."""
    p, cv = s.prof, s.cv
    rs, cs = s.cav_reg
    band = np.nonzero((s.cav_sd > 0.3) & (s.cav_sd < 22.0))
    sd = s.cav_sd[band]
    x = cv.xs[cs][band[1]]
    y = cv.ys[rs][band[0]]
    phi = np.arctan2(np.abs(x) / F32(p.cav_a), (y - F32(p.cav_y)) / F32(p.cav_b)) / F32(math.pi)
    arc = F32(math.pi * p.cav_a)  # mm per unit of phi, roughly
    wz = math.hypot(_RIB_SLOPE * cv.px, cv.dz)
    for k in range(12):
        head = 190.0 - 24.0 * k
        drop = _RIB_DROP[k]
        if not head - drop - 12 < cv.z < head + 12:
            continue
        t = np.clip((phi - F32(_RIB_START)) / F32(1 - _RIB_START), 0, 1)
        dz = np.abs(F32(cv.z) - (F32(head) - F32(drop) * t))
        hz, hr = (7.0, 4.0) if k == 0 else (5.5, 3.5)
        start = ramp((F32(_RIB_START) - phi) * arc / F32(cv.px))
        bone_end = ramp((phi - F32(_RIB_BONE_END[k])) * arc / F32(cv.px))
        radial = np.abs(sd - F32(hr + 1.0))
        outer = _rib_section(radial, dz, hr, hz, cv.px, wz)
        _paint_points(s, s.cav_reg, band, outer * start * bone_end, T.BONE_CORTEX)
        marrow = _rib_section(radial, dz, hr - 1.3, hz - 1.3, cv.px, wz)
        _paint_points(s, s.cav_reg, band, marrow * start * bone_end, T.BONE_MARROW)
        if _RIB_CART_END[k] is not None:
            cart = (1 - bone_end) * ramp((phi - F32(_RIB_CART_END[k])) * arc / F32(cv.px))
            _paint_points(s, s.cav_reg, band, outer * cart, T.CARTILAGE)
    if 70.0 < cv.z < 198.0:
        width = float(np.clip((cv.z - 70.0) / 90.0, 0, 1)) * 0.26
        lateral = ramp((phi - F32(0.2 + width)) * arc / F32(cv.px))
        medial = ramp((F32(0.2) - phi) * arc / F32(cv.px))
        plate = ramp((np.abs(sd - F32(15.0)) - F32(1.8)) / F32(cv.px))
        _paint_points(s, s.cav_reg, band, plate * lateral * medial, T.BONE_CORTEX)


def paint_sternum(s: Slice) -> None:
    p, cv = s.prof, s.cv
    for top, bottom, hx, hy in _STERNUM:
        f = _window(cv.z, bottom, top, max(cv.dz, 0.5))
        if f > 0:
            cy = p.cav_ant - hy - 0.5
            if bottom < 25:
                a = ellipse_alpha(cv, 0.0, cy, hx, hy)
                if a is not None:
                    s.paint(a[0], a[1] * F32(f), T.CARTILAGE)
            else:
                _bone(s, 0.0, cy, hx, hy, f)


def clavicles() -> Tubes:
    right = [(-22, -66, 184), (-70, -72, 194), (-120, -55, 206), (-150, -25, 218)]
    pts = np.array(right, float)
    left = pts * np.array([-1.0, 1.0, 1.0])
    return Tubes.concat([Tubes.polyline(pts, 7.0), Tubes.polyline(left, 7.0)])


def paint_clavicles(s: Slice, tubes: Tubes) -> None:
    t = tubes_alpha(s.cv, tubes, lumen=0.7)
    if t is not None:
        reg, outer, inner = t
        s.paint(reg, outer, T.BONE_CORTEX)
        s.paint(reg, inner, T.BONE_MARROW)

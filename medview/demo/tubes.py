"""Tubes (vessels, airways, bowel, a clavicle) and the branching trees made of them.

A tube is a chain of capsules (segment + radius tapering from r0 to r1). Per slice only the
segments that reach the slice are touched, and each only inside the box where it meets the
slice; all (pixel, segment) pairs of a slice are evaluated in one vectorised pass, because
a lung holds thousands of small branches and a Python loop over them would cost seconds.

Trees grow by territory splitting: a branch heads part of the way toward the centroid of the
points it must supply, the points are split in two across their main axis and each half gets
a child whose radius follows Murray's law (r^3 shared in proportion to territory). That fills
an organ the way pulmonary and hepatic vessels do, tapering from the hilum to the periphery.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from medview.demo.shapes import F32, Canvas, Region, ramp


@dataclass(frozen=True)
class Tubes:
    p0: np.ndarray  # (n, 3) segment starts, mm
    p1: np.ndarray  # (n, 3) segment ends
    r0: np.ndarray  # (n,) radius at p0
    r1: np.ndarray  # (n,) radius at p1

    @classmethod
    def polyline(cls, points, radii) -> Tubes:
        p = np.asarray(points, float)
        r = np.broadcast_to(np.asarray(radii, float), (len(p),))
        return cls(p[:-1], p[1:], r[:-1].copy(), r[1:].copy())

    @classmethod
    def concat(cls, parts: list[Tubes]) -> Tubes:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("p0", "p1", "r0", "r1"))
        )

    def __len__(self) -> int:
        return len(self.r0)

    def select(self, keep: np.ndarray) -> Tubes:
        return Tubes(self.p0[keep], self.p1[keep], self.r0[keep], self.r1[keep])

    @cached_property
    def _z_range(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rmax = np.maximum(self.r0, self.r1)
        return (
            np.minimum(self.p0[:, 2], self.p1[:, 2]),
            np.maximum(self.p0[:, 2], self.p1[:, 2]),
            rmax,
        )


def tubes_alpha(
    cv: Canvas, t: Tubes, grow: float = 0.0, lumen: float | None = None
) -> tuple[Region, np.ndarray, np.ndarray | None] | None:
    """Occupancy of the union of tubes (radius + grow) on the slice, and, when `lumen` is
    given, of their lumens (that fraction of the radius). Returns the box they touch."""
    if not len(t):
        return None
    zlo, zhi, rmax = t._z_range
    reach = rmax + grow + cv.dz / 2 + cv.px
    sel = np.nonzero((zlo - reach <= cv.z) & (zhi + reach >= cv.z))[0]
    if not len(sel):
        return None
    p0, u = t.p0[sel], t.p1[sel] - t.p0[sel]
    reach = reach[sel]
    # the part of each segment that comes within reach of the slice
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (cv.z - reach - p0[:, 2]) / u[:, 2]
        tb = (cv.z + reach - p0[:, 2]) / u[:, 2]
    flat = np.abs(u[:, 2]) < 1e-9
    lo = np.where(flat, 0.0, np.clip(np.minimum(ta, tb), 0, 1))
    hi = np.where(flat, 1.0, np.clip(np.maximum(ta, tb), 0, 1))
    xa, xb = p0[:, 0] + lo * u[:, 0], p0[:, 0] + hi * u[:, 0]
    ya, yb = p0[:, 1] + lo * u[:, 1], p0[:, 1] + hi * u[:, 1]
    n_r, n_c = cv.hu.shape
    x_first, y_first = float(cv.xs[0]), float(cv.ys[0])
    sx, sy = float(cv.xs[1] - cv.xs[0]), float(cv.ys[1] - cv.ys[0])
    c0 = np.clip(np.floor((np.minimum(xa, xb) - reach - x_first) / sx), 0, n_c).astype(np.int64)
    c1 = np.clip(np.ceil((np.maximum(xa, xb) + reach - x_first) / sx) + 1, 0, n_c).astype(np.int64)
    r0 = np.clip(np.floor((np.minimum(ya, yb) - reach - y_first) / sy), 0, n_r).astype(np.int64)
    r1 = np.clip(np.ceil((np.maximum(ya, yb) + reach - y_first) / sy) + 1, 0, n_r).astype(np.int64)
    h, w = r1 - r0, c1 - c0
    keep = (h > 0) & (w > 0)
    if not keep.any():
        return None
    sel, p0, u = sel[keep], p0[keep], u[keep]
    h, w, r0, c0 = h[keep], w[keep], r0[keep], c0[keep]
    box_r0, box_c0 = int(r0.min()), int(c0.min())
    box_h, box_w = int((r0 + h).max()) - box_r0, int((c0 + w).max()) - box_c0

    # Enumerate (pixel, segment) pairs row by row: repeats, no integer division.
    k = len(sel)
    row_seg = np.repeat(np.arange(k, dtype=np.int32), h)
    row_in = np.arange(len(row_seg), dtype=np.int32) - np.repeat(
        (np.cumsum(h) - h).astype(np.int32), h
    )
    row_w = w[row_seg]
    col_in = np.arange(int(row_w.sum()), dtype=np.int32) - np.repeat(
        (np.cumsum(row_w) - row_w).astype(np.int32), row_w
    )
    seg = np.repeat(row_seg, row_w)
    row_base = (r0[row_seg] - box_r0 + row_in) * box_w + (c0[row_seg] - box_c0)
    flat_idx = np.repeat(row_base.astype(np.int32), row_w) + col_in
    # per-segment values, gathered for every pair in one take
    per = np.empty((6, k), F32)
    per[0:3] = u.T
    per[3] = 1.0 / np.maximum((u * u).sum(1), 1e-12)
    per[4] = t.r0[sel] + grow
    per[5] = t.r1[sel] - t.r0[sel]
    ux, uy, uz, inv_l2, rad, dr = np.take(per, seg, axis=1)
    qx_row = (x_first + c0 * sx - p0[:, 0]).astype(F32)
    qy_row = (y_first + r0[row_seg] * sy + row_in * sy - p0[row_seg, 1]).astype(F32)
    qx = qx_row[seg] + col_in.astype(F32) * F32(sx)
    qy = np.repeat(qy_row, row_w)
    qz = (cv.z - p0[:, 2]).astype(F32)[seg]
    tt = (qx * ux + qy * uy + qz * uz) * inv_l2
    np.clip(tt, 0, 1, out=tt)
    qx -= tt * ux
    qy -= tt * uy
    qz -= tt * uz
    qz *= qz
    d2 = qx * qx + qy * qy + qz + F32(1e-12)
    # through-plane partial volume: the ramp widens where the surface faces along z
    width = np.sqrt(F32(cv.px**2) + F32(cv.dz**2 - cv.px**2) * (qz / d2))
    dist = np.sqrt(d2)
    rad += tt * dr

    def splat(radius: np.ndarray) -> np.ndarray:
        q = (dist - radius) / width
        buf = np.zeros(box_h * box_w, F32)
        np.maximum.at(buf, flat_idx, ramp(q))
        return buf.reshape(box_h, box_w)

    outer = splat(rad)
    inner = splat(rad * F32(lumen)) if lumen is not None else None
    reg = (slice(box_r0, box_r0 + box_h), slice(box_c0, box_c0 + box_w))
    return reg, outer, inner


@dataclass
class Tree:
    """A grown tree: the vessel tubes, and an airway running beside its larger branches."""

    vessels: Tubes
    airways: Tubes


def grow_tree(
    rng: np.random.Generator,
    start,
    points: np.ndarray,
    r_root: float,
    r_min: float,
    step: float = 0.55,
    airway_min: float | None = None,
) -> Tree:
    """Grow a tree from `start` that supplies `points` (n, 3) by territory splitting.

    `step` is the fraction of the way a branch goes toward its territory's centroid. With
    `airway_min`, branches at least that wide get a bronchus beside them, offset sideways by
    a vector carried from branch to branch so the airway stays continuous."""
    seg_p0, seg_p1, seg_r0, seg_r1 = [], [], [], []
    aw_p0, aw_p1, aw_r = [], [], []
    n_total = len(points)
    start = np.asarray(start, float)
    first = points.mean(0) - start
    side0 = np.cross(first, [0.0, 0.0, 1.0])
    side0 /= np.linalg.norm(side0) + 1e-9
    stack = [(start, points, r_root, side0)]
    while stack:
        p, pts, r, side = stack.pop()
        c = pts.mean(0)
        v = c - p
        dist = float(np.linalg.norm(v)) + 1e-9
        d = v / dist
        half = r * 0.5 ** (1 / 3)
        terminal = len(pts) < 2 or half < r_min
        length = dist if terminal else max(step * dist, 2.0 * r)
        length *= 1.0 + 0.1 * rng.standard_normal()
        end = p + d * length
        r_end = r * (0.75 if terminal else 0.97)
        seg_p0.append(p)
        seg_p1.append(end)
        seg_r0.append(r)
        seg_r1.append(r_end)
        side_end = side - d * float(side @ d)
        side_end /= np.linalg.norm(side_end) + 1e-9
        if airway_min is not None and r >= airway_min:
            gap = 1.9 * r + 0.6
            aw_p0.append(p + side * gap)
            aw_p1.append(end + side_end * gap)
            aw_r.append(0.85 * r)
        if terminal:
            continue
        centred = pts - c
        cov = centred.T @ centred
        axis = np.linalg.eigh(cov)[1][:, -1]
        proj = centred @ axis
        cut = np.median(proj) + 0.1 * proj.std() * rng.standard_normal()
        for part in (pts[proj < cut], pts[proj >= cut]):
            if len(part):
                rc = r_root * (len(part) / n_total) ** (1 / 3)
                stack.append((end, part, min(rc, r_end), side_end))
    vessels = Tubes(np.array(seg_p0), np.array(seg_p1), np.array(seg_r0), np.array(seg_r1))
    if aw_r:
        radii = np.array(aw_r)
        airways = Tubes(np.array(aw_p0), np.array(aw_p1), radii, radii.copy())
    else:
        airways = Tubes.concat([])
    return Tree(vessels, airways)

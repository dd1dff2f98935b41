"""Soft-edged shapes painted onto one axial slice of the synthetic CT.

Every shape yields an occupancy `alpha` in 0..1 per pixel, computed from a signed distance
(or an implicit function divided by its change across one voxel), so boundaries get the
smooth partial-volume ramp of a real scanner instead of a staircase. The voxel footprint is
`px` in-plane and `dz` (slice thickness) through the plane, so a surface that runs nearly
parallel to the slice (a diaphragm dome, the top of a kidney) fades over several pixels the
way it does on a real thick slice. Shapes are evaluated only inside their bounding boxes, and
all arrays are float32: the whole study must render in a few seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

F32 = np.float32
Region = tuple[slice, slice]


@dataclass
class Canvas:
    """One slice being painted: HU per pixel, and tissue ids when they are wanted.

    `xs` / `ys` are the x / y (mm) of column / row centres (uniform steps), `z` the slice
    position, `px` the pixel size and `dz` the slice thickness, all in the canvas's frame.
    """

    xs: np.ndarray
    ys: np.ndarray
    z: float
    px: float
    dz: float
    hu: np.ndarray
    tissue: np.ndarray | None = None

    def to_frame(
        self, shift: tuple[float, float, float], scale: tuple[float, float, float]
    ) -> Canvas:
        """The same pixels in another frame, p' = (p - shift) / scale, sharing the arrays."""
        sx, sy, sz = scale
        return replace(
            self,
            xs=((self.xs - shift[0]) / sx).astype(F32),
            ys=((self.ys - shift[1]) / sy).astype(F32),
            z=(self.z - shift[2]) / sz,
            px=self.px / math.sqrt(sx * sy),
            dz=self.dz / sz,
        )

    def region(self, x0: float, x1: float, y0: float, y1: float) -> Region | None:
        """Pixel rows/cols whose centres may lie in [x0, x1] x [y0, y1]; None if none do."""
        n_r, n_c = self.hu.shape
        sx = float(self.xs[1] - self.xs[0]) if n_c > 1 else 1.0
        sy = float(self.ys[1] - self.ys[0]) if n_r > 1 else 1.0
        c0 = max(0, math.floor((x0 - float(self.xs[0])) / sx))
        c1 = min(n_c, math.ceil((x1 - float(self.xs[0])) / sx) + 1)
        r0 = max(0, math.floor((y0 - float(self.ys[0])) / sy))
        r1 = min(n_r, math.ceil((y1 - float(self.ys[0])) / sy) + 1)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def paint(self, reg: Region, alpha: np.ndarray, value: float | np.ndarray, tissue: int) -> None:
        """Blend `value` in with occupancy `alpha`; record `tissue` where alpha >= 0.5."""
        h = self.hu[reg]
        h += alpha * (value - h)
        if self.tissue is not None:
            self.tissue[reg][alpha >= 0.5] = tissue


def ramp(q: np.ndarray) -> np.ndarray:
    """Occupancy from a distance in voxel units (negative inside): 0.5 - q clipped to 0..1,
    computed in place."""
    np.subtract(F32(0.5), q, out=q)
    return np.clip(q, 0.0, 1.0, out=q)


def ellipse_sd(
    cv: Canvas,
    cx: float,
    cy: float,
    ax: float,
    ay_ant: float,
    ay_post: float | None = None,
    pad: float = 0.0,
) -> tuple[Region, np.ndarray] | None:
    """Approximate signed distance (mm, negative inside) to an axis-aligned ellipse whose
    anterior (y < cy) and posterior half-axes may differ, as a body cross-section does.

    Uses (rho - 1) / |grad rho| with rho the normalised radius: exact on a circle and on the
    axes, good to a few per cent near the boundary, which is where it matters."""
    ay_post = ay_ant if ay_post is None else ay_post
    reg = cv.region(cx - ax - pad, cx + ax + pad, cy - ay_ant - pad, cy + ay_post + pad)
    if reg is None:
        return None
    rs, cs = reg
    u = (cv.xs[cs] - F32(cx)) / F32(ax)
    dy = cv.ys[rs] - F32(cy)
    ay = np.where(dy < 0, F32(ay_ant), F32(ay_post))
    v = dy / ay
    rho = np.sqrt((v * v)[:, None] + (u * u + F32(1e-12))[None, :])
    g = np.sqrt(
        ((v / ay) ** 2)[:, None] + ((u / F32(ax)) ** 2 + F32(1e-12 / (ax * ay_ant)))[None, :]
    )
    sd = rho - F32(1.0)
    sd *= rho
    sd /= g
    return reg, sd


def ellipse_alpha(
    cv: Canvas, cx: float, cy: float, ax: float, ay_ant: float, ay_post: float | None = None
) -> tuple[Region, np.ndarray] | None:
    """Occupancy of an axis-aligned ellipse (see `ellipse_sd`)."""
    out = ellipse_sd(cv, cx, cy, ax, ay_ant, ay_post, pad=cv.px)
    if out is None:
        return None
    reg, sd = out
    sd /= F32(cv.px)
    return reg, ramp(sd)


def rotation(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Rotation about z (yaw), then y (pitch), then x (roll): enough to tilt an organ."""
    a, b, c = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rx = np.array([[1, 0, 0], [0, math.cos(c), -math.sin(c)], [0, math.sin(c), math.cos(c)]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Ellipsoid:
    """(p - centre)^T M (p - centre) <= 1, with M = R diag(1/a^2) R^T."""

    centre: tuple[float, float, float]
    m: np.ndarray

    @classmethod
    def make(cls, centre, semi_axes, rot: np.ndarray | None = None) -> Ellipsoid:
        r = np.eye(3) if rot is None else np.asarray(rot, float)
        m = r @ np.diag(1.0 / np.asarray(semi_axes, float) ** 2) @ r.T
        x, y, z = (float(v) for v in centre)
        return cls((x, y, z), m)

    def grown(self, mm: float) -> Ellipsoid:
        """The same ellipsoid with every semi-axis longer by `mm` (a fat rim, a wall)."""
        w, v = np.linalg.eigh(self.m)
        axes = 1.0 / np.sqrt(w) + mm
        return Ellipsoid(self.centre, v @ np.diag(1.0 / axes**2) @ v.T)

    def contains(self, points: np.ndarray) -> np.ndarray:
        d = np.asarray(points, float) - np.asarray(self.centre)
        return np.einsum("...i,ij,...j->...", d, self.m, d) <= 1.0


def ellipsoid_alpha(cv: Canvas, e: Ellipsoid) -> tuple[Region, np.ndarray] | None:
    """Occupancy of an ellipsoid on the slice, with through-plane partial volume."""
    m = e.m
    cx, cy, cz = e.centre
    dz = cv.z - cz
    ez = math.sqrt(np.linalg.inv(m)[2, 2])
    if abs(dz) > ez + cv.dz:
        return None
    # The section of the nearest plane inside the slab bounds the footprint.
    dzn = math.copysign(max(0.0, abs(dz) - cv.dz / 2), dz)
    a = m[:2, :2]
    ainv = np.linalg.inv(a)
    b = m[:2, 2] * dzn
    k = float(b @ ainv @ b - (m[2, 2] * dzn * dzn - 1.0))
    d0 = -ainv @ b
    k = max(k, 0.05)
    pad = 2 * cv.px + cv.dz
    hx = math.sqrt(k * ainv[0, 0]) + pad
    hy = math.sqrt(k * ainv[1, 1]) + pad
    reg = cv.region(cx + d0[0] - hx, cx + d0[0] + hx, cy + d0[1] - hy, cy + d0[1] + hy)
    if reg is None:
        return None
    rs, cs = reg
    x = cv.xs[cs] - F32(cx)
    y = cv.ys[rs] - F32(cy)
    f_row = F32(m[0, 0]) * x * x + F32(2 * m[0, 2] * dz) * x
    f_col = F32(m[1, 1]) * y * y + F32(2 * m[1, 2] * dz) * y + F32(m[2, 2] * dz * dz - 1)
    f = np.multiply.outer(F32(2 * m[0, 1]) * y, x)
    f += f_row[None, :]
    f += f_col[:, None]
    gx = (F32(m[0, 0]) * x)[None, :] + (F32(m[0, 1]) * y + F32(m[0, 2] * dz))[:, None]
    gy = (F32(m[0, 1]) * x)[None, :] + (F32(m[1, 1]) * y + F32(m[1, 2] * dz))[:, None]
    gz = (F32(m[0, 2]) * x)[None, :] + (F32(m[1, 2]) * y + F32(m[2, 2] * dz))[:, None]
    gx *= gx
    gy *= gy
    gx += gy
    gx *= F32(4 * cv.px * cv.px)
    gz *= gz
    gz *= F32(4 * cv.dz * cv.dz)
    gx += gz
    gx += F32(1e-12)
    np.sqrt(gx, out=gx)
    f /= gx
    return reg, ramp(f)


def soft_above(value: np.ndarray, threshold: float, width: np.ndarray | float) -> np.ndarray:
    """Occupancy of `value > threshold` with a ramp `width` wide (a height-field surface)."""
    q = (F32(threshold) - value) / width
    return ramp(q)


def blur3(a: np.ndarray, axis: int) -> np.ndarray:
    """In-place [1, 2, 1] / 4 blur of a 2D array along one axis, edges replicated."""
    q = a * F32(0.25)
    a *= F32(0.5)
    if axis == 0:
        a[1:] += q[:-1]
        a[:-1] += q[1:]
        a[0] += q[0]
        a[-1] += q[-1]
    else:
        a[:, 1:] += q[:, :-1]
        a[:, :-1] += q[:, 1:]
        a[:, 0] += q[:, 0]
        a[:, -1] += q[:, -1]
    return a

"""Oblique planes: a plane through the crosshair along any two perpendicular directions, resampled
from the volume (trilinear for images, nearest for label maps), with the same interface as an
orthogonal PlaneMap where the views and measurements use it (to_index, from_index, image,
pixel_mm, screen_shape, edge_letters), so rulers measure true millimetres in it.

Screen pixels are square, at the volume's finest spacing, so a distance on screen is a
distance in the patient whatever the voxel spacing; `to_index` and `from_index` go through
LPS millimetres and the volume's affine, never through index steps (which are anisotropic).
The plane holds enough pixels to show the whole volume in any rotation (its diagonal)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medview.core.geometry import orientation_letter


def rotation(axis: npt.ArrayLike, degrees: float) -> np.ndarray:
    """3 x 3 rotation about a unit `axis` (LPS) by `degrees`, right-handed (Rodrigues)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


@dataclass(frozen=True)
class ObliqueMap:
    """A stack of parallel oblique planes through `centre_lps`: screen rows go along `down`,
    columns along `right` (unit LPS vectors), slices along `normal` = down x right."""

    centre_lps: np.ndarray
    down: np.ndarray
    right: np.ndarray
    pixel: float  # mm, rows and columns
    size: int  # screen pixels per side
    n_slices: int
    affine: np.ndarray  # the volume's: index (slice, row, col, 1) -> LPS

    @classmethod
    def through(
        cls,
        affine: np.ndarray,
        shape: tuple[int, ...],
        centre_lps: np.ndarray,
        down: np.ndarray,
        right: np.ndarray,
    ) -> ObliqueMap:
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        extent = float(np.linalg.norm(np.asarray(shape[:3]) * spacing))  # the diagonal
        pixel = float(spacing.min())
        size = int(np.ceil(extent / pixel)) | 1  # odd: the centre is a pixel's centre
        d = np.asarray(down, float) / np.linalg.norm(down)
        r = np.asarray(right, float) - np.dot(right, d) * d
        return cls(
            np.asarray(centre_lps, float),
            d,
            r / np.linalg.norm(r),
            pixel,
            size,
            size,
            np.asarray(affine, float),
        )

    # -- the PlaneMap interface
    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.down, self.right)

    @property
    def pixel_mm(self) -> tuple[float, float]:
        return self.pixel, self.pixel

    @property
    def screen_shape(self) -> tuple[int, int]:
        return self.size, self.size

    @property
    def edge_letters(self) -> tuple[str, str, str, str]:
        return (
            orientation_letter(-self.down),
            orientation_letter(self.down),
            orientation_letter(-self.right),
            orientation_letter(self.right),
        )

    def to_lps(self, index: float, row: float, col: float) -> np.ndarray:
        half = (self.size - 1) / 2
        return (
            self.centre_lps
            + (row - half) * self.pixel * self.down
            + (col - half) * self.pixel * self.right
            + (index - (self.n_slices - 1) / 2) * self.pixel * self.normal
        )

    def to_index(self, index: float, row: float, col: float) -> np.ndarray:
        return _lps_to_index(self.affine, self.to_lps(index, row, col))

    def from_index(self, ijk: np.ndarray) -> tuple[float, float, float]:
        lps = self.affine[:3, :3] @ np.asarray(ijk, float) + self.affine[:3, 3]
        rel = (lps - self.centre_lps) / self.pixel
        half = (self.size - 1) / 2
        return (
            float(rel @ self.normal + (self.n_slices - 1) / 2),
            float(rel @ self.down + half),
            float(rel @ self.right + half),
        )

    def image(self, array: np.ndarray, index: int) -> np.ndarray:
        """Slice `index` resampled: trilinear for float and int16 images (rounded back to
        the array's type), nearest for uint8 label maps; outside the volume the lowest
        value of the type (air for CT)."""
        start = self.to_index(index, 0, 0)
        d_row = self.to_index(index, 1, 0) - start
        d_col = self.to_index(index, 0, 1) - start
        return reslice(
            array, start, d_row, d_col, (self.size, self.size), nearest=array.dtype == np.uint8
        )


def _lps_to_index(affine: np.ndarray, lps: np.ndarray) -> np.ndarray:
    return np.linalg.solve(affine[:3, :3], np.asarray(lps, float) - affine[:3, 3])


class _Workspace(threading.local):
    """Arrays kept between frames, one set per thread: a fresh megabyte-sized array per step
    made the kernel map and zero new pages every frame, which took longer than the arithmetic
    (the index arithmetic of a 512 x 512 plane: 7.8 ms with fresh arrays, 2.1 ms without
    the page faults). They hold about 70 bytes per pixel inside the volume and 2 per pixel of
    the canvas: some 20 MB for the planes of a 300 x 512 x 512 CT, freed with the thread."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, dtype: npt.DTypeLike) -> np.ndarray:
        """The first `n` items of the buffer `name`, grown (never shrunk) to fit."""
        buf = self.arrays.get(name)
        if buf is None or buf.size < n or buf.dtype != dtype:
            buf = self.arrays[name] = np.empty(n, dtype)
        return buf[:n]

    def iota(self, n: int) -> np.ndarray:
        """0, 1, ..., n - 1, computed once per size reached."""
        buf = self.arrays.get("iota")
        if buf is None or buf.size < n:
            buf = self.arrays["iota"] = np.arange(n, dtype=np.intp)
        return buf[:n]


_work = _Workspace()


def _spans(
    hi: np.ndarray, start: np.ndarray, d_row: np.ndarray, d_col: np.ndarray, rows: int, cols: int
) -> tuple[np.ndarray, np.ndarray]:
    """First and last column (inclusive) of each row whose sample lies inside the volume
    [0, hi] on every axis; last < first where none does. Each index is linear along a row, so
    the columns inside form one interval, found per row in float64 without touching pixels.
    A sample on a face counts as inside: the bounds have a slack of 1e-6 voxel, as the
    division would otherwise put some of them a rounding outside."""
    slack = 1e-6
    r = np.arange(rows, dtype=float)
    first = np.zeros(rows)
    last = np.full(rows, cols - 1.0)
    for a in range(3):
        p = start[a] + r * d_row[a]  # the index at column 0
        if d_col[a] == 0:  # constant along the row: all inside or none
            last[(p < -slack) | (p > hi[a] + slack)] = -1.0
            continue
        lo_c, hi_c = (-slack - p) / d_col[a], (hi[a] + slack - p) / d_col[a]
        if d_col[a] < 0:
            lo_c, hi_c = hi_c, lo_c
        first = np.maximum(first, np.ceil(lo_c))
        last = np.minimum(last, np.floor(hi_c))
    # bounded before the cast: a nearly-zero step puts the ends of the line far away
    return np.minimum(first, cols).astype(np.intp), np.maximum(last, -1).astype(np.intp)


def reslice(
    array: np.ndarray,
    start: np.ndarray,
    d_row: np.ndarray,
    d_col: np.ndarray,
    shape: tuple[int, int],
    nearest: bool = False,
) -> np.ndarray:
    """The 2D image whose pixel (r, c) samples `array` at index start + r d_row + c d_col.

    Only the pixels inside the volume are computed (a plane's diagonal-sized canvas is mostly
    outside it): their columns per row come from `_spans`, their indices in float32, then
    trilinear interpolation as eight gathers of the int16 voxels at a precomputed floor, in
    float32, into buffers reused between frames."""
    rows, cols = shape
    fill = -1024 if array.dtype == np.int16 else 0  # air for CT, black otherwise
    out = np.full(shape, fill, array.dtype)
    dims = array.shape[:3]
    hi = np.array(dims, float) - 1
    first, last = _spans(hi, start, d_row, d_col, rows, cols)
    counts = np.maximum(last - first + 1, 0)
    n = int(counts.sum())
    if n == 0:
        return out
    # Inside pixels are numbered row after row. Each one's row: a cumulative sum of the row
    # steps placed at the rows' first pixels; its column: its number less a per-row shift.
    # All into kept buffers (np.repeat and a boolean mask of the canvas were fresh arrays,
    # a quarter of the time on a viewer's 843 x 843 canvas).
    # Every np.take has mode "clip" (indices are in range): "raise" copies through a buffer.
    rows_in = np.flatnonzero(counts)
    row_first = np.cumsum(counts) - counts  # the number of each row's first inside pixel
    row_of = _work.get("row", n, np.intp)
    row_of[:] = 0
    row_of[row_first[rows_in]] = np.diff(rows_in, prepend=0)
    np.cumsum(row_of, out=row_of)
    iota = _work.iota(n)
    step = _work.get("step", n, np.intp)
    np.take(row_first - first, row_of, out=step, mode="clip")
    np.subtract(iota, step, out=step)
    col = _work.get("col", n, np.float32)
    col[:] = step
    # which pixels of `out` they are (assigning through a mask streams; np.put scatters)
    inside = _work.get("inside", rows * cols, bool).reshape(rows, cols)
    to_last = _work.get("to last", rows * cols, bool).reshape(rows, cols)
    np.greater_equal(np.arange(cols), first[:, None], out=inside)
    np.less_equal(np.arange(cols), last[:, None], out=to_last)
    inside &= to_last
    row = np.arange(rows)
    tmp = _work.get("tmp", n, np.float32)
    pts = []
    for a in range(3):
        x = _work.get(f"x{a}", n, np.float32)
        np.take((start[a] + row * d_row[a]).astype(np.float32), row_of, out=x, mode="clip")
        np.multiply(col, np.float32(d_col[a]), out=tmp)
        x += tmp
        pts.append(x)
    # flat gathers from the contiguous volume (a tuple gather per corner was 4x slower)
    # (loaded volumes are contiguous; another array is copied first)
    flat = np.ascontiguousarray(array).reshape(-1)
    strides = [int(np.prod(dims[a + 1 :])) for a in range(3)]
    lin = _work.get("lin", n, np.intp)  # flat index of each pixel's voxel (its floor corner)
    lin[:] = 0
    for a in range(3):
        if nearest:
            np.rint(pts[a], out=tmp)
        else:
            np.floor(pts[a], out=tmp)
            # the last voxel interpolates from below; an index a little outside (float32
            # rounding, the spans' slack) takes the face's voxel with a weight a little over 1
            np.clip(tmp, 0, np.float32(max(dims[a] - 2, 0)), out=tmp)
            pts[a] -= tmp  # now the fraction
        # multiplied as integers: floor x stride in float32 loses units above 2**24
        np.copyto(step, tmp, casting="unsafe")
        step *= strides[a]
        lin += step
    g = _work.get("gather", n, array.dtype)
    g2 = _work.get("gather 2", n, array.dtype)
    if nearest:
        np.take(flat, lin, out=g, mode="clip")
        out[inside] = g
        return out
    f0, f1, f2 = pts
    # a size-1 axis has step 0, so its "next" voxel is itself
    s0, s1, s2 = (strides[a] if dims[a] > 1 else 0 for a in range(3))

    def along_last(off: int, dst: np.ndarray) -> np.ndarray:
        """The voxels at `off` and `off` + s2 from each floor interpolated along the last
        axis, into `dst` (offset views of the volume instead of index arithmetic)."""
        np.take(flat[off:], lin, out=g, mode="clip")
        np.take(flat[off + s2 :], lin, out=g2, mode="clip")
        np.subtract(g2, g, out=dst, dtype=np.float32)
        dst *= f2
        dst += g
        return dst

    def lerp(lo: np.ndarray, hi_: np.ndarray, f: np.ndarray) -> np.ndarray:
        """lo + (hi - lo) f, into lo."""
        hi_ -= lo
        hi_ *= f
        lo += hi_
        return lo

    a_, b_, c_ = (_work.get(k, n, np.float32) for k in ("a", "b", "c"))
    c0 = lerp(along_last(0, a_), along_last(s1, b_), f1)
    c1 = lerp(along_last(s0, b_), along_last(s0 + s1, c_), f1)
    acc = lerp(c0, c1, f0)
    if array.dtype.kind in "iu":
        np.rint(acc, out=acc)
    out[inside] = acc
    return out


def plane_axes(pm, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit LPS vectors of an orthogonal PlaneMap's screen: down (rows), right (columns) and
    their normal down x right; an oblique plane starts from these and turns."""
    dirs = np.asarray(affine, float)[:3, :3]
    down = dirs[:, pm.row_axis] * (-1 if pm.row_flip else 1)
    right = dirs[:, pm.col_axis] * (-1 if pm.col_flip else 1)
    down, right = down / np.linalg.norm(down), right / np.linalg.norm(right)
    return down, right, np.cross(down, right)


def crosshair_angles(state, plane) -> tuple[float, float]:
    """Angles (degrees, scene x right and y down) of the crosshair's two lines in `plane`'s
    view: where the other planes cut it. (0, 90) while no plane is turned; the first line
    is the axial (or, in the axial view, the coronal) plane's, the second the sagittal's
    (the coronal's in the sagittal view)."""
    from medview.viewer.planes import Plane

    if state.volume is None:
        return 0.0, 90.0
    first = Plane.CORONAL if plane is Plane.AXIAL else Plane.AXIAL
    second = Plane.CORONAL if plane is Plane.SAGITTAL else Plane.SAGITTAL

    def axes(p):
        m = state.view_map(p)
        if isinstance(m, ObliqueMap):
            return m.down, m.right, m.normal
        return plane_axes(m, state.volume.affine)

    down, right, normal = axes(plane)
    out = []
    for other, default in ((first, 0.0), (second, 90.0)):
        d = np.cross(normal, axes(other)[2])
        if np.linalg.norm(d) < 1e-9:
            out.append(default)
            continue
        out.append(float(np.degrees(np.arctan2(d @ down, d @ right))) % 180.0)
    return out[0], out[1]

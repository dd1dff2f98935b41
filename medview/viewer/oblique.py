"""Oblique planes: a plane through the crosshair along any two perpendicular directions, resampled
from the volume (trilinear for images, nearest for label maps), with the same interface as an
orthogonal PlaneMap where the views and measurements use it (to_index, from_index, image,
pixel_mm, screen_shape, edge_letters), so rulers measure true millimetres in it.

Screen pixels are square, at the volume's finest spacing, so a distance on screen is a
distance in the patient whatever the voxel spacing; `to_index` and `from_index` go through
LPS millimetres and the volume's affine, never through index steps (which are anisotropic).
The plane holds enough pixels to show the whole volume in any rotation (its diagonal)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.core.geometry import orientation_letter


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
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


def reslice(
    array: np.ndarray,
    start: np.ndarray,
    d_row: np.ndarray,
    d_col: np.ndarray,
    shape: tuple[int, int],
    nearest: bool = False,
) -> np.ndarray:
    """The 2D image whose pixel (r, c) samples `array` at index start + r d_row + c d_col.

    Only the rows and columns that meet the volume are computed (a plane's diagonal-sized
    canvas is mostly outside it); trilinear weights in float32."""
    rows, cols = shape
    fill = -1024 if array.dtype == np.int16 else 0  # air for CT, black otherwise
    out = np.full(shape, fill, array.dtype)
    hi = np.array(array.shape[:3], float) - 1
    r = np.arange(rows, dtype=np.float32)[:, None]
    c = np.arange(cols, dtype=np.float32)[None, :]
    coords = [
        np.float32(start[a]) + r * np.float32(d_row[a]) + c * np.float32(d_col[a]) for a in range(3)
    ]
    inside = np.ones(shape, bool)
    for a in range(3):
        inside &= (coords[a] >= 0) & (coords[a] <= hi[a])
    if not inside.any():
        return out
    pts = [x[inside] for x in coords]
    if nearest:
        idx = tuple(np.rint(p).astype(np.intp) for p in pts)
        out[inside] = array[idx]
        return out
    # flat gathers from the contiguous volume (a tuple gather per corner was 4x slower);
    # a size-1 axis has stride 0, so its "next" voxel is itself
    # (loaded volumes are contiguous; another array is copied first)
    flat = np.ascontiguousarray(array).reshape(-1)
    dims = array.shape[:3]
    strides = [int(np.prod(dims[a + 1 :])) for a in range(3)]
    lin = np.zeros(len(pts[0]), np.intp)
    frac = []
    steps = []
    for a in range(3):
        b = np.minimum(pts[a].astype(np.intp), max(dims[a] - 2, 0))  # >= 0 inside: floor
        frac.append(pts[a] - b.astype(np.float32))
        lin += b * strides[a]
        steps.append(strides[a] if dims[a] > 1 else 0)

    s0, s1, s2 = steps
    f0, f1, f2 = frac

    def lerp2(off: int) -> np.ndarray:  # along the last axis, at one (slice, row) corner
        lo = flat[lin + off].astype(np.float32)
        return lo + (flat[lin + off + s2] - lo) * f2

    c00, c01, c10, c11 = lerp2(0), lerp2(s1), lerp2(s0), lerp2(s0 + s1)
    c0 = c00 + (c01 - c00) * f1
    c1 = c10 + (c11 - c10) * f1
    acc = c0 + (c1 - c0) * f0
    out[inside] = np.rint(acc).astype(array.dtype) if array.dtype.kind in "iu" else acc
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

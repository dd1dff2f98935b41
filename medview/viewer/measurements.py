"""Measurements a reader draws on a slice — ruler, angle, ellipse and rectangle ROI — and
their maths, without Qt.

A measurement is stored in patient space: its points in LPS millimetres, plus the plane and
slice index it was drawn on. Zoom and pan never touch it, it is drawn again only on that
slice of that plane, and every length comes from LPS points, so anisotropic voxels
(0.6 x 0.9 mm pixels, 2.5 mm slices) measure right in every plane.

Points per kind:
- ruler: the two ends; length = |p1 - p0| in mm.
- angle: first end, vertex, second end; the angle at the vertex in degrees (0..180).
- ellipse, rectangle: two opposite corners of the shape's bounding box on the screen (the
  box is upright on the screen of its plane; an ellipse fills its box).

Which voxels an ROI holds (the rule the statistics use; tests rebuild it independently):
on the 2D image of its plane and slice, pixel (row, col) is inside when its centre is —
for a rectangle when r0 <= row <= r1 and c0 <= col <= c1, for an ellipse when
((row - rc) / ar)^2 + ((col - cc) / ac)^2 <= 1, with (r0, c0), (r1, c1) the box corners in
fractional screen pixels (pixel centres at integers), (rc, cc) its centre and ar, ac its
half-sizes. Centres on the edge count as inside, with a tolerance of INSIDE_EPS pixel so the
LPS round trip's round-off never drops them. Mean, SD (population, ddof=0, as numpy's
default), min and max are of the modality values (HU for CT) of those voxels; the area is
the shape's geometric area in mm² (ellipse pi*a*b, rectangle w*h, from the affine's in-plane
axes), not the pixel count times the pixel area.

An ROI drawn in a turned (oblique) plane also keeps that plane's screen axes (`axes_lps`:
down and right, unit LPS vectors): its box is upright in that plane, and its image is that
plane through the ROI's centre resampled at the finest voxel spacing, the centre on a pixel
centre (viewer.oblique: trilinear, so values are interpolated between voxels), wherever
the views turn later."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

import numpy as np

from medview.core.volume import Volume
from medview.viewer.oblique import ObliqueMap
from medview.viewer.planes import Plane, PlaneMap

RULER, ANGLE, ELLIPSE, RECTANGLE = "ruler", "angle", "ellipse", "rectangle"
KINDS = (RULER, ANGLE, ELLIPSE, RECTANGLE)
ROI_KINDS = (ELLIPSE, RECTANGLE)
N_POINTS = {RULER: 2, ANGLE: 3, ELLIPSE: 2, RECTANGLE: 2}
TITLES = {RULER: "Ruler", ANGLE: "Angle", ELLIPSE: "Ellipse", RECTANGLE: "Rectangle"}
INSIDE_EPS = 1e-6  # pixel


@dataclass
class Measurement:
    kind: str
    plane: Plane
    slice_index: int
    points_lps: np.ndarray  # (N_POINTS[kind], 3) float
    number: int = 0  # "Ruler 3": shown until the reader gives a label
    label: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    axes_lps: np.ndarray | None = None  # (2, 3): an ROI's turned plane (module docstring)

    @property
    def name(self) -> str:
        return self.label or f"{TITLES[self.kind]} {self.number}"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "plane": self.plane.value,
            "slice_index": self.slice_index,
            "number": self.number,
            "label": self.label,
            "points_lps": [[float(x) for x in p] for p in self.points_lps],
        } | ({} if self.axes_lps is None else {"axes_lps": self.axes_lps.tolist()})

    @classmethod
    def from_dict(cls, d: object) -> Measurement:
        """Inverse of to_dict; ValueError naming the first thing wrong with `d`."""
        if not isinstance(d, dict):
            raise ValueError("an entry is not an object")
        kind = d.get("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        try:
            plane = Plane(d.get("plane"))
        except ValueError:
            raise ValueError(f"unknown plane {d.get('plane')!r}") from None
        index, number = d.get("slice_index"), d.get("number", 0)
        label, mid = d.get("label", ""), d.get("id")
        if not isinstance(index, int) or not isinstance(number, int):
            raise ValueError("slice_index and number must be integers")
        if not isinstance(label, str) or not isinstance(mid, str) or not mid:
            raise ValueError("label and id must be text")
        try:
            pts = np.array(d.get("points_lps"), dtype=float)
        except (TypeError, ValueError):
            raise ValueError("points_lps is not a list of numbers") from None
        if pts.shape != (N_POINTS[kind], 3) or not np.isfinite(pts).all():
            raise ValueError(f"a {kind} needs {N_POINTS[kind]} finite LPS points")
        return cls(kind, plane, index, pts, number, label, mid, _axes(kind, d.get("axes_lps")))


def _axes(kind: str, value: object) -> np.ndarray | None:
    """A saved ROI's plane axes, checked: two perpendicular unit vectors (or none)."""
    if value is None:
        return None
    try:
        axes = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("axes_lps is not a list of numbers") from None
    if (
        kind not in ROI_KINDS
        or axes.shape != (2, 3)
        or not np.isfinite(axes).all()
        or not np.allclose(axes @ axes.T, np.eye(2), atol=1e-6)
    ):
        raise ValueError("axes_lps must be an ROI's two perpendicular unit vectors")
    return axes


@dataclass(frozen=True)
class MeasurementValues:
    length_mm: float | None = None
    angle_deg: float | None = None
    area_mm2: float | None = None
    pixels: int | None = None
    mean: float | None = None
    sd: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""


# -- screen <-> patient space
def screen_to_lps(
    volume: Volume, pmap: PlaneMap, slice_index: int, rows_cols: np.ndarray
) -> np.ndarray:
    """(n, 2) fractional (row, col) on slice `slice_index` of a plane -> (n, 3) LPS mm."""
    ijk = np.array([pmap.to_index(slice_index, r, c) for r, c in np.asarray(rows_cols)])
    return volume.index_to_lps(ijk)


def lps_to_screen(
    volume: Volume, pmap: PlaneMap | ObliqueMap, points_lps: np.ndarray
) -> np.ndarray:
    """(n, 3) LPS mm -> (n, 2) fractional (row, col) on the plane's screen image."""
    ijk = volume.lps_to_index(np.asarray(points_lps, float))
    return np.array([pmap.from_index(p)[1:] for p in np.atleast_2d(ijk)])


# -- the maths
def measure(m: Measurement, volume: Volume, pmap: PlaneMap) -> MeasurementValues:
    p = np.asarray(m.points_lps, float)
    if m.kind == RULER:
        return MeasurementValues(length_mm=float(np.linalg.norm(p[1] - p[0])))
    if m.kind == ANGLE:
        return MeasurementValues(angle_deg=angle_deg(p[0], p[1], p[2]))
    if m.axes_lps is not None:
        return _turned_roi(m, volume, m.axes_lps)
    corners = lps_to_screen(volume, pmap, p)
    values = roi_stats(m.kind, pmap.image(volume.array, m.slice_index), corners)
    return MeasurementValues(
        area_mm2=roi_area_mm2(m.kind, volume, pmap, corners), unit=volume.metadata.units, **values
    )


def _turned_roi(m: Measurement, volume: Volume, axes: np.ndarray) -> MeasurementValues:
    """An ROI of a turned plane, measured in that plane through its centre."""
    centre = np.asarray(m.points_lps, float).mean(axis=0)
    om = ObliqueMap.through(volume.affine, volume.shape, centre, axes[0], axes[1])
    corners = lps_to_screen(volume, om, m.points_lps)
    index = (om.n_slices - 1) // 2  # the plane through the centre (n_slices is odd)
    values = roi_stats(m.kind, om.image(volume.array, index), corners)
    d_row, d_col = np.abs(corners[1] - corners[0]) * om.pixel
    box = float(d_row * d_col)
    area = box * math.pi / 4 if m.kind == ELLIPSE else box
    return MeasurementValues(area_mm2=area, unit=volume.metadata.units, **values)


def angle_deg(a: np.ndarray, vertex: np.ndarray, b: np.ndarray) -> float:
    u, v = np.asarray(a, float) - vertex, np.asarray(b, float) - vertex
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(u @ v / (nu * nv), -1.0, 1.0))))


def roi_area_mm2(kind: str, volume: Volume, pmap: PlaneMap, corners_rc: np.ndarray) -> float:
    """Geometric area of the box spanned by two screen corners, through the affine's
    in-plane axes (so a sheared plane's pixels are parallelograms, not rectangles)."""
    d_row, d_col = np.abs(np.asarray(corners_rc[1], float) - corners_rc[0])
    row_vec = volume.affine[:3, pmap.row_axis] * d_row
    col_vec = volume.affine[:3, pmap.col_axis] * d_col
    box = float(np.linalg.norm(np.cross(row_vec, col_vec)))
    return box * math.pi / 4 if kind == ELLIPSE else box


def roi_mask(
    kind: str, corners_rc: np.ndarray, shape: tuple[int, int]
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The voxels inside an ROI (module docstring), as the window of the image around it
    and a boolean mask over that window; an empty mask when it holds no voxel centre."""
    (r0, c0), (r1, c1) = np.sort(np.asarray(corners_rc, float), axis=0)
    lo_r, hi_r = max(0, math.ceil(r0 - INSIDE_EPS)), min(shape[0] - 1, math.floor(r1 + INSIDE_EPS))
    lo_c, hi_c = max(0, math.ceil(c0 - INSIDE_EPS)), min(shape[1] - 1, math.floor(c1 + INSIDE_EPS))
    window = (slice(lo_r, max(lo_r, hi_r + 1)), slice(lo_c, max(lo_c, hi_c + 1)))
    rr, cc = np.ogrid[window[0], window[1]]
    mask = np.ones((rr.size, cc.size), bool)
    if kind == ELLIPSE:
        ar, ac = (r1 - r0) / 2, (c1 - c0) / 2
        if ar <= 0 or ac <= 0:
            return window, np.zeros_like(mask)
        mask = ((rr - (r0 + r1) / 2) / ar) ** 2 + ((cc - (c0 + c1) / 2) / ac) ** 2 <= 1 + INSIDE_EPS
    return window, mask


def roi_stats(kind: str, image: np.ndarray, corners_rc: np.ndarray) -> dict:
    """Pixel count, mean, SD (ddof=0), min and max of the voxels inside; no statistics for
    colour images, whose channels have no single modality value."""
    window, mask = roi_mask(kind, corners_rc, image.shape[:2])
    out: dict = {"pixels": int(mask.sum())}
    if image.ndim != 2 or not out["pixels"]:
        return out
    vals = image[window][mask].astype(np.float64)
    out.update(
        mean=float(vals.mean()),
        sd=float(vals.std()),
        minimum=float(vals.min()),
        maximum=float(vals.max()),
    )
    return out


# -- text
def _num(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def value_lines(m: Measurement, v: MeasurementValues) -> list[str]:
    """The values as the reader reads them, one idea per line."""
    if m.kind == RULER:
        return [f"{v.length_mm:.1f} mm"]
    if m.kind == ANGLE:
        return [f"{v.angle_deg:.1f}°"]
    unit = f" {v.unit}" if v.unit else ""
    lines = []
    if v.mean is not None:
        lines += [
            f"mean {v.mean:.1f}{unit}  SD {v.sd:.1f}",
            f"min {_num(v.minimum)}  max {_num(v.maximum)}",
        ]
    lines.append(f"area {v.area_mm2:.1f} mm²  ({v.pixels} px)")
    return lines

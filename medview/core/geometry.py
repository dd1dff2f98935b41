"""Index <-> world geometry in DICOM's patient frame (LPS millimetres).

Array index order everywhere is (slice, row, col). The affine maps a homogeneous index
(slice, row, col, 1) to (x, y, z, 1) in LPS mm, so its columns are, in order: the step from
one slice to the next, the step down one row (column cosine * row spacing) and the step
along one column (row cosine * column spacing). DICOM's ImageOrientationPatient gives the
row cosine first (direction of increasing column index), which is why the order flips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# a 3-vector as DICOM gives it (a list of floats) or as computed (a numpy array)
Vector = Sequence[float] | np.ndarray


def slice_normal(row_cosine: Vector, col_cosine: Vector) -> np.ndarray:
    """Unit normal of an image plane: row cosine x column cosine (DICOM's right-handed rule)."""
    n = np.cross(np.asarray(row_cosine, float), np.asarray(col_cosine, float))
    norm = np.linalg.norm(n)
    if norm == 0:
        raise ValueError("row and column cosines are parallel")
    return n / norm


def affine_from_plane(
    origin_lps: Vector,
    row_cosine: Vector,
    col_cosine: Vector,
    pixel_spacing_row_col_mm: Vector,
    slice_step_lps: Vector,
) -> np.ndarray:
    """Affine for a stack whose first slice is at `origin_lps` and whose slices step by
    `slice_step_lps` (a vector, so tilted stacks keep their shear)."""
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(slice_step_lps, float)
    affine[:3, 1] = np.asarray(col_cosine, float) * float(pixel_spacing_row_col_mm[0])
    affine[:3, 2] = np.asarray(row_cosine, float) * float(pixel_spacing_row_col_mm[1])
    affine[:3, 3] = np.asarray(origin_lps, float)
    return affine


def index_to_lps(affine: np.ndarray, index_src: np.ndarray | Sequence[float]) -> np.ndarray:
    """Map (..., 3) indices in (slice, row, col) order to LPS mm."""
    idx = np.asarray(index_src, float)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def lps_to_index(affine: np.ndarray, point_lps: np.ndarray | Sequence[float]) -> np.ndarray:
    """Map (..., 3) LPS points to fractional (slice, row, col) indices."""
    inv = np.linalg.inv(affine)
    p = np.asarray(point_lps, float)
    return p @ inv[:3, :3].T + inv[:3, 3]


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along (slice, row, col). The slice spacing is the distance between
    the image planes along their normal (what DICOM's Spacing Between Slices means), not
    the length of the step between slice origins: under a gantry tilt that step is sheared
    and longer (planes 3 mm of table feed apart at 15° lie 3 cos 15° = 2.898 mm apart), while
    mm and volumes (their product is the voxel's volume) need the distance. The affine keeps
    the shear; only this number is along the normal."""
    m = np.asarray(affine, float)[:3, :3]
    s = np.linalg.norm(m, axis=0)
    normal = np.cross(m[:, 2], m[:, 1])  # row cosine x column cosine, scaled
    area = float(np.linalg.norm(normal))
    between = abs(float(m[:, 0] @ normal)) / area if area > 0 else float(s[0])
    return between, float(s[1]), float(s[2])


def shear_angle_deg(affine: np.ndarray) -> float:
    """Angle between the slice step and the image-plane normal (gantry tilt), in degrees."""
    step = affine[:3, 0]
    normal = np.cross(affine[:3, 2], affine[:3, 1])  # row cosine x column cosine
    denom = np.linalg.norm(step) * np.linalg.norm(normal)
    if denom == 0:
        return 0.0
    cos = abs(float(step @ normal)) / denom
    return float(np.degrees(np.arccos(min(1.0, cos))))


def lps_affine_to_ras(affine: np.ndarray) -> np.ndarray:
    """The same index->world map expressed in RAS (as NIfTI and nibabel want)."""
    return LPS_TO_RAS @ affine


def orientation_letter(direction_lps: Vector) -> str:
    """Patient-direction letters for a direction, most dominant axis first (e.g. 'LP').

    Used for orientation labels at view edges; components under 0.25 of the largest are
    left out so a slightly oblique plane still reads 'L' rather than 'LPS'.
    """
    d = np.asarray(direction_lps, float)
    letters = (("L", "R"), ("P", "A"), ("S", "I"))
    order = np.argsort(-np.abs(d))
    biggest = abs(d[order[0]]) or 1.0
    out = []
    for axis in order:
        if abs(d[axis]) >= 0.25 * biggest and abs(d[axis]) > 1e-6:
            out.append(letters[axis][0] if d[axis] > 0 else letters[axis][1])
    return "".join(out)

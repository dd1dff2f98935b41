"""Which array axis each display plane cuts, and how its 2D image is turned for the screen.

Display conventions of radiology viewers (Horos, RadiAnt, OHIF; docs/development.md): axial and
coronal in radiological convention — patient right on screen left; axial with anterior up;
coronal and sagittal with superior up; sagittal with anterior on screen left. Each plane
slices the volume along the array axis most aligned with that plane's normal, so an oblique
MR is shown in its own plane (its edges labelled with the true, mixed letters such as "LA")
and the other two planes are resliced along its own grid, never resampled. Images are
numpy views (flips are negative strides): no copy of the volume per view."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from medview.core.geometry import orientation_letter


class Plane(enum.Enum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# For each plane: the LPS axis its normal follows, the LPS axis and sign that increasing
# screen row must follow (downwards), and the same for increasing screen column (rightwards).
# Axial: rows go towards posterior (+P), columns towards patient left (+L).
# Coronal: rows go towards inferior (-S), columns towards +L.
# Sagittal: rows towards -S, columns towards posterior (+P).
_CONVENTION = {
    Plane.AXIAL: (2, (1, +1), (0, +1)),
    Plane.CORONAL: (1, (2, -1), (0, +1)),
    Plane.SAGITTAL: (0, (2, -1), (1, +1)),
}


@dataclass(frozen=True)
class PlaneMap:
    """How one plane is cut from a (slice, row, col) volume and laid on the screen."""

    plane: Plane
    normal_axis: int  # array axis the slider moves along
    row_axis: int  # array axis along screen rows
    col_axis: int  # array axis along screen columns
    row_flip: bool
    col_flip: bool
    n_slices: int
    pixel_mm: tuple[float, float]  # (row, col) spacing on screen
    edge_letters: tuple[str, str, str, str]  # top, bottom, left, right
    volume_shape: tuple[int, int, int]

    def image(self, array: np.ndarray, index: int) -> np.ndarray:
        """The 2D (rows, cols[, 3]) view for slice `index` along the normal axis."""
        sl: list[slice | int] = [slice(None)] * array.ndim
        sl[self.normal_axis] = index
        return self.orient(array[tuple(sl)])

    def orient(self, img: np.ndarray) -> np.ndarray:
        """A plane cut out along the normal axis (the other two axes in array order) turned
        for the screen: row axis first, flips as negative strides (no copy)."""
        rest = [a for a in range(3) if a != self.normal_axis]
        if rest.index(self.row_axis) == 1:
            img = img.swapaxes(0, 1)
        if self.row_flip:
            img = img[::-1]
        if self.col_flip:
            img = img[:, ::-1]
        return img

    def to_index(self, index: float, row: float, col: float) -> np.ndarray:
        """Volume index (slice, row, col) of a point on this plane's screen image."""
        rows, cols = self.screen_shape
        out = np.zeros(3)
        out[self.normal_axis] = index
        out[self.row_axis] = (rows - 1 - row) if self.row_flip else row
        out[self.col_axis] = (cols - 1 - col) if self.col_flip else col
        return out

    def from_index(self, ijk: np.ndarray) -> tuple[float, float, float]:
        """(slice index, screen row, screen col) of a volume index on this plane."""
        rows, cols = self.screen_shape
        r = float(ijk[self.row_axis])
        c = float(ijk[self.col_axis])
        return (
            float(ijk[self.normal_axis]),
            (rows - 1 - r) if self.row_flip else r,
            (cols - 1 - c) if self.col_flip else c,
        )

    @property
    def screen_shape(self) -> tuple[int, int]:
        return self.volume_shape[self.row_axis], self.volume_shape[self.col_axis]


def _dominant_axes(affine: np.ndarray) -> list[int]:
    """For LPS axes x, y, z: the array axis most aligned with each (a permutation)."""
    dirs = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    best, best_score = [0, 1, 2], -1.0
    for perm in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        score = sum(abs(dirs[lps, perm[lps]]) for lps in range(3))
        if score > best_score:
            best, best_score = list(perm), score
    return best


def plane_map(affine: np.ndarray, shape: tuple[int, ...], plane: Plane) -> PlaneMap:
    """The PlaneMap for `plane` of a volume with this affine and (slice, row, col) shape."""
    axis_of = _dominant_axes(affine)  # axis_of[lps] = array axis
    normal_lps, (row_lps, row_sign), (col_lps, col_sign) = _CONVENTION[plane]
    normal_axis, row_axis, col_axis = axis_of[normal_lps], axis_of[row_lps], axis_of[col_lps]
    dirs = affine[:3, :3]
    row_flip = dirs[row_lps, row_axis] * row_sign < 0
    col_flip = dirs[col_lps, col_axis] * col_sign < 0
    spacing = np.linalg.norm(dirs, axis=0)
    down = dirs[:, row_axis] * (-1 if row_flip else 1)
    right = dirs[:, col_axis] * (-1 if col_flip else 1)
    letters = (
        orientation_letter(-down),
        orientation_letter(down),
        orientation_letter(-right),
        orientation_letter(right),
    )
    return PlaneMap(
        plane,
        normal_axis,
        row_axis,
        col_axis,
        bool(row_flip),
        bool(col_flip),
        int(shape[normal_axis]),
        (float(spacing[row_axis]), float(spacing[col_axis])),
        letters,
        (int(shape[0]), int(shape[1]), int(shape[2])),
    )


def native_plane(affine: np.ndarray) -> Plane:
    """The plane the series was acquired in (the one its slices are)."""
    axis_of = _dominant_axes(affine)
    return {axis_of[2]: Plane.AXIAL, axis_of[1]: Plane.CORONAL, axis_of[0]: Plane.SAGITTAL}[0]

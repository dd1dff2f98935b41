"""An overlay layer from an image file: a label map or a probability map that another tool
(a segmentation model, ITK-SNAP, 3D Slicer, dcm2niix + nibabel) wrote beside the image.

The overlay must cover the image's voxels: the same grid, though it may be stored in
another axis order or direction (a NIfTI written from the same DICOM often flips rows).
Such a grid is put in the image's (slice, row, col) order as a numpy view, never resampled,
so each overlay voxel stays the voxel it labels. Every voxel corner must land within
GRID_TOLERANCE_MM of the image's; anything else is refused with one sentence naming the
file and both grids (resampling is the user's decision, not a silent step)."""

from __future__ import annotations

import warnings
from itertools import product
from pathlib import Path

import numpy as np

from medview.core.errors import InvalidInputError
from medview.core.volume import Volume
from medview.viewer.layers import OverlayLayer

GRID_TOLERANCE_MM = 1e-3


def _dims(shape: tuple[int, ...]) -> str:
    """A grid as NIfTI and ITK tools show it: columns x rows x slices."""
    return " x ".join(str(n) for n in shape[2::-1])


def layer_name(path: str | Path) -> str:
    """The file name without its image suffix (.nii.gz counts as one)."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _on_image_grid(overlay: Volume, image: Volume) -> tuple[np.ndarray | None, float]:
    """The overlay's array in the image's axis order and direction (a view) and the largest
    distance in mm between matching voxel centres at the grid's corners; (None, inf) when
    no axis order makes the shapes match."""
    to_image = np.linalg.inv(image.affine) @ overlay.affine  # overlay index -> image index
    axis_of = np.abs(to_image[:3, :3]).argmax(axis=0)  # image axis of each overlay axis
    if sorted(axis_of.tolist()) != [0, 1, 2]:
        return None, np.inf
    order = np.argsort(axis_of)  # overlay axis along each image axis
    flips = [to_image[axis, j] < 0 for j, axis in enumerate(axis_of)]
    array = overlay.array.transpose(*order, *range(3, overlay.array.ndim))
    if array.shape[:3] != image.shape:
        return None, np.inf
    index = [slice(None, None, -1) if flips[order[k]] else slice(None) for k in range(3)]
    array = array[tuple(index)]
    worst = 0.0
    for corner in product(*[(0, n - 1) for n in image.shape]):
        o = np.zeros(3)
        for k, c in enumerate(corner):
            n = image.shape[k]
            o[order[k]] = (n - 1 - c) if flips[order[k]] else c
        worst = max(
            worst,
            float(np.linalg.norm(overlay.index_to_lps(o) - image.index_to_lps(np.array(corner)))),
        )
    return array, worst


def _is_whole(array: np.ndarray) -> bool:
    """Whether a float array holds whole numbers only, a slice at a time (no volume-sized
    temporary)."""
    return all(np.array_equal(s, np.round(s)) for s in array.reshape(array.shape[0], -1))


def overlay_from_image(overlay: Volume, image: Volume, name: str) -> OverlayLayer:
    """A label layer (integer voxels, or whole-number floats, 0..255) or a heatmap layer
    (floats in 0..1) from `overlay`, laid on `image`'s grid. Raises InvalidInputError with
    the sentence for the user when it does not fit."""
    where = overlay.metadata.source or name
    if overlay.is_colour:
        raise InvalidInputError(
            where, "is a colour image; an overlay must be a label map or a probability map"
        )
    array, off_mm = _on_image_grid(overlay, image)
    if array is None:
        raise InvalidInputError(
            where,
            f"has a {_dims(overlay.shape)} grid and the image "
            f"{_dims(image.shape)}; resample it onto the image "
            f"grid first",
        )
    if off_mm > GRID_TOLERANCE_MM:
        raise InvalidInputError(
            where,
            f"has a {_dims(overlay.shape)} grid like the image "
            f"({_dims(image.shape)}) but lies up to {off_mm:.3g} "
            f"mm away from it; resample it onto the image grid "
            f"first",
        )
    if array.size == 0:
        raise InvalidInputError(where, "holds no voxels")
    floating = array.dtype.kind == "f"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: said below
        lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
    if np.isnan(lo):
        raise InvalidInputError(where, "holds no numbers (all voxels are NaN)")
    if floating and lo >= 0.0 and hi <= 1.0:
        return OverlayLayer(name, array.astype(np.float32, copy=False), kind="heatmap")
    if lo >= 0 and hi <= 255 and (not floating or _is_whole(array)):
        return OverlayLayer(name, array.astype(np.uint8, copy=False), kind="labels")
    raise InvalidInputError(
        where,
        f"holds values {lo:.4g} to {hi:.4g}, neither labels "
        f"(whole numbers 0 to 255) nor probabilities (0 to 1)",
    )

"""The geometry of the label tools, Qt-free: which voxels a brush dab, a flood fill, a lasso
or a clean-up touches. LabelEditor turns these voxel sets into label writes and undo steps.

Everything works in the volume's own (slice, row, col) index space with its spacing in mm,
so a 5 mm brush is 5 mm along every axis of an anisotropic CT (a 0.7 x 0.7 x 2.5 mm grid
gives an ellipse of voxels on coronal and sagittal views, a circle on screen). A view's
screen pixel (row, col) on its shown slice becomes a volume index through the plane's
PlaneMap (coronal and sagittal images are flipped / transposed views of the volume).

Results are flat indices into the C-ordered label array: what LabelMap.write takes, and
what a sparse undo step stores. The clean-up tools (islands, smoothing, interpolation) work
on the crop around a segment, never on the whole volume."""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import numpy as np

from medview.viewer.planes import PlaneMap

FULL_3D = np.ones((3, 3, 3), bool)  # 26-connectivity, as the AI findings are cut


# -- plane pixels <-> volume indices ---------------------------------------------------
def screen_to_ijk(pm: PlaneMap, slice_index: int, rows: Any, cols: Any) -> np.ndarray:
    """(N, 3) integer volume indices of screen pixels (rows, cols) on slice `slice_index`
    of this plane (vectorised PlaneMap.to_index, rounded)."""
    rows = np.rint(np.asarray(rows, float)).astype(np.int64).ravel()
    cols = np.rint(np.asarray(cols, float)).astype(np.int64).ravel()
    n_rows, n_cols = pm.screen_shape
    out = np.empty((rows.size, 3), np.int64)
    out[:, pm.normal_axis] = slice_index
    out[:, pm.row_axis] = (n_rows - 1 - rows) if pm.row_flip else rows
    out[:, pm.col_axis] = (n_cols - 1 - cols) if pm.col_flip else cols
    return out


def flat_indices(ijk: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Flat C-order indices of the (N, 3) indices that lie inside `shape` (others dropped)."""
    ijk = np.asarray(ijk, np.int64).reshape(-1, 3)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(shape)), axis=1)
    return np.ravel_multi_index(ijk[inside].T, shape).astype(np.int64)


# -- brush -----------------------------------------------------------------------------
@lru_cache(maxsize=64)
def ball_offsets(
    spacing_mm: tuple[float, float, float], radius_mm: float, flat_axis: int | None
) -> np.ndarray:
    """(N, 3) index offsets of the voxels whose centres lie within `radius_mm` of the
    centre voxel's, in mm along each axis: a sphere, or with `flat_axis` a disc in the other
    two axes (no extent along `flat_axis`). Always at least the centre voxel."""
    spacing = np.asarray(spacing_mm, float)
    reach = np.floor(radius_mm / spacing).astype(int)
    if flat_axis is not None:
        reach[flat_axis] = 0
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    offs = np.stack([g.ravel() for g in grids], axis=1)
    dist2 = ((offs * spacing) ** 2).sum(axis=1)
    offs = offs[dist2 <= radius_mm**2 + 1e-9]
    offs.setflags(write=False)
    return offs


def stroke_points(
    a: np.ndarray, b: np.ndarray, spacing_mm: tuple[float, float, float], radius_mm: float
) -> np.ndarray:
    """Dab centres (M, 3) from index `a` (excluded) to `b` (included), close enough that
    consecutive brushes of `radius_mm` overlap: a fast drag leaves no gap."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    reach = np.maximum(radius_mm / np.asarray(spacing_mm, float), 1.0)  # radius in voxels
    n = int(np.ceil(np.max(np.abs(b - a) / np.maximum(reach / 2, 1.0))))
    if n <= 0:
        return b[None]
    t = np.arange(1, n + 1)[:, None] / n
    return a + (b - a) * t


def brush_indices(
    centres_ijk: np.ndarray,
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    radius_mm: float,
    flat_axis: int | None,
) -> np.ndarray:
    """Flat indices of the union of brushes at the (M, 3) centres (rounded to voxels)."""
    offs = ball_offsets(tuple(float(s) for s in spacing_mm), float(radius_mm), flat_axis)
    centres = np.unique(
        np.rint(np.asarray(centres_ijk, float).reshape(-1, 3)).astype(np.int64), axis=0
    )
    ijk = (centres[:, None, :] + offs[None]).reshape(-1, 3)
    idx = flat_indices(ijk, shape)
    return np.unique(idx) if len(centres) > 1 else idx


def plane_brush_indices(
    centres_ijk: np.ndarray,
    shape: tuple[int, int, int],
    axes: np.ndarray,
    normal: np.ndarray,
    radius_mm: float,
) -> np.ndarray:
    """Flat indices of a brush disc of `radius_mm` in an oblique plane (unit LPS `normal`)
    at each of the (M, 3) fractional index centres: the voxels the plane cuts (centre within
    half the voxel box's extent along the normal, so every pixel the oblique view shows of
    the disc is painted and the layer is one voxel thick) whose centre lies within
    `radius_mm` of the dab's centre along the plane. `axes`: the affine's 3 x 3 (an index
    step in LPS mm per column), so anisotropic and tilted voxels measure true mm."""
    axes = np.asarray(axes, float)
    normal = np.asarray(normal, float)
    half_thick = 0.5 * float(np.abs(normal @ axes).sum())
    reach = np.ceil((radius_mm + half_thick) / np.linalg.norm(axes, axis=0)).astype(int)
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    offs = np.stack([g.ravel() for g in grids], axis=1)
    picked = []
    for c in np.asarray(centres_ijk, float).reshape(-1, 3):
        vox = np.rint(c).astype(np.int64) + offs
        d = (vox - c) @ axes.T  # LPS mm from the dab's centre
        along = d @ normal
        across2 = (d * d).sum(axis=1) - along * along
        picked.append(vox[(np.abs(along) <= half_thick + 1e-9) & (across2 <= radius_mm**2 + 1e-9)])
    return np.unique(flat_indices(np.concatenate(picked), shape))


def in_range(image: np.ndarray, flat: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The flat indices whose image value lies in [lo, hi] (the threshold brush)."""
    values = image.reshape(-1)[flat]
    return flat[(values >= lo) & (values <= hi)]


# -- fill ------------------------------------------------------------------------------
def region_grow(
    image: np.ndarray,
    seed_ijk: Any,
    tolerance: float,
    normal_axis: int | None = None,
    start_reach: int = 32,
) -> np.ndarray:
    """Flat indices of the connected region around `seed_ijk` whose values lie within
    `tolerance` of the seed's value; with `normal_axis`, only on the seed's slice along
    that axis (4-connected in-plane), otherwise in 3D (6-connected: a fill leaks through
    fewer thin walls than with 26).

    Grown in a box around the seed that doubles while the region touches its sides, so
    filling a 1 cm lesion of a 300 x 512 x 512 CT labels a small crop, not 78 M voxels."""
    from scipy import ndimage

    seed = np.rint(np.asarray(seed_ijk, float)).astype(np.int64)
    shape = np.asarray(image.shape)
    if np.any(seed < 0) or np.any(seed >= shape):
        return np.empty(0, np.int64)
    centre = float(image[tuple(seed)])
    lo, hi = centre - tolerance, centre + tolerance
    reach = np.full(3, start_reach)
    if normal_axis is not None:
        reach[normal_axis] = 0
    while True:
        first, stop = np.maximum(seed - reach, 0), np.minimum(seed + reach + 1, shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(first, stop, strict=True))
        crop = image[box]
        comp, _ = ndimage.label((crop >= lo) & (crop <= hi))
        region = comp == comp[tuple(seed - first)]
        open_sides = [
            a != normal_axis
            and (
                (first[a] > 0 and region.take(0, axis=a).any())
                or (stop[a] < shape[a] and region.take(-1, axis=a).any())
            )
            for a in range(3)
        ]
        if not any(open_sides):
            return box_flat(box, region, image.shape)
        reach = np.where(open_sides, reach * 2, reach)


def polygon_pixels(points_rc: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixels whose centres lie inside the closed polygon (even-odd
    rule), points as (row, col) pixel coordinates; one scanline per row of its bounding box,
    so a lasso over a whole 512 x 512 slice costs a few milliseconds."""
    p = np.asarray(points_rc, float).reshape(-1, 2)
    if len(p) < 3:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    r0 = max(0, int(np.ceil(p[:, 0].min())))
    r1 = min(shape[0] - 1, int(np.floor(p[:, 0].max())))
    a, b = p, np.roll(p, -1, axis=0)
    rows_out, cols_out = [], []
    for r in range(r0, r1 + 1):
        # edges crossing the scanline at y = r (half-open, so a vertex counts once)
        crosses = (a[:, 0] <= r) != (b[:, 0] <= r)
        if not crosses.any():
            continue
        ea, eb = a[crosses], b[crosses]
        xs = np.sort(ea[:, 1] + (r - ea[:, 0]) * (eb[:, 1] - ea[:, 1]) / (eb[:, 0] - ea[:, 0]))
        for x0, x1 in zip(xs[0::2], xs[1::2], strict=False):
            c0, c1 = max(0, int(np.ceil(x0))), min(shape[1] - 1, int(np.floor(x1)))
            if c1 >= c0:
                cols_out.append(np.arange(c0, c1 + 1))
                rows_out.append(np.full(c1 - c0 + 1, r))
    if not rows_out:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows_out), np.concatenate(cols_out)


# -- whole-segment tools, on the crop around the segment -------------------------------
def segment_box(labels: np.ndarray, value: int, margin: Any = 0) -> tuple[slice, ...] | None:
    """The bounding box of `value` in `labels`, grown by `margin` voxels (per axis)."""
    from scipy import ndimage

    boxes = ndimage.find_objects((labels == value).view(np.uint8))
    if not boxes or boxes[0] is None:
        return None
    m = np.broadcast_to(np.asarray(margin, int), (3,))
    return tuple(
        slice(max(0, s.start - int(k)), min(n, s.stop + int(k)))
        for s, k, n in zip(boxes[0], m, labels.shape, strict=True)
    )


def box_flat(box: tuple[slice, ...], local: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Flat indices (sorted) in the full volume of the True voxels of `local`, a crop at
    `box`; slice by slice, so a region of tens of millions of voxels (a 3D fill of the
    whole body) costs its 8 bytes a voxel of output and no (N, 3) index array."""
    z0, r0, c0 = (s.start for s in box)
    _, n_rows, n_cols = shape
    parts = []
    full_width = local.shape[2] == n_cols  # then a row-major crop slice is contiguous
    for k in range(local.shape[0]):
        nz = np.flatnonzero(local[k])
        if not nz.size:
            continue
        if full_width:
            nz += ((z0 + k) * n_rows + r0) * n_cols
        else:
            rows, cols = np.divmod(nz, local.shape[2])
            nz = ((z0 + k) * n_rows + r0 + rows) * n_cols + c0 + cols
        parts.append(nz)
    return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.empty(0, np.int64)


def small_islands(labels: np.ndarray, value: int, min_voxels: int) -> np.ndarray:
    """Flat indices of the voxels of `value` in 26-connected pieces under `min_voxels`."""
    from scipy import ndimage

    box = segment_box(labels, value)
    if box is None:
        return np.empty(0, np.int64)
    comp, _ = ndimage.label(labels[box] == value, structure=FULL_3D)
    sizes = np.bincount(comp.ravel())
    small = sizes < min_voxels
    small[0] = False
    return box_flat(box, small[comp], labels.shape)


def smoothed(
    labels: np.ndarray, value: int, radius_mm: float, spacing_mm: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(voxels to add, voxels to remove) that smooth segment `value`: a median of its
    mask over a ball of `radius_mm` (Slicer's median smoothing) — spikes and bumps thinner
    than the ball go, holes and notches narrower than it fill. Only background is added."""
    from scipy import ndimage

    offs = ball_offsets(tuple(float(s) for s in spacing_mm), float(radius_mm), None)
    reach = np.abs(offs).max(axis=0)
    box = segment_box(labels, value, reach + 1)
    if box is None:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    crop = labels[box]
    mask = crop == value
    footprint = np.zeros(tuple(2 * reach + 1), bool)
    footprint[tuple((offs + reach).T)] = True
    new = ndimage.median_filter(mask.view(np.uint8), footprint=footprint, mode="constant") > 0
    add = new & ~mask & (crop == 0)
    remove = mask & ~new
    return box_flat(box, add, labels.shape), box_flat(box, remove, labels.shape)


def interpolated(
    labels: np.ndarray,
    value: int,
    axis: int = 0,
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Flat indices of background voxels that fill segment `value` between the slices along
    `axis` where it is drawn: draw the outline every few slices, interpolate the rest
    (3D Slicer's "Fill between slices", ITK-SNAP's interpolation).

    Shape-based interpolation (Raya and Udupa): each drawn slice's signed distance map, in
    mm, blended linearly between two drawn slices, inside where it is negative — a disc
    that grows from one slice to the next grows smoothly through the slices between, and a
    shape that moves moves. (ITK's MorphologicalContourInterpolator, which Slicer uses, is
    not in SimpleITK's wheels.)"""
    from scipy import ndimage

    box = segment_box(labels, value)
    if box is None:
        return np.empty(0, np.int64)
    crop = np.moveaxis(labels[box], axis, 0)
    mask = crop == value
    sampling = [s for a, s in enumerate(spacing_mm) if a != axis]
    drawn = np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))
    out = np.zeros_like(mask)

    def signed(m: np.ndarray) -> np.ndarray:
        return ndimage.distance_transform_edt(
            ~m, sampling=sampling
        ) - ndimage.distance_transform_edt(m, sampling=sampling)

    for k0, k1 in itertools.pairwise(drawn):
        if k1 - k0 < 2:
            continue
        d0, d1 = signed(mask[k0]), signed(mask[k1])
        for k in range(k0 + 1, k1):
            t = (k - k0) / (k1 - k0)
            out[k] = (1 - t) * d0 + t * d1 < 0
    add = np.moveaxis(out & (crop == 0), 0, axis)
    return box_flat(box, add, labels.shape)


# -- AI findings -----------------------------------------------------------------------
def finding_indices(mask: np.ndarray, finding: Any) -> np.ndarray:
    """Flat indices of one AI finding's voxels: the 26-connected region of its label in
    `mask` (the AI label map at the finding's threshold, e.g. AIResults.mask_layer.array)
    that fills its bounding box — the same cut ai.findings made the finding from. Other
    regions of the label that reach into the box are left out."""
    from scipy import ndimage

    (z0, y0, x0), (z1, y1, x1) = finding.bbox_index
    box = (slice(z0, z1 + 1), slice(y0, y1 + 1), slice(x0, x1 + 1))
    comp, n = ndimage.label(np.asarray(mask[box]) == finding.label_value, structure=FULL_3D)
    if not n:
        return np.empty(0, np.int64)
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    exact = np.flatnonzero(sizes == finding.voxel_count)
    best = int(exact[0]) if exact.size == 1 else int(np.argmax(sizes))
    return box_flat(box, comp == best, mask.shape)

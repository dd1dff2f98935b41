"""From kept probabilities to a label map and findings at any threshold, without the model.

Probabilities are kept as one byte per voxel, whatever the number of labels: the code says
which label is the most probable (background aside) and its probability in
levels = 255 // n_labels steps (127 for two labels: 0.008 apart):
    code 0: no label above 0.5 / levels;  code c > 0: label index (c - 1) // levels with
    probability ((c - 1) % levels + 1) / levels.
A second label's probability where another label is more probable is not kept (labels of
one model rarely compete in one voxel). So the kept maps cost one byte per voxel — half an
int16 volume — which holds inference to the goal of 2x the volume's bytes.

The threshold slider must update the mask and the findings list live, so nothing here
walks whole volumes per label. A coarse index — the largest foreground probability in each
BLOCK x BLOCK block of each slice, made while the model runs — is thresholded and labelled
first (300 x 64 x 64 for a 512^2 study: milliseconds); every finding lies inside the box of
one coarse component (a 26-connected path of voxels maps to a 26-connected path of blocks),
so the exact work happens on those boxes only. Each box owns just the voxels of its own
coarse component, so overlapping boxes never count a voxel twice.

A voxel belongs to label L at threshold t when L is its most probable label (background
aside) and p_L >= t. At t = 0.5 this is the argmax map almost everywhere; at lower t it
still gives every voxel at most one label, so the mask and the findings agree.

Regions the card's post-processing rules out are not listed — too small, too few slices,
or judged false positives by its second-stage classifier (see findings_from) — and
the list stops at MAX_FINDINGS, largest first, so a model that does not suit a study cannot
freeze the panel with a hundred thousand specks. For a card with a postprocess the list
also carries its findings' regions (FindingList.regions), and the label map shown and
exported is painted from them (paint_regions): a region the postprocess dropped must not
stay on the image, nor in a SEG, without a finding. A card without one (1.0 cards, user
models) keeps the plain label map, every region at the threshold, as before.

Longest axial diameter: on each slice of the finding (the acquisition plane, axial for
axial CT), the largest distance between the centres of the finding's edge pixels (in mm,
from the pixel spacing; the convex hull keeps it cheap), plus one pixel's extent along that
line, so a disc of diameter D measures about D. The largest over the slices is reported."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from medview.ai.findings.extent import Region, box_of, grow_regions
from medview.ai.findings.fp_reduction import classifier_for, region_features
from medview.ai.models.cards import ModelCard, Postprocess
from medview.core.findings import Finding
from medview.core.volume import Volume

if TYPE_CHECKING:
    from medview.ai.runtime.inference import SegmentationResult

BLOCK = 8
MAX_FINDINGS = 500
UNCERTAINTY_SCALE = 510.0  # std of values in 0..1 is at most 0.5 -> 255 in uint8
_S26 = np.ones((3, 3, 3), bool)
Box = tuple[slice, slice, slice]


def levels(n_labels: int) -> int:
    """Probability steps per label in the one-byte code."""
    return 255 // max(1, n_labels)


def quantized_threshold(threshold: float, n_labels: int = 1) -> int:
    """The smallest level v with v / levels >= threshold (at least 1)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be above 0 and at most 1, not {threshold}")
    return max(1, math.ceil(threshold * levels(n_labels) - 1e-6))


def encode(fg: np.ndarray) -> np.ndarray:
    """Codes (N, ...) uint8 from float probabilities (N, labels, ...) of the labels alone;
    ties go to the first label. (A compare loop: argmax over a strided axis is 10x slower.)"""
    n = fg.shape[1]
    best = np.clip(fg[:, 0], 0.0, 1.0)
    which = np.zeros(best.shape, np.uint8)
    for i in range(1, n):
        better = fg[:, i] > best
        np.copyto(best, fg[:, i], where=better)
        which[better] = i
    best *= levels(n)
    np.clip(best, 0.0, levels(n), out=best)
    v = np.rint(best, out=best).astype(np.uint8)
    which *= np.uint8(levels(n))
    which += v
    which[v == 0] = 0
    return which


def _code_table(n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per code 0..255: its label index (-1 for none) and its level."""
    lv = levels(n_labels)
    codes = np.arange(256)
    index = np.where((codes > 0) & (codes <= n_labels * lv), (codes - 1) // lv, -1)
    level = np.where(index >= 0, (codes - 1) % lv + 1, 0).astype(np.uint8)
    return index, level


def level_of(codes: np.ndarray, n_labels: int) -> np.ndarray:
    """The probability level (0..levels) of each code."""
    return _code_table(n_labels)[1][codes]


def probability_of(codes: np.ndarray, n_labels: int, label_index: int | None) -> np.ndarray:
    """uint8 0..255 probability of one label (0 where another label is more probable), or
    with label_index None of whichever label is the most probable."""
    index, level = _code_table(n_labels)
    mine = index >= 0 if label_index is None else index == label_index
    lut = np.where(mine, np.rint(level * (255.0 / levels(n_labels))), 0)
    return lut.astype(np.uint8)[codes]


def _threshold_table(card: ModelCard, q: int) -> np.ndarray:
    """Per code: the label value it shows at quantized threshold q, else 0."""
    index, level = _code_table(len(card.labels))
    values = np.array([0] + [lab.value for lab in card.labels], np.uint8)
    return np.where(level >= q, values[index + 1], 0).astype(np.uint8)


def coarse_index(codes: np.ndarray, n_labels: int, block: int = BLOCK) -> np.ndarray:
    """uint8 (slice, ceil(row/block), ceil(col/block)): the largest probability level in
    each block. segment() builds it batch by batch; this is for codes from elsewhere."""
    return block_max(level_of(codes, n_labels), block)


def block_max(a: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """(n, ceil(h/block), ceil(w/block)): the largest of `a` (n, h, w) in each block, by
    elementwise maxima over the blocks' rows and then columns (streams; numpy's max over
    two inner axes of a 5-D reshape took 2.4x as long: 1.7 ms a 512² slice)."""
    n, h, w = a.shape
    hb, wb = -(-h // block), -(-w // block)
    if (h, w) != (hb * block, wb * block):
        padded = np.zeros((n, hb * block, wb * block), a.dtype)
        padded[:, :h, :w] = a
        a = padded
    rows = a.reshape(n, hb, block, wb * block)
    acc = rows[:, :, 0].copy()
    for i in range(1, block):
        np.maximum(acc, rows[:, :, i], out=acc)
    cols = acc.reshape(n, hb, wb, block)
    out = cols[..., 0].copy()
    for j in range(1, block):
        np.maximum(out, cols[..., j], out=out)
    return out


def _boxes(
    coarse: np.ndarray, q: int, shape: tuple[int, int, int]
) -> Iterator[tuple[Box, np.ndarray]]:
    """(box in voxels, mask of the voxels this box owns) per coarse component."""
    from scipy import ndimage

    comp, _ = ndimage.label(coarse >= q, structure=_S26)
    for i, sl in enumerate(ndimage.find_objects(comp), 1):
        if sl is None:
            continue
        rows = slice(sl[1].start * BLOCK, min(sl[1].stop * BLOCK, shape[1]))
        cols = slice(sl[2].start * BLOCK, min(sl[2].stop * BLOCK, shape[2]))
        own = np.repeat(np.repeat(comp[sl] == i, BLOCK, axis=1), BLOCK, axis=2)
        yield (sl[0], rows, cols), own[:, : rows.stop - rows.start, : cols.stop - cols.start]


def label_map_at(
    codes: np.ndarray,
    card: ModelCard,
    threshold: float,
    coarse_max: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 (slice, row, col) of label values at `threshold`; pass `out` to reuse a
    buffer while a slider moves."""
    n = len(card.labels)
    q = quantized_threshold(threshold, n)
    coarse = coarse_index(codes, n) if coarse_max is None else coarse_max
    if out is None:
        out = np.zeros(codes.shape, np.uint8)
    else:
        out.fill(0)
    table = _threshold_table(card, q)
    for box, own in _boxes(coarse, q, codes.shape):
        np.copyto(out[box], table[codes[box]], where=own)
    return out


def _feret_mm(mask2d: np.ndarray, spacing_rc: tuple[float, float]) -> float:
    """Longest in-plane extent of one slice of a finding (see the module docstring)."""
    from scipy import ndimage, spatial

    edge = mask2d & ~ndimage.binary_erosion(mask2d)
    pts = np.argwhere(edge) * np.asarray(spacing_rc)
    if len(pts) > 8:
        with contextlib.suppress(spatial.QhullError):  # on one line: all are extremes
            pts = pts[spatial.ConvexHull(pts).vertices]
    d2 = ((pts[:, np.newaxis] - pts[np.newaxis]) ** 2).sum(axis=-1)
    i, j = np.unravel_index(int(d2.argmax()), d2.shape)
    d = math.sqrt(float(d2[i, j]))
    if d == 0.0:
        return float(max(spacing_rc))
    u = (pts[j] - pts[i]) / d
    return d + abs(u[0]) * spacing_rc[0] + abs(u[1]) * spacing_rc[1]


class FindingList(list):
    """Findings, plus how many connected regions were left out of the list: smaller than
    the card's validated minimum size, or beyond MAX_FINDINGS (the largest are kept) —
    and, for a card with a postprocess, `regions`: finding i's region is regions[i - 1]
    (None for a card without one: its label map shows every region)."""

    omitted: int = 0
    regions: tuple[Region, ...] | None = None


def paint_regions(out: np.ndarray, regions: tuple[Region, ...]) -> np.ndarray:
    """`out` (uint8 (slice, row, col), overwritten) holding `regions` alone, each in its
    label value: the label map of the listed findings. Regions do not overlap."""
    out.fill(0)
    for value, start, region in regions:
        box = box_of(start, region.shape)
        out[box][region] = value
    return out


def _components(
    codes: np.ndarray, coarse: np.ndarray, q: int, card: ModelCard
) -> Iterator[tuple[Box, int, np.ndarray, np.ndarray]]:
    """(box, label index, code crop, connected components) per box and label."""
    from scipy import ndimage

    table = _threshold_table(card, q)
    for box, own in _boxes(coarse, q, codes.shape):
        crop = codes[box]
        labels = table[crop]
        labels[~own] = 0
        for li, lab in enumerate(card.labels):
            comp, n = ndimage.label(labels == lab.value, structure=_S26)
            if n:
                yield box, li, crop, comp


def _measure(
    region: np.ndarray,
    start: np.ndarray,
    p: np.ndarray,
    volume: Volume,
    uncertainty: np.ndarray | None,
) -> dict:
    """Measurements of one connected region; `p` its probabilities (0..1)."""
    where = box_of(start, region.shape)
    coords = np.argwhere(region)
    centroid = coords.mean(axis=0) + start
    spacing_rc = volume.spacing_mm[1:]
    unc = None
    if uncertainty is not None:
        unc = float(uncertainty[where][region].mean()) / UNCERTAINTY_SCALE
    return dict(
        voxel_count=len(coords),
        volume_ml=len(coords) * abs(float(np.linalg.det(volume.affine[:3, :3]))) / 1000.0,
        longest_axial_diameter_mm=max(
            _feret_mm(region[z], spacing_rc) for z in range(region.shape[0]) if region[z].any()
        ),
        centroid_lps=tuple(float(v) for v in volume.index_to_lps(centroid)),
        centroid_index=tuple(float(v) for v in centroid),
        bbox_index=(
            tuple(int(v) for v in start + coords.min(axis=0)),
            tuple(int(v) for v in start + coords.max(axis=0)),
        ),
        slice_range=(int(start[0] + coords[:, 0].min()), int(start[0] + coords[:, 0].max())),
        mean_hu=float(volume.array[where][region].mean(dtype=np.float64)),
        peak_probability=float(p.max()),
        mean_probability=float(p.mean(dtype=np.float64)),
        uncertainty=unc,
    )


def _rules(card: ModelCard) -> Postprocess:
    """The card's post-processing; a card without one (version 1.0) keeps its validated
    minimum size alone."""
    post = card.postprocess
    if post is None:
        return Postprocess(max(1, int(card.validation.get("min_component_voxels") or 1)))
    return post


Candidate = tuple[int, np.ndarray, np.ndarray, np.ndarray]


def candidate_regions(
    codes: np.ndarray,
    card: ModelCard,
    threshold: float,
    *,
    coarse_max: np.ndarray | None = None,
    max_findings: int = MAX_FINDINGS,
) -> tuple[list[Candidate], int]:
    """(label index, bool region crop, its start (slice, row, col), its probabilities 0..1)
    for each connected region at `threshold` that the card's size rules keep — at least its
    minimum voxels and slices, and among the `max_findings` largest — and the number of
    regions in all. The first stage of detection; the false-positive classifier
    (findings_from) is the second."""
    from scipy import ndimage

    n = len(card.labels)
    q = quantized_threshold(threshold, n)
    coarse = coarse_index(codes, n) if coarse_max is None else coarse_max
    post = _rules(card)
    # first pass: sizes only, so the size cut-off is known before anything is measured
    sizes = [np.bincount(comp.ravel())[1:] for *_, comp in _components(codes, coarse, q, card)]
    all_sizes = np.concatenate(sizes) if sizes else np.zeros(0, np.int64)
    big = np.sort(all_sizes[all_sizes >= post.min_component_voxels])
    cutoff = max(
        post.min_component_voxels, int(big[-max_findings]) if len(big) > max_findings else 0
    )
    out: list[Candidate] = []
    for box, li, crop, comp in _components(codes, coarse, q, card):
        counts = np.bincount(comp.ravel())
        origin = np.array([b.start for b in box])
        for j, sl in enumerate(ndimage.find_objects(comp), 1):
            # a 26-connected region has a voxel on every slice its box spans
            if (
                sl is None
                or counts[j] < cutoff
                or sl[0].stop - sl[0].start < post.min_component_slices
            ):
                continue
            region = comp[sl] == j
            p = (level_of(crop[sl][region], n) / levels(n)).astype(np.float64)
            out.append((li, region, origin + [s.start for s in sl], p))
    out.sort(key=lambda c: -len(c[3]))  # ties at the cut-off: still no more than the cap
    return out[:max_findings], len(all_sizes)


def findings_from(
    codes: np.ndarray,
    volume: Volume,
    card: ModelCard,
    threshold: float,
    *,
    uncertainty: np.ndarray | None = None,
    coarse_max: np.ndarray | None = None,
    max_findings: int = MAX_FINDINGS,
    mask_out: np.ndarray | None = None,
) -> FindingList:
    """Connected findings (26-connectivity) per label at `threshold`, each with its
    measurements; ordered by label, then first slice, then position; ids from 1.

    The card's post-processing (cards.Postprocess, what its validation metrics were
    measured with) decides which regions are listed: the candidates its size rules keep
    (candidate_regions) that its false-positive classifier, if it has one
    (ai.fp_reduction), scores at least fp_threshold. `omitted` counts the regions left out.
    With a postprocess, `regions` holds the listed findings' regions (paint_regions); the
    label map (label_map_at) shows every region. `mask_out`, a uint8 volume, receives the
    listed ones only (overwritten)."""
    post = _rules(card)
    clf = classifier_for(card)
    found: list[tuple[dict, Region]] = []
    candidates, total = candidate_regions(
        codes, card, threshold, coarse_max=coarse_max, max_findings=max_findings
    )
    kept = []
    for li, region, start, p in candidates:
        if clf is not None:
            f = region_features(region, start, p, volume.array, volume.spacing_mm)
            if clf.scores(f[np.newaxis], [li])[0] < post.fp_threshold:
                continue
        kept.append((card.labels[li].value, start, region))
    names = {lab.value: lab.name for lab in card.labels}
    for value, start, region in _extents(codes, card, threshold, kept, volume):
        box = box_of(start, region.shape)
        p = level_of(codes[box][region], len(card.labels)) / levels(len(card.labels))
        found.append(
            (
                {
                    "label_value": value,
                    "label_name": names[value],
                    **_measure(region, start, p, volume, uncertainty),
                },
                (value, start, region),
            )
        )
    found.sort(
        key=lambda fr: (fr[0]["label_value"], fr[0]["slice_range"][0], fr[0]["centroid_index"])
    )
    out = FindingList(
        Finding(
            id=i, model_name=card.name, model_version=card.version, threshold=float(threshold), **f
        )
        for i, (f, _) in enumerate(found, 1)
    )
    out.omitted = total - len(out)
    regions = tuple(r for _, r in found)
    if card.postprocess is not None:
        out.regions = regions
    if mask_out is not None:
        paint_regions(mask_out, regions)
    return out


def _extents(
    codes: np.ndarray, card: ModelCard, threshold: float, regions: list[Region], volume: Volume
) -> list[Region]:
    """The listed regions grown to the card's extent threshold (ai.extent), when it has one
    below the detection threshold."""
    post = card.postprocess
    if post is None or not 0.0 < post.extent_threshold < threshold or post.extent_max_mm <= 0:
        return regions
    table = _threshold_table(card, quantized_threshold(post.extent_threshold, len(card.labels)))
    allowed = {lab.value: table == lab.value for lab in card.labels}
    return grow_regions(codes, regions, allowed, post.extent_max_mm, volume.spacing_mm)


def findings_for(result: SegmentationResult, volume: Volume, threshold: float) -> FindingList:
    """findings_from on a SegmentationResult (its coarse index and uncertainty map)."""
    return findings_from(
        result.codes,
        volume,
        result.card,
        threshold,
        uncertainty=result.uncertainty,
        coarse_max=result.coarse_max,
    )

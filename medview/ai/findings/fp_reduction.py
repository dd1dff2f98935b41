"""The second stage of detection: is each candidate region a lesion or a false positive?

The classic CAD design (LUNA16's candidate detection then false-positive reduction): the
segmentation network proposes every connected region at the threshold, and a small
classifier looks at each region as a whole — how many slices it spans, its size and shape,
how sure the network was, the HU inside and around it, where it lies — things one 2.5D
slice cannot see. A vessel seen end-on fills one to three slices of lung, a nodule of 6 mm
at least four; the gallbladder is larger and more uniform than a liver lesion.

The classifier is a small ensemble of gradient-boosted regression trees per label (trees
take the size-by-density interactions that separate, say, the gallbladder from a liver
lesion, which a linear model cannot, and they stay calibrated on a few hundred examples where
a small MLP grew overconfident), stored as JSON beside the model's weights (no pickle, no
code: numbers only), named with its SHA-256 in the card's `postprocess`
(ai.cards), and run in numpy, so the findings list stays torch-free and the app,
`medview infer` and the benchmark score regions identically. It is trained on candidates
from training studies only (ai.bundled_training) and its threshold is chosen on separate
development studies."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.ai.models.fp_file import FEATURES, FORMAT, parse_header, verified
from medview.core.errors import InvalidInputError

# in-plane rings around the region whose HU describe its surroundings: the first 3 pixels
# (about 2 mm), and 4..10 pixels out (the organ it lies in: a liver lesion is ringed by liver)
SHELL_PIXELS, FAR_PIXELS = 3, 10
# a vessel seen end-on runs on past the region's first and last slice, a nodule ends: how
# much of the region's footprint (grown by a few pixels) is dense (> DENSE_HU) BEYOND slices
# past each end
BEYOND, DENSE_HU = 2, -500.0
CORE = 0.9  # probability of the region's confident core


def region_features(
    region: np.ndarray,
    start: np.ndarray,
    p: np.ndarray,
    hu: np.ndarray,
    spacing: tuple[float, float, float],
) -> np.ndarray:
    """FEATURES of one connected region (bool crop `region` at `start` in the volume), its
    probabilities `p` (0..1, in region order) and the volume's HU array."""
    from scipy import ndimage

    coords = np.argwhere(region)
    n = len(coords)
    lo = np.maximum(start - [0, FAR_PIXELS, FAR_PIXELS], 0)
    hi = np.minimum(start + region.shape + [0, FAR_PIXELS, FAR_PIXELS], hu.shape)
    around = np.zeros(tuple(hi - lo), bool)
    inner = tuple(slice(int(a), int(a) + r) for a, r in zip(start - lo, region.shape, strict=True))
    around[inner] = region
    grow = np.ones((1, 3, 3), bool)
    near = ndimage.binary_dilation(around, grow, SHELL_PIXELS)
    far = ndimage.binary_dilation(near, grow, FAR_PIXELS - SHELL_PIXELS) & ~near
    near &= ~around
    values = hu[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))]
    inside = values[around].astype(np.float64)
    shell = values[near].astype(np.float64) if near.any() else inside
    far_shell = values[far].astype(np.float64) if far.any() else shell
    per_slice = region.reshape(region.shape[0], -1).sum(axis=1)
    beyond = _beyond_dense(around, values, lo, start, region.shape[0], hu)
    ext = coords.max(axis=0) - coords.min(axis=0) + 1
    return np.array(
        [
            math.log(n),
            float((per_slice > 0).sum()),
            float(p.max()),
            float(p.mean()),
            float((p >= CORE).mean()),
            inside.mean(),
            inside.std(),
            shell.mean(),
            shell.std(),
            float(max(ext[1] * spacing[1], ext[2] * spacing[2])),
            float(ext[0] * spacing[0]),
            n / float(np.prod(ext)),
            float(per_slice.max()) / n,
            far_shell.mean(),
            # in-plane place only: how far up or down the body a scan starts varies too much
            *(
                (start[1:] + coords[:, 1:].mean(axis=0))
                / np.maximum(np.subtract(hu.shape[1:], 1), 1)
            ),
            max(beyond),
            min(beyond),
        ],
        np.float64,
    )


def _beyond_dense(
    around: np.ndarray,
    values: np.ndarray,
    lo: np.ndarray,
    start: np.ndarray,
    depth: int,
    hu: np.ndarray,
) -> tuple[float, float]:
    """The dense fraction of the region's footprint BEYOND slices below its first and above
    its last slice (1.0 past the volume's ends: nothing is known there)."""
    from scipy import ndimage

    foot = ndimage.binary_dilation(around.any(axis=0), np.ones((3, 3), bool), SHELL_PIXELS)
    rows, cols = (slice(int(lo[i]), int(lo[i]) + values.shape[i]) for i in (1, 2))
    out = []
    for k in (int(start[0]) - BEYOND, int(start[0]) + depth - 1 + BEYOND):
        if not 0 <= k < hu.shape[0]:
            out.append(1.0)
            continue
        out.append(float((hu[k, rows, cols][foot] > DENSE_HU).mean()))
    return out[0], out[1]


@dataclass(frozen=True)
class Tree:
    """One regression tree as flat arrays; node 0 is the root, a node whose feature is -1
    is a leaf, children come after their parent (so walking down always ends)."""

    feature: np.ndarray  # int (nodes,)
    threshold: np.ndarray  # go left when features[feature] <= threshold
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray  # a leaf's contribution to the logit

    def logit(self, x: np.ndarray) -> np.ndarray:
        node = np.zeros(len(x), np.int64)
        rows = np.arange(len(x))
        for _ in range(len(self.feature)):
            f = self.feature[node]
            inner = f >= 0
            if not inner.any():
                break
            r, n = rows[inner], node[inner]
            go_left = x[r, f[inner]] <= self.threshold[n]
            node[inner] = np.where(go_left, self.left[n], self.right[n])
        return self.value[node]


@dataclass(frozen=True, eq=False)
class FPClassifier:
    """Gradient-boosted regression trees, one ensemble per label (each region is scored by
    its own label's): base logit + the trees' leaf values -> the probability that a region
    is a lesion. Trees take the raw features, so nothing needs standardising."""

    ensembles: tuple[tuple[float, tuple[Tree, ...]], ...]  # per label: (base, trees)
    sha256: str

    def scores(self, features: np.ndarray, label_index: np.ndarray | list) -> np.ndarray:
        """Lesion probability per row of `features` (N, len(FEATURES))."""
        x = np.asarray(features, np.float64).reshape(-1, len(FEATURES))
        label_index = np.asarray(label_index, np.int64)
        logit = np.zeros(len(x))
        for li, (base, trees) in enumerate(self.ensembles):
            mine = label_index == li
            if mine.any():
                logit[mine] = base + sum((t.logit(x[mine]) for t in trees), np.zeros(mine.sum()))
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60)))

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "features": list(FEATURES),
                "labels": [
                    {
                        "base": base,
                        "trees": [{k: getattr(t, k).tolist() for k in _TREE_KEYS} for t in trees],
                    }
                    for base, trees in self.ensembles
                ],
            }
        )


_TREE_KEYS = ("feature", "threshold", "left", "right", "value")
MAX_NODES, MAX_TREES = 255, 2000


def _tree(raw: object, where: str) -> Tree:
    bad = InvalidInputError(
        where, "has a tree that is not well formed; the false-positive classifier is damaged"
    )
    if not isinstance(raw, dict):
        raise bad
    try:
        arrays = {k: np.asarray(raw[k], np.float64) for k in _TREE_KEYS}
    except (KeyError, TypeError, ValueError) as exc:
        raise bad from exc
    n = arrays["feature"].shape
    if (
        len(n) != 1
        or not 0 < n[0] <= MAX_NODES
        or any(a.shape != n for a in arrays.values())
        or not all(np.isfinite(a).all() for a in arrays.values())
    ):
        raise bad
    ints = {k: arrays[k].astype(np.int64) for k in ("feature", "left", "right")}
    if any((ints[k] != arrays[k]).any() for k in ints):
        raise bad
    inner = ints["feature"] >= 0
    idx = np.arange(n[0])
    if (
        (ints["feature"] < -1).any()
        or (ints["feature"] >= len(FEATURES)).any()
        or any(
            ((ints[k][inner] <= idx[inner]) | (ints[k][inner] >= n[0])).any()
            for k in ("left", "right")
        )
    ):
        raise bad
    return Tree(ints["feature"], arrays["threshold"], ints["left"], ints["right"], arrays["value"])


def parse_classifier(data: bytes, where: str, n_labels: int) -> FPClassifier:
    """An FPClassifier from the file's bytes; any problem is one sentence naming the file."""
    labels = parse_header(data, where, n_labels)["labels"]
    ensembles = []
    for item in labels:
        base = item.get("base") if isinstance(item, dict) else None
        trees = item.get("trees") if isinstance(item, dict) else None
        if (
            not isinstance(base, (int, float))
            or not math.isfinite(base)
            or not isinstance(trees, list)
            or len(trees) > MAX_TREES
        ):
            raise InvalidInputError(
                where, "has a label ensemble without a finite base and a list of trees"
            )
        ensembles.append((float(base), tuple(_tree(t, where) for t in trees)))
    return FPClassifier(tuple(ensembles), hashlib.sha256(data).hexdigest())


_LOADED: dict[str, FPClassifier] = {}  # by the sha256 of the file's bytes


def classifier_for(card: Any) -> FPClassifier | None:
    """The false-positive classifier a card names (None when it names none), parsed from
    the bytes load_card read and checked in the model's folder (ai.fp_file)."""
    post = card.postprocess
    if post is None or not post.fp_classifier:
        return None
    clf = _LOADED.get(post.fp_classifier_sha256)
    if clf is None:
        found = verified(post.fp_classifier_sha256)
        if found is None:
            raise InvalidInputError(
                card.ref,
                "was read without its false-positive "
                "classifier (load its card from the model's "
                "folder)",
            )
        clf = _LOADED[post.fp_classifier_sha256] = parse_classifier(*found, len(card.labels))
    return clf

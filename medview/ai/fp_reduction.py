"""The second stage of detection: is each candidate region a lesion or a false positive?

The classic CAD design (LUNA16's candidate detection then false-positive reduction): the
segmentation network proposes every connected region at the threshold, and a small
classifier looks at each region as a whole — how many slices it spans, its size and shape,
how sure the network was, the HU inside and around it, where it lies — things one 2.5D
slice cannot see. A vessel seen end-on fills one to three slices of lung, a nodule of 6 mm
at least four; the gallbladder is larger and more uniform than a liver lesion.

The classifier is a tiny multilayer perceptron stored as JSON beside the model's weights
(no pickle, no code: numbers only), named with its SHA-256 in the card's `postprocess`
(ai.cards), and run in numpy, so the findings list stays torch-free and the app,
`medview infer` and the benchmark score regions identically. It is trained on candidates
from training studies only (ai.bundled_training) and its threshold is chosen on separate
development studies."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.core.errors import InvalidInputError

FORMAT = "medview.fp-mlp"
# per-region features, in this order; a classifier file must list exactly these names
FEATURES = (
    "log_voxels", "slices", "peak_probability", "mean_probability", "core_fraction",
    "mean_hu", "std_hu", "shell_mean_hu", "shell_std_hu", "inplane_extent_mm",
    "z_extent_mm", "fill_fraction", "largest_slice_fraction", "far_shell_mean_hu",
    "z_position", "row_position", "col_position",
)
# in-plane rings around the region whose HU describe its surroundings: the first 3 pixels
# (about 2 mm), and 4..10 pixels out (the organ it lies in: a liver lesion is ringed by liver)
SHELL_PIXELS, FAR_PIXELS = 3, 10
CORE = 0.9  # probability of the region's confident core


def region_features(region: np.ndarray, start: np.ndarray, p: np.ndarray, hu: np.ndarray,
                    spacing: tuple[float, float, float]) -> np.ndarray:
    """FEATURES of one connected region (bool crop `region` at `start` in the volume), its
    probabilities `p` (0..1, in region order) and the volume's HU array."""
    from scipy import ndimage

    coords = np.argwhere(region)
    n = len(coords)
    lo = np.maximum(start - [0, FAR_PIXELS, FAR_PIXELS], 0)
    hi = np.minimum(start + region.shape + [0, FAR_PIXELS, FAR_PIXELS], hu.shape)
    around = np.zeros(tuple(hi - lo), bool)
    inner = tuple(slice(int(a), int(a) + r) for a, r in zip(start - lo, region.shape,
                                                             strict=True))
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
    ext = coords.max(axis=0) - coords.min(axis=0) + 1
    return np.array([
        math.log(n), float((per_slice > 0).sum()), float(p.max()), float(p.mean()),
        float((p >= CORE).mean()), inside.mean(), inside.std(), shell.mean(), shell.std(),
        float(max(ext[1] * spacing[1], ext[2] * spacing[2])), float(ext[0] * spacing[0]),
        n / float(np.prod(ext)), float(per_slice.max()) / n, far_shell.mean(),
        *((start + coords.mean(axis=0)) / np.maximum(np.subtract(hu.shape, 1), 1)),
    ], np.float64)


@dataclass(frozen=True, eq=False)
class FPClassifier:
    """Standardised features -> ReLU hidden layers -> one logit per label (each region
    reads the output of its own label): the probability that a region is a lesion."""

    mean: np.ndarray
    scale: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weight (out, in), bias (out,))
    sha256: str

    def scores(self, features: np.ndarray, label_index: np.ndarray) -> np.ndarray:
        """Lesion probability per row of `features` (N, len(FEATURES))."""
        h = (np.asarray(features, np.float64) - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        logit = h[np.arange(len(h)), np.asarray(label_index, int)]
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60)))

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "features": list(FEATURES), "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "layers": [{"weight": w.tolist(), "bias": b.tolist()} for w, b in self.layers],
        })


def _array(value: object, shape: tuple[int, ...], where: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != shape or not np.isfinite(arr).all():
        raise InvalidInputError(where, f"has {what} that is not {shape} finite numbers; the "
                                       f"false-positive classifier is damaged")
    return arr


def parse_classifier(data: bytes, where: str, n_labels: int) -> FPClassifier:
    """An FPClassifier from the file's bytes; any problem is one sentence naming the file."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(where, "is truncated or damaged (not complete JSON)") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise InvalidInputError(where, f"is not a {FORMAT} false-positive classifier")
    if obj.get("features") != list(FEATURES):
        raise InvalidInputError(where, "was made for other region features than this "
                                       "MedView computes; refused")
    k = len(FEATURES)
    mean = _array(obj.get("mean"), (k,), where, "a mean")
    scale = _array(obj.get("scale"), (k,), where, "a scale")
    if (scale <= 0).any():
        raise InvalidInputError(where, "has a feature scale that is not positive")
    layers, width = [], k
    raw = obj.get("layers")
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError(where, "has no layers")
    for layer in raw:
        if not isinstance(layer, dict):
            raise InvalidInputError(where, "has a layer that is not an object")
        bias = np.asarray(layer.get("bias", []), np.float64)
        b = _array(layer.get("bias"), (bias.size,), where, "a bias")
        w = _array(layer.get("weight"), (b.size, width), where, "a weight")
        layers.append((w, b))
        width = b.size
    if width != n_labels:
        raise InvalidInputError(where, f"gives {width} outputs for a model of {n_labels} "
                                       f"labels")
    return FPClassifier(mean, scale, tuple(layers), hashlib.sha256(data).hexdigest())


def load_classifier(path: Path, sha256: str, n_labels: int) -> FPClassifier:
    """Read, check against the card's SHA-256, and parse a classifier file."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInputError(where, "is missing; the model's card names it as its "
                                       "false-positive classifier") from exc
    except OSError as exc:
        raise InvalidInputError(where, f"cannot be read ({exc.strerror or exc})") from exc
    if hashlib.sha256(data).hexdigest() != sha256.lower():
        raise InvalidInputError(where, "does not match the fp_classifier_sha256 in its card "
                                       "(changed, truncated or damaged); refused")
    return parse_classifier(data, where, n_labels)

"""Scoring a predicted label map against ground truth per lesion, as a reader would: which
predicted components touch which lesion, false positives, and the mistakes worth feeding
back. Shared by the fine-tune engine and the recipe that built the bundled models, so that
both report the same numbers the same way."""

from __future__ import annotations

import numpy as np

MIN_VOXELS = 20  # fixed before validation: a 4 mm nodule is about 45 voxels at site A
MIN_DIAMETER_MM = 6.0
_CONN = np.ones((3, 3, 3), bool)


class Matching:
    """Predicted components against ground-truth lesions (26-connected) of one label, in the
    box that holds both: which predicted components overlap which lesion and by how many
    voxels. Predicted components under `min_voxels` are not counted at all; a kept one that
    touches no lesion is a false positive."""

    def __init__(self, pred: np.ndarray, truth: np.ndarray, min_voxels: int) -> None:
        from scipy import ndimage

        box = _bbox(pred | truth)
        self.offset = np.array([b.start for b in box])
        self.g_inst, self.n_lesions = ndimage.label(truth[box], _CONN)
        p_inst, n_p = ndimage.label(pred[box], _CONN)
        self.p_size = np.bincount(p_inst.ravel(), minlength=n_p + 1)
        self.g_size = np.bincount(self.g_inst.ravel(), minlength=self.n_lesions + 1)
        kept = set(np.flatnonzero(self.p_size >= min_voxels).tolist()) - {0}
        both = (p_inst > 0) & (self.g_inst > 0)
        pairs, shared = np.unique(
            np.stack([p_inst[both], self.g_inst[both]]), axis=1, return_counts=True
        )
        keep = np.isin(pairs[0], list(kept))
        self.pairs, self.shared = pairs[:, keep], shared[keep]
        self.false_positives = len(kept - set(self.pairs[0].tolist()))

    def lesion(self, g_id: int) -> tuple[bool, float]:
        """Whether lesion `g_id` is detected, and its Dice with the components touching it."""
        mine = self.pairs[1] == g_id
        comps = self.pairs[0][mine]
        dice = (
            2
            * int(self.shared[mine].sum())
            / (int(self.g_size[g_id]) + int(self.p_size[comps].sum()))
        )
        return bool(len(comps)), dice


def _bbox(mask: np.ndarray) -> tuple[slice, ...]:
    """The smallest box holding every True voxel (an empty box when there is none)."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1) if len(hit) else slice(0, 0))
    return tuple(box)


def instance_near(inst: np.ndarray, idx: np.ndarray) -> int:
    """The ground-truth component at (or, for an odd shape, nearest to) a lesion's centre."""
    lo = np.maximum(idx - 12, 0)
    box = inst[lo[0] : idx[0] + 13, lo[1] : idx[1] + 13, lo[2] : idx[2] + 13]
    pts = np.argwhere(box > 0)
    if not len(pts):
        return -1
    d = np.linalg.norm(pts + lo - idx, axis=1)
    return int(box[tuple(pts[int(np.argmin(d))])])


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    from scipy.stats import rankdata

    pos, neg = int(truth.sum()), int((~truth).sum())
    if not pos or not neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[truth].sum() - pos * (pos + 1) / 2) / (pos * neg))


def sample_mistakes(
    pred: np.ndarray, truth: np.ndarray, rng: np.random.Generator, per_component: int = 50
) -> np.ndarray:
    """(N, 3) voxels `pred` labels wrongly, at most `per_component` from each connected
    mistake, so one large mistake does not crowd out the many small ones: the hard
    negatives both the bundled training and fine-tuning feed back."""
    from scipy import ndimage

    wrong, _ = ndimage.label((pred > 0) & (pred != np.asarray(truth)))
    picked = []
    for i, box in enumerate(ndimage.find_objects(wrong), start=1):
        if box is None:
            continue
        vox = np.argwhere(wrong[box] == i) + [b.start for b in box]
        picked.append(vox[rng.permutation(len(vox))[:per_component]])
    return np.concatenate(picked).astype(np.int32) if picked else np.zeros((0, 3), np.int32)

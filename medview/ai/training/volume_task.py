"""Fine-tuning an imported 3D model (a MONAI bundle or nnU-Net v2): what the engine's
segmentation task does for the 2.5D models, on 3D patches of the model's own window.

The studies are on the model's grid (grid_studies: the runner's own preprocessing). A patch
is centred, with `Settings.pos_fraction`, on a labelled voxel (each label as likely as any
other, so a small organ is not drowned by a large one; moved by up to a quarter window), with
`mined_fraction` on a voxel the parent got wrong in the study (the engine's mining, through
the 3D runner), else anywhere; padding is 0, as both runners pad a window. Loss: MONAI's
DiceCELoss plus the engine's distillation from the frozen parent (SegmentationTask's
batch_loss). No augmentation: a flip would swap left and right organs, and the runners'
intensity transforms are fixed. Batches hold at most MAX_BATCH windows (nnU-Net's own
default): a 96^3 window is 256 times a 2.5D patch's pixels.

Each epoch's quick check is the Dice on fixed, seeded validation windows drawn the same way
(a whole-volume run per epoch would cost minutes); the card's numbers come from whole
volumes through the app's 3D runner (metrics.evaluate -> volume_predict)."""

from __future__ import annotations

from typing import Any

import numpy as np

from medview.ai.training.grid_studies import GridStudy, on_model_grid, patch_size
from medview.ai.training.tasks import SegmentationTask

MAX_BATCH = 2
MAX_CENTRES = 20_000  # labelled voxels kept per (study, label) to draw centres from
QUICK_WINDOWS = 4  # validation windows per study


class WindowSampler:
    """Seeded 3D windows of `size` from studies on a model grid (see the module docstring)."""

    def __init__(
        self,
        studies: list[GridStudy],
        size: tuple[int, int, int],
        pos_fraction: float,
        mined: list[np.ndarray] | None = None,
        mined_fraction: float = 0.0,
    ) -> None:
        self.studies, self.size, self.pos_fraction = studies, np.array(size), pos_fraction
        keep = np.random.default_rng(0)  # which voxels are kept must not depend on the run
        self.centres: dict[int, list[tuple[int, np.ndarray]]] = {}
        for i, st in enumerate(studies):
            for value in (int(v) for v in np.unique(st.labels) if v):
                vox = np.argwhere(st.labels == value)
                if len(vox) > MAX_CENTRES:
                    vox = vox[keep.choice(len(vox), MAX_CENTRES, replace=False)]
                self.centres.setdefault(value, []).append((i, vox))
        mined = mined or [np.zeros((0, 3), np.int64)] * len(studies)
        self.mined = [self._inside(st, st.to_grid(m)) for st, m in zip(studies, mined, strict=True)]
        self.mined_studies = [i for i, m in enumerate(self.mined) if len(m)]
        self.mined_fraction = mined_fraction if self.mined_studies else 0.0

    @staticmethod
    def _inside(st: GridStudy, points: np.ndarray) -> np.ndarray:
        return points[np.all((points >= 0) & (points < st.labels.shape), axis=1)]

    def _centre(self, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        values = sorted(self.centres)
        draw = rng.random()
        if values and draw < self.pos_fraction:
            pool = self.centres[values[rng.integers(len(values))]]
            s, vox = pool[rng.integers(len(pool))]
            quarter = self.size // 4
            return s, vox[rng.integers(len(vox))] + rng.integers(-quarter, quarter + 1)
        if self.mined_studies and draw < self.pos_fraction + self.mined_fraction:
            s = self.mined_studies[rng.integers(len(self.mined_studies))]
            return s, self.mined[s][rng.integers(len(self.mined[s]))]
        s = int(rng.integers(len(self.studies)))
        return s, rng.integers(0, self.studies[s].labels.shape)

    def window(self, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
        """(study index, image window, label window), padded with 0 where it leaves the grid."""
        s, centre = self._centre(rng)
        st = self.studies[s]
        lo = np.asarray(centre) - self.size // 2
        x = np.zeros(tuple(self.size), np.float32)
        y = np.zeros(tuple(self.size), np.uint8)
        a, b = np.maximum(lo, 0), np.minimum(lo + self.size, st.labels.shape)
        if np.all(b > a):
            src = tuple(slice(i, j) for i, j in zip(a, b, strict=True))
            dst = tuple(slice(i - o, j - o) for i, j, o in zip(a, b, lo, strict=True))
            x[dst], y[dst] = st.image[src], st.labels[src]
        return s, x, y

    def batch(self, rng: np.random.Generator, n: int, device: Any) -> tuple:
        """(x (n, 1, *size) float32, y (n, 1, *size) int64) on `device`, and each window's
        study index (PatchSampler.batch's contract)."""
        import torch

        drawn = [self.window(rng) for _ in range(n)]
        x = torch.from_numpy(np.stack([d[1] for d in drawn])[:, None]).to(device)
        y = torch.from_numpy(np.stack([d[2] for d in drawn])[:, None].astype(np.int64))
        return x, y.to(device), np.array([d[0] for d in drawn], np.int64)


class VolumeTask(SegmentationTask):
    """SegmentationTask's training step and whole-volume evaluation on 3D windows."""

    augment_words = "no augmentation (3D windows of the model's own grid)"

    def _sampler(self, mined: list[np.ndarray] | None) -> WindowSampler:
        from medview.ai.training.volume_predict import runner_for

        self.runner = runner_for(self.card)
        self.size = patch_size(self.card, self.runner)
        self.batch_size = max(1, min(self.s.batch_size, MAX_BATCH))
        grids = [on_model_grid(st, self.card, self.runner) for st in self.train]
        s = self.s
        return WindowSampler(grids, self.size, s.pos_fraction, mined, s.mined_fraction)

    def _validation_set(self) -> None:
        """Fixed validation windows (half of them on a label) for the quick check."""
        grids = [on_model_grid(st, self.card, self.runner) for st in self.val]
        windows, rng = WindowSampler(grids, self.size, 0.5), np.random.default_rng(self.s.seed + 7)
        self.val_windows = [windows.window(rng)[1:] for _ in range(QUICK_WINDOWS * len(grids))]

    def patch_words(self) -> str:
        a, b, c = self.size
        return f"{self.s.patches_per_study} 3D windows of {a}x{b}x{c} model voxels"

    def quick(self, model: Any, device: Any) -> dict:
        """Dice per label (pooled) on the fixed validation windows; 'mean' over labels."""
        import torch

        from medview.ai.training.metrics import PooledDice
        from medview.ai.training.volume_predict import eval_modes

        pooled = PooledDice(self.card)
        with eval_modes(model), torch.inference_mode():
            for x, y in self.val_windows:
                logits = model(torch.from_numpy(x)[None, None].to(device))
                if isinstance(logits, (list, tuple)):  # deep supervision: the first head
                    logits = logits[0]
                probs = torch.softmax(logits.float(), 1)[0, 1:].cpu().numpy()
                best = probs.argmax(0)
                top = np.take_along_axis(probs, best[None], 0)[0]
                pooled.add(np.where(top >= 0.5, best + 1, 0), y)
        return pooled.result()

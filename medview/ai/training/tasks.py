"""What differs between fine-tuning a segmentation model and the slice classifier: how a
batch is drawn, its loss, and how validation scores the network. The training engine
(training.py) drives either through the same three calls.

Segmentation: 2.5D patches (train_patches) and MONAI's DiceCELoss, as the bundled model was
trained (bundled_training), hard negatives mined from the base model's mistakes on the
training studies. Classification: runs of neighbouring whole slices, each slice's
target whether it holds any label, cross entropy; validated by per-slice accuracy and AUC
(findings.scoring.auc)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medview.ai.models.cards import ModelCard
from medview.ai.training.data import PreparedStudy
from medview.ai.training.patches import Augment, PatchSampler, validation_slices


class Sampler(Protocol):
    """Draws a training batch: (x, y) tensors on `device` and each patch's study index."""

    def batch(self, rng: np.random.Generator, size: int, device: Any) -> tuple: ...


class SegmentationTask:
    """`teacher`, the frozen parent, distils into the student (train_keep) on the patches of
    training studies from index `rehearsal_from` on (the rehearsal studies), or on all
    patches with Settings.distill_on "all"."""

    def __init__(
        self,
        card: ModelCard,
        train: list[PreparedStudy],
        val: list[PreparedStudy],
        settings: Any,
        base: Any = None,
        device: Any = "cpu",
        teacher: Any = None,
        rehearsal_from: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        from monai.losses import DiceCELoss

        self.card, self.train, self.val, self.s = card, train, val, settings
        self.batch_size = settings.batch_size
        self.check = check  # between inference batches: a stop ends mining and evaluation
        self.teacher = teacher if settings.distill > 0 else None
        self.distill_from = (
            0
            if settings.distill_on == "all"
            else (len(train) if rehearsal_from is None else rehearsal_from)
        )
        self.loss = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
        self.sampler = self._sampler(self._mined(base, device, progress))
        self._validation_set()

    augment_words = "flips, rotation, zoom and intensity jitter"

    def _sampler(self, mined: list[np.ndarray] | None) -> Sampler:
        """The training patches (2.5D here; volume_task's 3D windows for a 3D model)."""
        s = self.s
        aug = Augment(enabled=bool(s.augment), scanner=bool(s.scanner_augment))
        return PatchSampler(
            self.train, self.card, s.patch_size, s.pos_fraction, aug, mined, s.mined_fraction
        )

    def _validation_set(self) -> None:
        """What the quick check predicts each epoch: seeded slices of the validation studies."""
        rng = np.random.default_rng(self.s.seed + 7)
        self.val_slices = [validation_slices(st, rng, 16, 16) for st in self.val]

    def _mined(
        self, base: Any, device: Any, progress: Callable[[int, int], None] | None
    ) -> list[np.ndarray] | None:
        """The base model's mistakes in each training study (None without mining)."""
        if self.s.mined_fraction <= 0 or base is None:
            return None
        mined = []
        for i, st in enumerate(self.train):  # about 7 s a 300-slice study on a CPU
            if progress is not None:
                progress(i + 1, len(self.train))
            mined.append(
                mined_mistakes(base, self.card, st, device, self.check, self.s.mined_threshold)
            )
        return mined

    def patch_words(self) -> str:
        """How the card's training text counts a study's patches in an epoch."""
        return f"{self.s.patches_per_study} patches of {self.s.patch_size}²"

    def batch_loss(self, model: Any, rng: np.random.Generator, device: Any) -> Any:
        x, y, drawn = self.sampler.batch(rng, self.batch_size, device)
        logits = model(x).float()
        loss = self.loss(logits, y)
        keep = np.flatnonzero(drawn >= self.distill_from) if self.teacher is not None else []
        if len(keep):
            import torch

            from medview.ai.training.keep import distillation_loss

            idx = torch.from_numpy(keep).to(logits.device)
            with torch.no_grad():
                target = self.teacher(x[idx])
            loss = loss + self.s.distill * distillation_loss(logits[idx], target) * (
                len(keep) / len(drawn)
            )
        return loss

    def quick(self, model: Any, device: Any) -> dict:
        from medview.ai.training.metrics import quick_dice

        return quick_dice(model, self.card, self.val, self.val_slices, device)

    def evaluate(self, model: Any, device: Any, progress: Any = None, kept: bool = False) -> dict:
        """Whole-volume metrics; `kept`: the base model's, reused from an earlier run on the
        same studies when there is one (train_metrics.evaluate_kept)."""
        from medview.ai.training.metrics import evaluate, evaluate_kept

        return (evaluate_kept if kept else evaluate)(
            model, self.card, self.val, device, progress, self.check
        )


def mined_path(card: ModelCard, st: PreparedStudy, threshold: float = 0.5) -> Path:
    """Where a study's mined mistakes of the base model `card` at `threshold` are kept."""
    from medview.ai.training.data import short_hash

    at = () if threshold == 0.5 else (f"{threshold:g}",)  # 0.5's are the ones kept before
    return Path(st.folder) / f"mined-{short_hash(card.ref, card.weights_sha256, *at)}.npy"


def mined_mistakes(
    base: Any,
    card: ModelCard,
    st: PreparedStudy,
    device: Any,
    check: Callable[[], None] | None = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """The base model's mistakes at `threshold` on a training study, kept beside its cached
    arrays (found once per study, base model and threshold: a rehearsal study's serve every
    fine-tune of that base)."""
    from medview.ai.training.data import save_cached
    from medview.ai.training.metrics import mistakes

    path = mined_path(card, st, threshold)
    if path.exists():
        return np.load(path)
    found = mistakes(base, card, st, device, check=check, threshold=threshold)
    save_cached(path, found)  # atomic: DDP processes may write it together
    return found


class ClassificationTask:
    """Runs of `patch_size // 8` (at least 4) neighbouring slices, normalised by the card."""

    def __init__(
        self, card: ModelCard, train: list[PreparedStudy], val: list[PreparedStudy], settings: Any
    ) -> None:
        import torch

        self.card, self.train, self.val, self.s = card, train, val, settings
        self.batch_size = settings.batch_size
        self.length = max(4, settings.patch_size // 8)
        self.ce = torch.nn.CrossEntropyLoss()
        self.targets = [
            np.asarray(st.labels).reshape(st.labels.shape[0], -1).any(axis=1) for st in train
        ]

    def _slices(self, st: PreparedStudy, ks: Any) -> np.ndarray:
        lo, hi = float(self.card.intensity.low), float(self.card.intensity.high)
        x = np.clip(np.asarray(st.image[ks], np.float32), lo, hi)
        return ((x - lo) / (hi - lo))[:, None]

    def batch_loss(self, model: Any, rng: np.random.Generator, device: Any) -> Any:
        import torch

        xs, ys = [], []
        for _ in range(self.s.batch_size):
            i = int(rng.integers(len(self.train)))
            n = self.train[i].image.shape[0]
            start = int(rng.integers(max(n - self.length, 0) + 1))
            ks = np.arange(start, min(start + self.length, n))
            x = self._slices(self.train[i], ks)
            if self.s.augment and rng.random() < 0.5:
                x = x[:, :, :, ::-1]
            xs.append(np.ascontiguousarray(x))
            ys.append(self.targets[i][ks].astype(np.int64))
        x = torch.from_numpy(np.stack(xs)).to(device)
        logits = model(x).float()
        y = torch.from_numpy(np.stack(ys)).to(device)
        return self.ce(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    augment_words = SegmentationTask.augment_words
    patch_words = SegmentationTask.patch_words

    def _scores(self, model: Any, device: Any) -> tuple[np.ndarray, np.ndarray]:
        import torch

        scores, truths = [], []
        was = model.training
        model.eval()
        with torch.inference_mode():
            for st in self.val:
                n = st.image.shape[0]
                for s in range(0, n, 16):
                    x = torch.from_numpy(self._slices(st, np.arange(s, min(s + 16, n))))
                    p = torch.softmax(model(x.to(device)).float(), -1)[:, 1]
                    scores.append(p.cpu().numpy())
                truths.append(np.asarray(st.labels).reshape(n, -1).any(axis=1))
        model.train(was)
        return np.concatenate(scores), np.concatenate(truths)

    def quick(self, model: Any, device: Any) -> dict:
        s, t = self._scores(model, device)
        return {"mean": round(float(((s >= 0.5) == t).mean()), 4)}

    def evaluate(self, model: Any, device: Any, progress: Any = None, kept: bool = False) -> dict:
        """Accuracy and AUC over every slice (quick enough that nothing is kept)."""
        from medview.ai.findings.scoring import auc

        s, t = self._scores(model, device)
        value = auc(s, t)
        return {
            "studies": len(self.val),
            "slices": len(t),
            "accuracy": round(float(((s >= 0.5) == t).mean()), 4),
            "auc": None if np.isnan(value) else round(value, 4),
        }


def make_task(
    card: ModelCard,
    train: list[PreparedStudy],
    val: list[PreparedStudy],
    settings: Any,
    base: Any,
    device: Any,
    teacher: Any = None,
    rehearsal_from: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    check: Callable[[], None] | None = None,
) -> SegmentationTask | ClassificationTask:
    """The task for the card; `base` is the untrained base network (segmentation mines its
    mistakes on the training studies, calling `progress(i, n)` before each), `teacher` a
    frozen copy of it for distillation. An imported 3D model's is volume_task.VolumeTask."""
    from medview.ai.training.grid_studies import is_volume

    if is_volume(card):
        from medview.ai.training.volume_task import VolumeTask

        return VolumeTask(
            card, train, val, settings, base, device, teacher, rehearsal_from, progress, check
        )
    if card.task == "segmentation":
        return SegmentationTask(
            card, train, val, settings, base, device, teacher, rehearsal_from, progress, check
        )
    return ClassificationTask(card, train, val, settings)

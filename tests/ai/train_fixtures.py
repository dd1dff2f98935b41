"""Tiny labelled studies and a tiny base model for the fine-tuning tests: 12 slices of 48 x 48
"CT" (soft tissue with bright round lesions, label 1, and dark ones, label 2) as image.nii.gz
+ labels.nii.gz folders, and the tests' U-Net (tiny_models) installed as a user model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medview.core.volume import Volume
from tests.ai.tiny_models import card_dict, tiny_unet, write_folder

SIZE, SLICES = 48, 12


def _affine(spacing: tuple[float, float, float] = (2.0, 0.7, 0.7)) -> np.ndarray:
    return np.diag([*spacing, 1.0])


def make_study(
    folder: Path, seed: int, labels_affine: np.ndarray | None = None, extra_label: int | None = None
) -> Path:
    """One study folder; `labels_affine` misplaces the label map, `extra_label` adds a
    label value the base model does not know."""
    from medview.io.image_files import write_volume

    rng = np.random.default_rng(seed)
    image = rng.normal(40, 12, (SLICES, SIZE, SIZE)).astype(np.float32)
    image[:, :4] = -1000  # air at the edge
    labels = np.zeros(image.shape, np.uint8)
    zz, yy, xx = np.mgrid[:SLICES, :SIZE, :SIZE]
    for value, hu in ((1, 300.0), (2, -150.0)):
        for _ in range(2):
            c = rng.uniform([3, 12, 12], [SLICES - 3, SIZE - 12, SIZE - 12])
            r = rng.uniform(3.0, 5.0)
            ball = ((zz - c[0]) * 2.0) ** 2 + ((yy - c[1]) * 0.7) ** 2 + (
                (xx - c[2]) * 0.7
            ) ** 2 <= (r * 0.7 * 1.6) ** 2
            image[ball] = hu + rng.normal(0, 8, int(ball.sum()))
            labels[ball] = value
    if extra_label is not None:
        labels[2, 5:9, 5:9] = extra_label
    folder.mkdir(parents=True, exist_ok=True)
    affine = _affine()
    write_volume(Volume(np.round(image).astype(np.int16), affine), folder / "image.nii.gz")
    write_volume(
        Volume(labels, affine if labels_affine is None else labels_affine), folder / "labels.nii.gz"
    )
    return folder


def make_studies(root: Path, n: int = 4, first_seed: int = 1) -> Path:
    for i in range(n):
        make_study(root / f"study-{i + 1:02d}", first_seed + i)
    return root


def install_base(data_dir: Path, name: str = "tiny", version: str = "1.0") -> Path:
    """The tests' U-Net as user model name:version (any plane size, 3 context slices)."""
    card = card_dict(name=name, version=version, input_size=None, validation={"dice": 0.1})
    return write_folder(data_dir / "models" / name / version, tiny_unet(), card=card)

"""Labelled study folders for fine-tuning the tests' imported 3D models: demo studies
downsampled 8x in-plane (as tests/ai/nnunet_factory.py feeds nnU-Net), labelled as the
factories' models were trained (1 liver: soft tissue 20..80 HU, 2 bone: above 250 HU), as
image.nii.gz + labels.nii.gz."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def labelled_study(series_dir: Path, folder: Path, extra_label: int | None = None) -> Path:
    """One study folder; `extra_label` marks a few voxels with a value the models lack."""
    from medview.core.volume import Volume
    from medview.io.image_files import write_volume
    from medview.io.open_volume import load_volume

    volume, _ = load_volume([series_dir])
    image = volume.array[:, ::8, ::8]
    labels = np.where(image > 250, 2, np.where((image > 20) & (image < 80), 1, 0)).astype(np.uint8)
    if extra_label is not None:
        labels[2, 10:14, 10:14] = extra_label
    affine = volume.affine @ np.diag([1.0, 8.0, 8.0, 1.0])
    folder.mkdir(parents=True, exist_ok=True)
    write_volume(Volume(np.ascontiguousarray(image), affine), folder / "image.nii.gz")
    write_volume(Volume(labels, affine), folder / "labels.nii.gz")
    return folder


def labelled_studies(root: Path, series_dirs: list[Path]) -> Path:
    for i, series in enumerate(series_dirs):
        labelled_study(series, root / f"study-{i + 1:02d}")
    return root

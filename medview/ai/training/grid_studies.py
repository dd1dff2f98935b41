"""A labelled study as an imported 3D model sees it, for fine-tuning that model: image and
label map on the model's own grid, preprocessed by the code that feeds the model when it
runs, so that training sees what inference will:

- a MONAI bundle: runtime.model_grid turns and resamples the study to the bundle's axcodes
  and pixdim (as Orientationd and Spacingd) and sliding3d.normalise applies its intensity
  transform; the label map goes the same way with nearest-neighbour sampling;
- nnU-Net v2: its plans' own preprocessor (transpose, crop to the non-zero region,
  normalise, resample) with the label map as its segmentation, resampled by nnU-Net's
  segmentation resampling.

The patch a 3D model trains on is the window it runs on: the bundle's sliding-window roi,
nnU-Net's plans' patch size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medview.ai.models.cards import ModelCard
from medview.ai.training.data import META_FILE, PreparedStudy
from medview.core.volume import Volume


def is_volume(card: ModelCard) -> bool:
    """Whether the card's model runs on 3D windows (an imported MONAI bundle or nnU-Net)."""
    return card.volume3d is not None or card.architecture == "nnunet"


@dataclass(frozen=True)
class GridStudy:
    key: str
    image: np.ndarray  # float32 on the model's grid, normalised as the model is fed
    labels: np.ndarray  # uint8 card label values on the same grid
    to_grid: Callable[[np.ndarray], np.ndarray]  # (N, 3) study voxel indices -> grid's


def study_volume(study: PreparedStudy) -> Volume:
    """The prepared study as a Volume on its own grid (its affine, else its spacing)."""
    affine = np.array(study.affine, float) if study.affine else np.diag([*study.spacing_mm, 1.0])
    return Volume(study.image, affine)


def patch_size(card: ModelCard, runner: Any) -> tuple[int, int, int]:
    """The window the model runs on, in its grid's axes."""
    if card.architecture == "nnunet":
        size = runner.predictor.configuration_manager.patch_size
    else:
        assert card.volume3d is not None
        size = card.volume3d.roi_size
    a, b, c = (int(s) for s in size)
    return a, b, c


# a run's cross-validation trains k + 1 times on the same studies: each is resampled once
_KEPT: dict[tuple, GridStudy] = {}


def on_model_grid(study: PreparedStudy, card: ModelCard, runner: Any) -> GridStudy:
    """The study on the model's grid (kept for the run while its cache is unchanged)."""
    meta = Path(study.folder) / META_FILE
    stamp = meta.stat().st_mtime_ns if meta.exists() else 0
    key = (str(study.folder), study.key, card.ref, stamp)
    if key not in _KEPT:
        if len(_KEPT) > 64:
            _KEPT.clear()
        make = _nnunet_grid if card.architecture == "nnunet" else _monai_grid
        _KEPT[key] = make(study, card, runner)
    return _KEPT[key]


def _monai_grid(study: PreparedStudy, card: ModelCard, _runner: Any) -> GridStudy:
    from medview.ai.runtime.model_grid import ModelGrid
    from medview.ai.runtime.sliding3d import normalise

    assert card.volume3d is not None
    volume = study_volume(study)
    grid = ModelGrid.make(volume, card.volume3d)
    image = normalise(grid.to_model(volume.array), card)
    labels = grid.to_model(np.asarray(study.labels), mode="nearest")
    to_model = grid.study_to_model

    def to_grid(points: np.ndarray) -> np.ndarray:
        homogeneous = np.c_[points, np.ones(len(points))]
        return np.rint(homogeneous @ to_model.T)[:, :3].astype(np.int64)

    return GridStudy(study.key, image, np.rint(labels).astype(np.uint8), to_grid)


def _nnunet_grid(study: PreparedStudy, card: ModelCard, runner: Any) -> GridStudy:
    import contextlib
    import io

    p = runner.predictor
    conf = p.configuration_manager
    order = list(p.plans_manager.transpose_forward)
    image = np.asarray(study.image, np.float32)[None]
    seg = np.asarray(study.labels, np.int16)[None]
    with contextlib.redirect_stdout(io.StringIO()):
        data, out_seg, props = conf.preprocessor_class(verbose=False).run_case_npy(
            image, seg, {"spacing": list(study.spacing_mm)}, p.plans_manager, conf, p.dataset_json
        )
    lo = np.array([b[0] for b in props["bbox_used_for_cropping"]], float)
    cropped = np.array(props["shape_after_cropping_and_before_resampling"], float)
    scale = np.array(data.shape[1:], float) / np.maximum(cropped, 1)

    def to_grid(points: np.ndarray) -> np.ndarray:
        moved = (np.asarray(points, float)[:, order] - lo) * scale
        return np.rint(moved).astype(np.int64)

    # outside the non-zero region nnU-Net marks the segmentation -1: background here
    labels = np.maximum(np.asarray(out_seg[0]), 0).astype(np.uint8)
    return GridStudy(study.key, np.ascontiguousarray(data[0], np.float32), labels, to_grid)

"""An nnU-Net v2 model folder for the import tests, made with nnU-Net's own tools: a raw
dataset of tiny demo studies (downsampled 8x in-plane, labels: soft tissue and bone by HU),
nnU-Net's fingerprinting, planning and preprocessing, and its trainer's own checkpoint
writer on the initialised (untrained) network: the model folder a training run leaves
(dataset.json, plans.json, fold_0/checkpoint_final.pth).

nnU-Net reads its folders from environment variables when first imported, so the work runs
in a child process: `python -m tests.ai.nnunet_factory OUT STUDY_DIR...`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DATASET = "Dataset517_TinyDemo"
LABELS = {"background": 0, "liver": 1, "bone": 2}


def _write_case(series_dir: Path, images: Path, labels: Path, case: str) -> None:
    import numpy as np
    import SimpleITK as sitk

    from medview.io.open_volume import load_volume

    volume, _ = load_volume([series_dir])
    small = volume.array[:, ::8, ::8].astype(np.float32)
    seg = np.where(small > 250, 2, np.where((small > 20) & (small < 80), 1, 0)).astype(np.uint8)
    spacing = volume.spacing_mm
    for array, path in ((small, images / f"{case}_0000.nii.gz"), (seg, labels / f"{case}.nii.gz")):
        img = sitk.GetImageFromArray(array)
        img.SetSpacing((spacing[2] * 8, spacing[1] * 8, spacing[0]))
        sitk.WriteImage(img, str(path))


def build(out: Path, series_dirs: list[Path]) -> Path:
    """Run nnU-Net's planning and preprocessing and save its checkpoint; returns the model
    folder (its results folder for the 3d_fullres configuration)."""
    raw, pre, res = out / "raw", out / "preprocessed", out / "results"
    images, labels = raw / DATASET / "imagesTr", raw / DATASET / "labelsTr"
    for folder in (images, labels, pre, res):
        folder.mkdir(parents=True, exist_ok=True)
    for i, series in enumerate(series_dirs):
        _write_case(series, images, labels, f"demo_{i:03d}")
    (raw / DATASET / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "CT"},
                "labels": LABELS,
                "numTraining": len(series_dirs),
                "file_ending": ".nii.gz",
                "licence": "CC-BY-4.0 (MedView tests)",
                "reference": "MedView demo studies",
            }
        )
    )
    env = {
        **os.environ,
        "nnUNet_raw": str(raw),
        "nnUNet_preprocessed": str(pre),
        "nnUNet_results": str(res),
        "nnUNet_n_proc_DA": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "tests.ai.nnunet_factory", "--plan"],
        env=env,
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    folder = next(res.glob(f"{DATASET}/nnUNetTrainer__nnUNetPlans__3d_fullres"))
    return folder


def _plan_and_save() -> None:
    """In the child: nnU-Net's fingerprint, plans, preprocessing and checkpoint."""
    import torch
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess,
    )
    from nnunetv2.run.run_training import get_trainer_from_args

    torch.set_num_threads(1)
    extract_fingerprints([517], num_processes=1, check_dataset_integrity=True)
    plan_experiments([517])
    preprocess([517], configurations=("3d_fullres",), num_processes=(1,))
    trainer = get_trainer_from_args("517", "3d_fullres", 0, device=torch.device("cpu"))
    trainer.initialize()
    os.makedirs(trainer.output_folder, exist_ok=True)
    trainer.save_checkpoint(os.path.join(trainer.output_folder, "checkpoint_final.pth"))
    # what the trainer's on_train_start writes beside the folds, the same way
    from batchgenerators.utilities.file_and_folder_operations import save_json

    save_json(
        trainer.plans_manager.plans,
        os.path.join(trainer.output_folder_base, "plans.json"),
        sort_keys=False,
    )
    save_json(
        trainer.dataset_json,
        os.path.join(trainer.output_folder_base, "dataset.json"),
        sort_keys=False,
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--plan"]:
        _plan_and_save()
    else:
        print(build(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]))

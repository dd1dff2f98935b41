"""MONAI bundles for the import tests, made with MONAI's own bundle tooling
(monai.bundle.init_bundle writes the zoo layout and models/model.pt) around a tiny 3D U-Net
trained a few steps on demo studies to find bright tissue (bone) and soft tissue.

The inference config is shaped like the Model Zoo's (spleen_ct_segmentation): plumbing with
`$` expressions MedView never reads (device, datalist, evaluator, run), and the four parts it
runs itself as literal MONAI classes. `code_bundle` puts a `$` expression where MedView needs
a value: evaluating it writes a canary file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

NET_ARGS = {
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 3,
    "channels": [4, 8],
    "strides": [2],
    "num_res_units": 0,
}
ROI = [32, 32, 32]
HU = (-200.0, 400.0)
CHANNELS = {"0": "background", "1": "liver", "2": "bone"}


def metadata() -> dict[str, Any]:
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/"
        "0.8.1/meta_schema_20220324.json",
        "version": "0.2.1",
        "name": "Tiny CT segmentation",
        "monai_version": "1.6.1",
        "authors": "MedView tests",
        "copyright": "Copyright (c) MedView tests",
        "description": "A tiny 3D U-Net trained a few steps on synthetic studies.",
        "data_source": "MedView demo studies",
        "performance": {"mean_dice": 0.91},
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "hounsfield",
                    "modality": "CT",
                    "num_channels": 1,
                    "spatial_shape": ROI,
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": 3,
                    "spatial_shape": ROI,
                    "dtype": "float32",
                    "value_range": [0, 1, 2],
                    "is_patch_data": True,
                    "channel_def": CHANNELS,
                }
            },
        },
    }


def inference(network_def: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    image = "image"
    return {
        "imports": ["$import glob", "$import os"],
        "bundle_root": ".",
        "output_dir": "$@bundle_root + '/eval'",
        "dataset_dir": "/workspace/data",
        "datalist": "$list(sorted(glob.glob(@dataset_dir + '/*.nii.gz')))",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "image_key": image,
        "network_def": network_def or {"_target_": "UNet", **NET_ARGS},
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "@image_key"},
                {"_target_": "EnsureChannelFirstd", "keys": "@image_key"},
                {"_target_": "Orientationd", "keys": "@image_key", "axcodes": "RAS"},
                {
                    "_target_": "Spacingd",
                    "keys": "@image_key",
                    "pixdim": [1.5, 1.5, 2.0],
                    "mode": "bilinear",
                },
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "@image_key",
                    "a_min": HU[0],
                    "a_max": HU[1],
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
                {"_target_": "EnsureTyped", "keys": "@image_key", "device": "@device"},
            ],
        },
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": ROI,
            "sw_batch_size": 2,
            "overlap": 0.25,
            "mode": "gaussian",
        },
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {
                    "_target_": "Invertd",
                    "keys": "pred",
                    "transform": "@preprocessing",
                    "orig_keys": "@image_key",
                    "nearest_interp": False,
                    "to_tensor": True,
                },
                {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir"},
            ],
        },
        "dataset": {
            "_target_": "Dataset",
            "data": "$[{'image': i} for i in @datalist]",
            "transform": "@preprocessing",
        },
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "@device",
            "val_data_loader": "@dataset",
            "network": "@network",
            "inferer": "@inferer",
            "postprocessing": "@postprocessing",
        },
        "run": ["$@evaluator.run()"],
        **extra,
    }


def trained_unet(volumes: list[np.ndarray], steps: int = 4, seed: int = 0) -> torch.nn.Module:
    """The tiny U-Net after a few Adam steps on 32^3 crops: label 1 soft tissue (20..80 HU),
    label 2 bone (above 250 HU)."""
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = UNet(**NET_ARGS)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for step in range(steps):
        vol = volumes[step % len(volumes)]
        k, r, c = (int(rng.integers(0, max(1, n - 32))) for n in vol.shape)
        crop = np.zeros((32, 32, 32), np.float32)
        part = vol[k : k + 32, r : r + 32, c : c + 32].astype(np.float32)
        crop[: part.shape[0], : part.shape[1], : part.shape[2]] = part
        target = np.where(crop > 250, 2, np.where((crop > 20) & (crop < 80), 1, 0))
        x = torch.from_numpy(np.clip((crop - HU[0]) / (HU[1] - HU[0]), 0, 1))[None, None]
        loss = torch.nn.functional.cross_entropy(net(x), torch.from_numpy(target)[None])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def make_bundle(
    folder: Path,
    net: torch.nn.Module,
    config: dict[str, Any] | None = None,
    torchscript: bool = False,
    licence: str = "MIT License (tests)",
) -> Path:
    """A zoo-layout bundle at `folder` made by monai.bundle.init_bundle."""
    from monai.bundle import init_bundle

    init_bundle(
        folder,
        network=net,
        metadata_str=metadata(),
        inference_str=json.dumps(config or inference(), indent=2),
    )
    (folder / "LICENSE").write_text(licence + "\n")
    if torchscript:
        (folder / "models" / "model.pt").unlink()
        torch.jit.script(net).save(str(folder / "models" / "model.ts"))
    return folder


def code_bundle(folder: Path, net: torch.nn.Module, canary: Path) -> Path:
    """A bundle whose network channels come from a `$` expression that writes `canary`."""
    network_def = {
        "_target_": "UNet",
        **NET_ARGS,
        "channels": "$open(@canary, 'w').write('ran') and [4, 8]",
    }
    return make_bundle(folder, net, inference(network_def, canary=str(canary)))

"""Small models and model folders for the AI tests: a MONAI 2D U-Net with channels (4, 8) on
32 x 32 slices, its cards, weights in every format, and exported programs."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

UNET_ARGS = {"spatial_dims": 2, "channels": [4, 8], "strides": [2], "num_res_units": 0}
LABELS = [
    {"value": 1, "name": "lung nodule", "colour": [255, 0, 0]},
    {"value": 2, "name": "liver lesion", "colour": [0, 255, 0]},
]


def card_dict(name: str = "tiny", version: str = "1.0", **changes: Any) -> dict[str, Any]:
    card = {
        "name": name,
        "version": version,
        "task": "segmentation",
        "modality": "CT",
        "labels": LABELS,
        "intensity": {"low": -1000, "high": 400},
        "architecture": "monai.UNet",
        "architecture_args": dict(UNET_ARGS),
        "context_slices": 3,
        "input_size": [32, 32],
    }
    card.update(changes)
    return card


def tiny_unet(in_channels: int = 3, out_channels: int = 3, seed: int = 0) -> torch.nn.Module:
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    return UNet(in_channels=in_channels, out_channels=out_channels, **UNET_ARGS).eval()


def batch(n: int = 2, channels: int = 3, size: int = 32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, channels, size, size), dtype=np.float32)


def reference(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(module(torch.from_numpy(x)), dim=1).numpy()


def write_folder(
    folder: Path,
    module: torch.nn.Module | None = None,
    fmt: str = "safetensors",
    card: dict[str, Any] | None = None,
    payload: bytes | None = None,
    with_sha: bool = True,
) -> Path:
    """A model folder: card plus weights (safetensors or a torch.save'd state dict of
    `module`, or the raw `payload` bytes), the card's sha256 filled in."""
    folder.mkdir(parents=True, exist_ok=True)
    card = dict(card or card_dict())
    if payload is None:
        state = (module or tiny_unet()).state_dict()
        if fmt == "safetensors":
            from safetensors.torch import save

            payload = save({k: v.contiguous() for k, v in state.items()})
        else:
            buf = io.BytesIO()
            torch.save(state, buf)
            payload = buf.getvalue()
    suffix = {
        "safetensors": "safetensors",
        "state_dict": "pt",
        "torch.export": "pt2",
        "onnx": "onnx",
    }[fmt]
    card.setdefault("weights_file", f"weights.{suffix}")
    card["weights_format"] = fmt
    if fmt in ("torch.export", "onnx"):
        card["architecture"] = fmt
    if with_sha:
        card["weights_sha256"] = hashlib.sha256(payload).hexdigest()
    (folder / card["weights_file"]).write_bytes(payload)
    (folder / "metadata.json").write_text(json.dumps(card))
    return folder


def export_pt2(module: torch.nn.Module, path: Path, dynamic_batch: bool = True) -> Path:
    x = torch.zeros(2, module.in_channels, 32, 32)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    torch.export.save(torch.export.export(module, (x,), dynamic_shapes=shapes), path)
    return path


def export_onnx(module: torch.nn.Module, path: Path, dynamic_batch: bool = True) -> Path:
    x = torch.zeros(1, module.in_channels, 32, 32)
    axes = {"input": {0: "n"}, "output": {0: "n"}} if dynamic_batch else None
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notes
        warnings.simplefilter("ignore")
        # dynamo=False: the new exporter needs onnxscript, which MedView does not install
        torch.onnx.export(
            module,
            (x,),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes=axes,
        )
    return path


def rewrite_zip(src: Path, dst: Path, edit: Callable[[str, bytes], bytes]) -> Path:
    """Copy a .pt2 archive, passing every member (name inside its root folder, bytes)
    through `edit`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            rel = info.filename.partition("/")[2]
            zout.writestr(info, edit(rel, zin.read(info)))
    return dst

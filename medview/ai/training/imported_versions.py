"""A fine-tuned imported model saved in its own kind, beside what its runner needs
(versions.write_version calls this for versions.IMPORTED_KINDS; a plain MONAI network's
version is safetensors under the parent's card, like a bundled fine-tune):

- nnU-Net v2: the parent's dataset.json and plans.json, and one new checkpoint in nnU-Net's
  format (the parent's first fold's checkpoint with the fine-tuned network_weights; no
  optimiser state), read back like any import with torch.load(weights_only=True);
- a consented MONAI bundle-config model: the parent's bundle folder (its network_def is
  built from it) and the weights as safetensors."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

from medview.ai.models.cards import ModelCard
from medview.ai.models.registry import resolve
from medview.ai.training.versions import write_card, write_model

CHECKPOINT = "checkpoint_fold0.pth"


def write_imported(folder: Path, model: Any, card: dict, parent: ModelCard) -> Path:
    """Write the version's files and then its card into `folder`; returns the card's path."""
    from medview.ai.runtime.volume_models import BUNDLE_FOLDER

    source = resolve(parent.ref).folder
    folder.mkdir(parents=True, exist_ok=True)
    if parent.architecture == "monai.bundle-config":
        shutil.copytree(source / BUNDLE_FOLDER, folder / BUNDLE_FOLDER)
        return write_model(folder, model, card)
    for name in ("dataset.json", "plans.json"):
        shutil.copyfile(source / name, folder / name)
    data = nnunet_checkpoint(model, source / parent.weights_file)
    (folder / CHECKPOINT).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    card.update(weights_file=CHECKPOINT, weights_format="nnunet")
    card["architecture_args"]["folds"] = {"0": {"file": CHECKPOINT, "sha256": digest}}
    return write_card(folder, card)


def nnunet_checkpoint(model: Any, parent_checkpoint: Path) -> bytes:
    """The bytes of an nnU-Net checkpoint of `model`'s weights, its other entries (trainer,
    init_args, mirroring axes, log) from the parent's checkpoint, read without running code."""
    import torch

    from medview.ai.runtime.nnunet_models import read_checkpoint

    ckpt = read_checkpoint(parent_checkpoint.read_bytes(), str(parent_checkpoint))
    ckpt["network_weights"] = {
        k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
    }
    ckpt["optimizer_state"] = None  # the parent's optimiser does not describe these weights
    ckpt["grad_scaler_state"] = None
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()

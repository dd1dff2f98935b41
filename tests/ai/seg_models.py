"""A tiny segmentation model with hand-set weights for the inference tests, and fakes.

"bright-seg" is the tiny MONAI U-Net of tiny_models.py with weights set by hand, not random:
its first convolution passes the centre slice through (instance-normalised), and the last
one upsamples it bilinearly into logits, so label 1 lights up on the brightest structures
(bone, contrast) and label 2 on the next brightest. Its output is smooth, deterministic and
gives a few dozen connected findings on a demo study: enough structure to test findings,
SEG export and job / CLI agreement without training anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from medview.ai.models.cards import card_from_dict
from medview.core.volume import Volume, VolumeMetadata
from tests.ai.tiny_models import UNET_ARGS, card_dict, tiny_unet, write_folder

BRIGHT_NAME = "bright-seg"


def bright_unet() -> torch.nn.Module:
    net = tiny_unet()
    upsample = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.model[0].conv.weight[0, 1, 1, 1] = 1.0
        net.model[0].adn.A.weight.fill_(0.25)
        last = net.model[2].conv
        last.weight[0, 1] = 4.0 * upsample
        last.weight[0, 2] = 3.0 * upsample
        last.bias.copy_(torch.tensor([0.0, -6.5, -5.0]))
    return net


def write_bright_model(folder: Path, version: str = "1.0") -> Path:
    card = card_dict(BRIGHT_NAME, version, input_size=None)
    return write_folder(folder, bright_unet(), card=card)


UNET_3D = {**UNET_ARGS, "spatial_dims": 3, "in_channels": 1, "out_channels": 3}


def bright_unet_3d() -> torch.nn.Module:
    """bright_unet in 3D: a (4, 8)-channel 3D U-Net passing the block through its first
    convolution and upsampling it trilinearly into logits (same biases)."""
    from monai.networks.nets import UNet

    net = UNet(**UNET_3D)
    line = torch.tensor([0.5, 1.0, 0.5])
    upsample = line[:, None, None] * line[None, :, None] * line[None, None, :]
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.model[0].conv.weight[0, 0, 1, 1, 1] = 1.0
        net.model[0].adn.A.weight.fill_(0.25)
        last = net.model[2].conv
        last.weight[0, 1] = 4.0 * upsample
        last.weight[0, 2] = 3.0 * upsample
        last.bias.copy_(torch.tensor([0.0, -6.5, -5.0]))
    return net.eval()


def write_bright_model_3d(folder: Path, version: str = "1.0") -> Path:
    """bright-3d: bright_unet_3d as an imported 3D (MONAI runner) model, 32^3 windows on a
    2.4 x 2.4 x 3 mm grid."""
    volume3d = {
        "roi_size": [32, 32, 16],
        "axcodes": "RAS",
        "spacing_mm": [2.4, 2.4, 3.0],
        "overlap": 0.25,
        "blend": "gaussian",
        "sw_batch_size": 1,
    }
    card = card_dict(
        "bright-3d", version, input_size=None, architecture_args=UNET_3D, volume3d=volume3d
    )
    card["context_slices"] = 1
    return write_folder(folder, bright_unet_3d(), card=card)


def card(**changes: Any):
    data = card_dict("fake-seg", "1.0", input_size=None)
    data.update(changes)
    return card_from_dict(data, "test card")


class FakeModel:
    """A LoadedModel stand-in whose probabilities are a known function of its input:
    p1 = 0.8 x centre channel, p2 = 0.2 x mean of the other channels, background the rest.
    Pointwise, so flips do not change it; records the batch shapes it saw."""

    def __init__(self, card_, device: str = "cpu", on_call=None) -> None:
        self.card = card_
        self.device = torch.device(device)
        self.shapes: list[tuple[int, ...]] = []
        self.on_call = on_call

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.on_call is not None:
            self.on_call(self, x)
        self.shapes.append(x.shape)
        c = x.shape[1] // 2
        p1 = 0.8 * x[:, c]
        others = np.delete(x, c, axis=1)
        p2 = 0.2 * others.mean(axis=1) if others.shape[1] else np.zeros_like(p1)
        return np.stack([1.0 - p1 - p2, p1, p2], axis=1).astype(np.float32)

    def to(self, device):
        self.device = torch.device(device)
        return self


def volume(
    shape=(6, 16, 16), seed: int = 0, modality: str = "CT", spacing=(2.0, 0.8, 0.8)
) -> Volume:
    rng = np.random.default_rng(seed)
    array = rng.integers(-1100, 600, size=shape).astype(np.int16)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (10.0, -20.0, 30.0)
    return Volume(array, affine, VolumeMetadata(modality=modality, source="test volume"))


def expected(
    vol: Volume, label_value: int, lo: float = -1000.0, hi: float = 400.0
) -> tuple[np.ndarray, np.ndarray]:
    """FakeModel's probability (0..255 float) of one label for each voxel of a 3-slice-context
    card, and where that label is the clear winner (so the one-byte code keeps it)."""
    x = np.clip((vol.array.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo), 0, 1)
    s = len(x)
    prev, nxt = x[np.clip(np.arange(s) - 1, 0, s - 1)], x[np.clip(np.arange(s) + 1, 0, s - 1)]
    p1, p2 = 0.8 * x, 0.2 * (prev + nxt) / 2
    mine, other = (p1, p2) if label_value == 1 else (p2, p1)
    return mine * 255, mine > other + 0.02


def assert_map_is_findings(label_map: np.ndarray, findings) -> None:
    """Every voxel of `label_map` lies in a finding's region, and each finding is one
    connected region (26-connectivity) of its label there, of its voxel count and box."""
    from scipy import ndimage

    shown = []
    for value in np.unique(label_map[label_map > 0]):
        comp, _ = ndimage.label(label_map == value, structure=np.ones((3, 3, 3), bool))
        sizes = np.bincount(comp.ravel())
        shown += [
            (int(value), int(sizes[j]), tuple(s.start for s in sl), tuple(s.stop - 1 for s in sl))
            for j, sl in enumerate(ndimage.find_objects(comp), 1)
        ]
    listed = [(f.label_value, f.voxel_count, *f.bbox_index) for f in findings]
    assert sorted(shown) == sorted(listed)

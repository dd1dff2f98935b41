"""A network's inference copy: the same function with less memory traffic per slice.

A 2.5D U-Net on a 512² slice is bound by memory, not arithmetic: its first and last layers
have 3 to 16 channels at full resolution, where each batch norm is one more pass over the
tensor and oneDNN reorders every NCHW tensor into its blocked layout and back around each
convolution. Two rewrites take that out (issue 19; bench_infer.py's profile):

- Batch norm folded into the convolution before it. In eval mode a BatchNorm is
  y = (x - mean) * scale + beta, a per-channel affine map, so it merges into that
  convolution's weights and bias (nn.Conv*, nn.ConvTranspose*). The result differs from
  the unfolded network by float rounding only (about 1e-5 in the logits).
- channels_last on the CPU, where oneDNN runs NHWC directly: the reorders go. Only on
  the CPU: CUDA's and MPS's kernels are chosen for NCHW float32 and are left as they are.

Measured on this repository's 2-core CPU, one torch thread, the bundled lesion model on a
512² slice: about 40 ms before, 26 ms after (bench_infer.py prints today's figures).

The original module is never changed: the copy is made by `inference_copy`, so Grad-CAM,
training and export keep the module with its batch norms."""

from __future__ import annotations

import copy
import itertools
from typing import Any, TypeGuard

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

_CONVS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def inference_copy(module: nn.Module, device: Any) -> nn.Module:
    """An eval-mode copy of `module` on `device` with its batch norms folded and, on the
    CPU, in channels_last; give it `network_input`'s batches."""
    out = copy.deepcopy(module).eval()
    fold_batch_norms(out)
    out.to(torch.device(device))
    if _channels_last(device):
        for p in itertools.chain(out.parameters(), out.buffers()):  # what .to(memory_format=) does
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
    return out


def network_input(x: np.ndarray, device: Any) -> torch.Tensor:
    """A float32 (N, C, H, W) array as the batch `inference_copy`'s network takes on
    `device`: one copy, which also makes a strided view (preprocess.Stack's overlapping 2.5D
    windows) dense; a GPU gets a dense NCHW batch, as it always did. Never x's memory: a
    network may write into its input, and x may be a view of a buffer other windows share."""
    if not x.flags.writeable:  # torch.from_numpy warns on read-only arrays
        x = np.array(x)
    t = torch.from_numpy(x)
    if t.dim() == 4 and _channels_last(device):
        out = t.contiguous(memory_format=torch.channels_last)
    else:
        out = t.contiguous().to(torch.device(device))
    if out.data_ptr() == x.ctypes.data:  # already in that layout (one channel, or N = 1)
        out = out.clone(memory_format=torch.preserve_format)
    return out


def _channels_last(device: Any) -> bool:
    return torch.device(device).type == "cpu"


def _chains(module: nn.Module | None) -> TypeGuard[nn.Sequential]:
    """Whether `module` runs its children one after the other: an nn.Sequential (MONAI's
    Convolution and ADN are) that keeps Sequential's forward; a subclass with its own
    forward may route its children otherwise, so nothing in it is folded."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _leading(module: nn.Module) -> tuple[nn.Module, str, nn.Module] | None:
    """(parent, name, layer) of the first layer `module` runs when it is a chain of
    nn.Sequential (MONAI's Convolution is conv then ADN, its ADN norm first under "NDA")."""
    parent: nn.Module | None = None
    name = ""
    layer: nn.Module | None = module
    while _chains(layer) and len(layer):
        parent, name = layer, next(iter(layer._modules))
        layer = layer._modules[name]
    return (parent, name, layer) if parent is not None and layer is not None else None


def fold_batch_norms(module: nn.Module) -> int:
    """Fold every eval BatchNorm that directly follows a convolution inside an nn.Sequential
    (see _chains) into that convolution, in place; returns how many were folded. Only norms
    with running statistics and as many features as the convolution has outputs."""
    folded = 0
    for seq in [m for m in module.modules() if _chains(m)]:
        names = list(seq._modules)
        for first, second in itertools.pairwise(names):
            conv, after = seq._modules[first], seq._modules[second]
            if not isinstance(conv, _CONVS) or after is None:
                continue
            lead = (seq, second, after) if isinstance(after, _BatchNorm) else _leading(after)
            if lead is None:
                continue
            parent, name, norm = lead
            if not isinstance(norm, _BatchNorm) or not _foldable(conv, norm):
                continue
            _fold(conv, norm)
            parent._modules[name] = nn.Identity()
            folded += 1
    return folded


def _foldable(conv: _ConvNd, norm: _BatchNorm) -> bool:
    if norm.training or norm.running_mean is None or norm.running_var is None:
        return False
    return norm.num_features == conv.out_channels


@torch.no_grad()
def _fold(conv: _ConvNd, norm: _BatchNorm) -> None:
    assert norm.running_mean is not None and norm.running_var is not None  # _foldable
    mean, var = norm.running_mean.float(), norm.running_var.float()
    scale = torch.rsqrt(var + norm.eps)
    if norm.affine:
        scale = scale * norm.weight.float()
    shift = -mean * scale + (norm.bias.float() if norm.affine else 0.0)
    weight = conv.weight
    # out channels: dim 0 of a convolution's weight, dim 1 of a transposed one's (per group)
    if isinstance(conv, _TRANSPOSED):
        groups = conv.groups
        w = weight.reshape(groups, weight.shape[0] // groups, -1, *weight.shape[2:])
        w = w * scale.reshape(groups, 1, -1, *([1] * (weight.dim() - 2)))
        new_weight = w.reshape(weight.shape)
    else:
        new_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    bias = conv.bias.float() if conv.bias is not None else torch.zeros_like(mean)
    conv.weight = nn.Parameter(new_weight.to(weight.dtype), requires_grad=False)
    conv.bias = nn.Parameter((bias * scale + shift).to(weight.dtype), requires_grad=False)

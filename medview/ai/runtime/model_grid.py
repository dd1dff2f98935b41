"""The grid a 3D model sees, and the way there and back.

MedView volumes are (slice, row, col) with an affine to LPS mm (DICOM). MONAI and NIfTI work
in RAS: the same point has x and y negated. A bundle's Orientationd turns the voxel axes
(permute and flip only, as MONAI does: an oblique study stays oblique) so that they run along
its `axcodes` (nibabel letters: "RAS" = axis 0 increases towards the patient's Right, axis 1
towards Anterior, axis 2 towards Superior), and Spacingd resamples them to its pixdim with
voxel 0's centre kept in place. `ModelGrid` is that grid as one affine map from model voxel
indices to study voxel indices; `to_model` samples the study there (trilinear) and `to_study`
samples model outputs back at the study's voxels, chunk by chunk so nothing the size of the
study is ever float."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medview.ai.models.cards import Volume3D
from medview.core.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_WORLD = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
_CHUNK_VOXELS = 1_000_000  # output voxels sampled at a time (tens of MB of float64 grid)


def _orientation(ras: np.ndarray, axcodes: str) -> tuple[list[int], list[bool]]:
    """For each model axis, the study axis it comes from and whether it is flipped: each
    study axis goes to the world axis it is most aligned with (largest cosine first)."""
    cos = np.abs(ras[:3, :3] / np.linalg.norm(ras[:3, :3], axis=0))
    world_of = [-1, -1, -1]
    for flat in np.argsort(-cos, axis=None):
        w, j = divmod(int(flat), 3)
        if world_of[j] < 0 and w not in world_of:
            world_of[j] = w
    perm, flips = [], []
    for letter in axcodes:
        world, sign = _WORLD[letter]
        j = world_of.index(world)
        perm.append(j)
        flips.append(bool(np.sign(ras[world, j]) != sign))
    return perm, flips


@dataclass(frozen=True)
class ModelGrid:
    shape: tuple[int, int, int]  # model voxels along the axcodes' axes
    model_to_study: np.ndarray  # 4x4: model voxel index -> study (slice, row, col) index
    study_shape: tuple[int, int, int]
    slice_axis: int  # the model axis that runs along the study's slices

    @classmethod
    def make(cls, volume: Volume, spec: Volume3D) -> ModelGrid:
        ras = LPS_TO_RAS @ volume.affine
        perm, flips = _orientation(ras, spec.axcodes)
        n = np.array(volume.shape, float)[perm]
        spacing = np.linalg.norm(ras[:3, :3], axis=0)[perm]
        target = np.array(spec.spacing_mm if spec.spacing_mm else spacing, float)
        shape = np.maximum(1, np.round(n * spacing / target)).astype(int)
        step = target / spacing  # study voxels per model voxel along each model axis
        m = np.zeros((4, 4))
        m[3, 3] = 1.0
        for t, j in enumerate(perm):
            if flips[t]:  # model index 0 sits at the study's last voxel on that axis
                m[j, t], m[j, 3] = -step[t], n[t] - 1
            else:
                m[j, t] = step[t]
        depth, rows, cols = (int(s) for s in shape)
        return cls((depth, rows, cols), m, volume.shape, perm.index(0))

    @property
    def study_to_model(self) -> np.ndarray:
        return np.linalg.inv(self.model_to_study)

    def to_model(
        self, array: np.ndarray, device: torch.device | str = "cpu", mode: str = "bilinear"
    ) -> np.ndarray:
        """float32 model-grid image of a study array (slice, row, col), trilinear (sampled
        on `device`: the model's GPU makes it fast); mode "nearest" for a label map."""
        out = np.empty(self.shape, np.float32)
        step = max(1, _CHUNK_VOXELS // (self.shape[1] * self.shape[2]))
        for a in range(0, self.shape[0], step):
            b = min(self.shape[0], a + step)
            out[a:b] = _sample(
                array[None], self.model_to_study, 0, (a, b), self.shape, device, mode
            )[0]
        return out

    def to_study(
        self, values: torch.Tensor, k0: int, k1: int, device: torch.device | str = "cpu"
    ) -> np.ndarray:
        """Model-grid values (C, *shape) sampled at study slices k0..k1: (k1-k0, C, R, C)."""
        out = _sample(values, self.study_to_model, 0, (k0, k1), self.study_shape, device)
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3))

    def model_range(self, k0: int, k1: int) -> tuple[int, int]:
        """Model indices along slice_axis that study slices k0..k1-1 need (one voxel more
        either side for the trilinear sampling)."""
        pts = np.array(
            [
                [k, r, c, 1.0]
                for k in (k0, k1 - 1)
                for r in (0, self.study_shape[1] - 1)
                for c in (0, self.study_shape[2] - 1)
            ]
        )
        along = (pts @ self.study_to_model.T)[:, self.slice_axis]
        lo = max(0, int(np.floor(along.min())) - 1)
        return lo, min(self.shape[self.slice_axis], int(np.ceil(along.max())) + 2)

    def study_range(self, a: int, b: int) -> tuple[int, int]:
        """Study slices wholly computed from model indices a..b-1 along slice_axis."""
        s = self.study_shape[0]
        ks = [
            k
            for k in range(s)
            if a <= self.model_range(k, k + 1)[0] and self.model_range(k, k + 1)[1] <= b
        ]
        return (ks[0], ks[-1] + 1) if ks else (0, 0)


def _sample(
    source: np.ndarray | torch.Tensor,
    out_to_src: np.ndarray,
    axis: int,
    span: tuple[int, int],
    out_shape: tuple[int, int, int],
    device: torch.device | str = "cpu",
    mode: str = "bilinear",
) -> np.ndarray:
    """`source` (C, *src) sampled trilinearly (or `mode`) at output voxels span[0]..span[1]-1 along
    `axis` of an output grid `out_shape`, where `out_to_src` maps output to source indices.
    Only the part of the source those voxels need is made float."""
    shape = list(out_shape)
    shape[axis] = span[1] - span[0]
    axes = [np.arange(n, dtype=np.float64) for n in shape]
    axes[axis] = axes[axis] + span[0]
    corners = np.array(
        [
            [x, y, z, 1.0]
            for x in (axes[0][0], axes[0][-1])
            for y in (axes[1][0], axes[1][-1])
            for z in (axes[2][0], axes[2][-1])
        ]
    )
    src_corners = corners @ out_to_src.T
    src_shape = source.shape[1:]
    lo = np.clip(np.floor(src_corners[:, :3].min(axis=0)).astype(int) - 1, 0, None)
    hi = np.minimum(np.ceil(src_corners[:, :3].max(axis=0)).astype(int) + 2, src_shape)
    lo = np.minimum(lo, np.array(src_shape) - 1)
    hi = np.maximum(hi, lo + 1)
    part = source[:, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    part = (
        part.float()
        if isinstance(part, torch.Tensor)
        else torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))
    )
    part = part.to(device)
    # source index of every output voxel relative to the part, then grid_sample's -1..1,
    # built in float32 on the device (indices stay far below float32's exact range)
    m = torch.tensor(out_to_src[:3, :3], dtype=torch.float32, device=device)
    offset = torch.tensor(out_to_src[:3, 3] - lo, dtype=torch.float32, device=device)
    a = [torch.tensor(x, dtype=torch.float32, device=device) for x in axes]
    grid = (
        a[0][:, None, None, None] * m[:, 0]
        + a[1][None, :, None, None] * m[:, 1]
        + a[2][None, None, :, None] * m[:, 2]
        + offset
    )
    size = torch.tensor(part.shape[1:], dtype=torch.float32, device=device)
    scale = torch.where(size > 1, 2.0 / (size - 1).clamp(min=1), torch.zeros_like(size))
    shift = torch.where(size > 1, -torch.ones_like(size), torch.zeros_like(size))
    g = (grid * scale + shift).flip(-1)[None]  # grid_sample wants (x, y, z)
    out = F.grid_sample(part[None], g, mode=mode, padding_mode="border", align_corners=True)
    return out[0].cpu().numpy()

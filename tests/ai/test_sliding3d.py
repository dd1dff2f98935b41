"""The 3D sliding-window runner: geometry (LPS study <-> RAS model grid, axis order,
resampling), out-of-memory fallback, cancel, progressive results, for the 2.5D runner too."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from medview.ai.models.cards import card_from_dict
from medview.ai.runtime.inference import segment
from medview.ai.runtime.sliding3d import window_count
from medview.core import geometry
from medview.core.jobs import CancelToken, JobCancelled
from medview.core.volume import Volume, VolumeMetadata
from tests.ai.seg_models import FakeModel
from tests.ai.seg_models import card as card_2d
from tests.ai.seg_models import volume as volume_2d

LABELS = [
    {"value": 1, "name": "right", "code": ["SCT", "1", "r"]},
    {"value": 2, "name": "anterior", "code": ["SCT", "2", "a"]},
    {"value": 3, "name": "superior", "code": ["SCT", "3", "s"]},
]


def card3d(roi=(64, 64, 64), spacing=(1.5, 1.5, 1.5), axcodes="RAS", batch=1):
    return card_from_dict(
        {
            "name": "octants",
            "version": "1.0",
            "task": "segmentation",
            "modality": "CT",
            "labels": LABELS,
            "intensity": {"low": 0, "high": 1000},
            "architecture": "monai.UNet",
            "context_slices": 1,
            "volume3d": {
                "roi_size": list(roi),
                "axcodes": axcodes,
                "spacing_mm": list(spacing),
                "overlap": 0.25,
                "blend": "gaussian",
                "sw_batch_size": batch,
            },
        },
        "test",
    )


class OctantModel:
    """A VolumeModel stand-in that knows nothing of geometry: in the window it is given
    (one window covering the whole model grid, padded evenly) it calls bright voxels in the
    positive half of axis 0 label 1, else in the positive half of axis 1 label 2, else in the
    positive half of axis 2 label 3. With axcodes RAS: right, anterior, superior."""

    logits = True

    def __init__(self, card, device="cpu") -> None:
        self.card, self.device, self.calls = card, torch.device(device), []

    def to(self, device):
        self.device = torch.device(device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((tuple(x.shape), self.device.type))
        bright = x[:, 0] > 0.5
        d, h, w = x.shape[2:]
        i = (torch.arange(d) >= d / 2).view(1, d, 1, 1)
        j = (torch.arange(h) >= h / 2).view(1, 1, h, 1)
        k = (torch.arange(w) >= w / 2).view(1, 1, 1, w)
        masks = [bright & i, bright & ~i & j, bright & ~i & ~j & k]
        scores = [torch.zeros_like(x[:, 0])] + [m.float() * 20 - 10 for m in masks]
        return torch.stack(scores, 1)


def _affine(kind: str) -> np.ndarray:
    """Study affines (index (slice, row, col) -> LPS) that are not axial."""
    if kind == "sagittal":  # slices step to the patient's left, rows go down, cols forward
        return geometry.affine_from_plane(
            [-20, 15, 40],
            row_cosine=[0, -1, 0],
            col_cosine=[0, 0, -1],
            pixel_spacing_row_col_mm=[1.2, 1.0],
            slice_step_lps=[2.0, 0, 0],
        )
    a = np.radians(20)  # coronal, tilted 20 degrees about the body axis, rows going up
    row = [np.cos(a), np.sin(a), 0]
    col = [0, 0, 1]
    normal = np.cross(row, col)
    return geometry.affine_from_plane(
        [5, -10, -30],
        row_cosine=row,
        col_cosine=col,
        pixel_spacing_row_col_mm=[1.1, 0.9],
        slice_step_lps=list(1.7 * normal),
    )


BLOBS_RAS = {1: (12, -9, -9), 2: (-12, 9, -9), 3: (-12, -9, 9)}  # mm from the centre
HALF = 4.0  # blob half-size, mm


def _study(kind: str, shape=(22, 27, 31)) -> tuple[Volume, dict[int, np.ndarray]]:
    affine = _affine(kind)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    lps = geometry.index_to_lps(affine, idx.reshape(-1, 3)).reshape(*shape, 3)
    ras = lps * np.array([-1, -1, 1])
    centre = ras.reshape(-1, 3).mean(axis=0)
    array = np.zeros(shape, np.int16)
    inside = {}
    for value, offset in BLOBS_RAS.items():
        d = np.abs(ras - centre - np.array(offset))
        array[(d <= HALF).all(-1)] = 1000
        inside[value] = (d <= HALF - 1.6).all(-1)  # well inside: away from resampling blur
        inside[-value] = (d <= HALF + 2.5).all(-1)  # everything it may blur into
    return Volume(array, affine, VolumeMetadata(modality="CT", source="test")), inside


@pytest.mark.parametrize("kind", ["sagittal", "tilted-coronal"])
def test_labels_land_on_the_right_voxels(kind, kept_data_dir):
    vol, inside = _study(kind)
    model = OctantModel(card3d())
    result = segment(vol, model, reuse=False)
    labels = result.label_map(0.5)
    for value in (1, 2, 3):
        assert inside[value].sum() > 8
        assert (labels[inside[value]] == value).all(), f"label {value} missing on its blob"
        assert not ((labels == value) & ~inside[-value]).any(), f"label {value} elsewhere"
    assert len(model.calls) == 1  # one window: the model saw the whole grid at once


def test_axcodes_are_honoured(kept_data_dir):
    """A model made for LPS grids sees the study the other way round: what it calls its
    positive axis-0 half is then the patient's left."""
    vol, inside = _study("sagittal")
    labels = segment(vol, OctantModel(card3d(axcodes="LPS")), reuse=False).label_map(0.5)
    # blob 1 (right, posterior) is in the negative half of L and the positive half of P
    assert (labels[inside[1]] == 2).all()
    assert (labels[inside[2]] == 1).all() and (labels[inside[3]] == 1).all()


def test_window_count_matches_monai():
    from monai.inferers import sliding_window_inference

    calls = []

    def net(x):
        calls.append(len(x))
        return x

    x = torch.zeros(1, 1, 40, 70, 20)
    with torch.inference_mode():
        sliding_window_inference(x, (32, 32, 32), 1, net, overlap=0.25)
    assert window_count((40, 70, 20), (32, 32, 32), 0.25) == len(calls)


class OOMOnGPU(OctantModel):
    """Runs out of memory for every window batch while it believes it is on a GPU."""

    def forward(self, x):
        if self.device.type == "cuda":
            self.calls.append((tuple(x.shape), "cuda"))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return super().forward(x)


def test_out_of_memory_shrinks_batch_then_window_then_moves_to_cpu(kept_data_dir):
    vol, _ = _study("sagittal")
    model = OOMOnGPU(card3d(roi=(24, 24, 24), batch=4), device="cuda")
    result = segment(vol, model, reuse=False)
    assert result.warnings == [
        "The CUDA ran out of memory; fewer windows now run at a time.",
        "The CUDA ran out of memory; smaller windows now run (halved each time, down to 16 "
        "voxels a side).",
        "The CUDA ran out of memory even for the smallest windows; the model finished on "
        "the CPU (slower).",
    ]
    assert result.device == "cpu"
    gpu = [shape for shape, dev in model.calls if dev == "cuda"]
    batches = [s[0] for s in gpu]
    assert batches[0] > 1 and batches[batches.index(1) :] == [1] * (len(gpu) - batches.index(1))
    assert gpu[0][2:] == (24, 24, 24) and gpu[-1][2:] == (16, 16, 16)
    assert (result.label_map(0.5) > 0).any()


def test_out_of_memory_on_the_cpu_is_one_sentence(kept_data_dir):
    from medview.core.errors import ResourceLimitError

    class Always(OctantModel):
        def forward(self, x):
            raise RuntimeError(
                "DefaultCPUAllocator: not enough memory: you tried to "
                "allocate 1 GB. Failed to allocate memory"
            )

    vol, _ = _study("sagittal")
    with pytest.raises(ResourceLimitError, match="smallest window"):
        segment(vol, Always(card3d(roi=(32, 32, 32))), reuse=False)


def test_cancel_lands_before_the_next_window(kept_data_dir):
    vol, _ = _study("sagittal")
    token = CancelToken()
    model = OctantModel(card3d(roi=(16, 16, 16)))
    when = []

    def progress(p):
        if len(model.calls) == 3 and not when:
            when.append(time.perf_counter())
            token.cancel()

    with pytest.raises(JobCancelled):
        segment(vol, model, reuse=False, progress=progress, cancel=token)
    assert len(model.calls) == 3
    assert time.perf_counter() - when[0] < 1.0


class Bright(OctantModel):
    """Label 1 wherever the input is bright, wherever it lies in the window."""

    def forward(self, x):
        self.calls.append((tuple(x.shape), self.device.type))
        score = (x[:, 0] > 0.5).float() * 20 - 10
        zero = torch.zeros_like(score)
        return torch.stack([zero, score, zero - 10, zero - 10], 1)


def _bright_slab_volume(shape=(40, 20, 20)) -> Volume:
    affine = np.diag([2.0, 1.5, 1.5, 1.0])
    return Volume(
        np.full(shape, 1000, np.int16), affine, VolumeMetadata(modality="CT", source="test")
    )


def test_3d_focus_slab_comes_first_then_the_rest(kept_data_dir):
    vol = _bright_slab_volume()
    model = Bright(card3d(roi=(16, 16, 16), spacing=(1.5, 1.5, 2.0)))
    seen = []

    def partial(result, span):
        codes = result.codes.copy()
        seen.append((span, codes))

    result = segment(vol, model, reuse=False, focus=30, on_partial=partial)
    first_span, codes = seen[0]
    assert first_span[0] <= 30 < first_span[1]
    assert (codes[first_span[0] : first_span[1]] > 0).all()  # the slab is there at once
    assert not codes[:10].any()  # far slices not yet
    np.testing.assert_array_equal(
        codes[first_span[0] : first_span[1]], result.codes[first_span[0] : first_span[1]]
    )
    assert (result.codes > 0).all()


def test_2d_focus_slab_comes_first_then_the_rest(kept_data_dir):
    vol = volume_2d(shape=(30, 16, 16))
    model = FakeModel(card_2d())
    spans = []
    result = segment(
        vol,
        model,
        reuse=False,
        focus=20,
        on_partial=lambda r, span: spans.append((span, r.codes[:5].any())),
    )
    assert spans[0] == ((12, 29), False)  # the slab first, nothing before it computed yet
    assert [s for s, _ in spans] == [(12, 29), (0, 12), (29, 30)]
    assert result.codes[:12].any()

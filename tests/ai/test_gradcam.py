"""Grad-CAM for the slice classifier: it points at what made a slice positive, keeps one
scale per stack, leaves the model as it found it, and refuses what it cannot explain."""

import numpy as np
import pytest
import torch

from medview.ai.runtime.gradcam import gradcam, peak_index
from medview.ai.runtime.slice_classifier import SliceClassifier
from medview.core.errors import InvalidInputError

SIZE = 32


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _stacks(rng: np.random.Generator, n: int = 8, t: int = 6):
    """Noise stacks; two neighbouring slices of each hold a bright 5 x 5 square, the target.
    Also the coarse (8 x 8) map of the squares that training supervises."""
    x = rng.random((n, t, 1, SIZE, SIZE), dtype=np.float32) * 0.3
    y = np.zeros((n, t), np.int64)
    centres = np.zeros((n, t, 2), int)
    maps = np.zeros((n, t, 8, 8), np.float32)
    for i in range(n):
        r, c = rng.integers(5, SIZE - 5, 2)
        k0 = rng.integers(0, t - 2)
        x[i, k0 : k0 + 2, 0, r - 2 : r + 3, c - 2 : c + 3] = 1.0
        y[i, k0 : k0 + 2] = 1
        centres[i, k0 : k0 + 2] = (r, c)
        square = np.zeros((SIZE, SIZE), bool)
        square[r - 2 : r + 3, c - 2 : c + 3] = True
        maps[i, k0 : k0 + 2] = square.reshape(8, 4, 8, 4).any(axis=(1, 3))
    return x, y, centres, maps


@pytest.fixture(scope="module")
def trained() -> SliceClassifier:
    """A tiny classifier taught, as the bundled one is (slice labels and the coarse map),
    that a bright square means 'lesion' (a second or two)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SliceClassifier(features=[8, 16], embed=16, hidden=8, input_size=SIZE, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    rng = np.random.default_rng(0)
    for _ in range(60):
        x, y, _, maps = _stacks(rng)
        opt.zero_grad()
        logits, map_logits = model.forward_with_map(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, 2), torch.from_numpy(y).reshape(-1)
        ) + torch.nn.functional.binary_cross_entropy_with_logits(map_logits, torch.from_numpy(maps))
        loss.backward()
        opt.step()
    return model.eval()


def test_the_peak_lies_on_what_made_the_slice_positive(trained):
    x, y, centres, _ = _stacks(np.random.default_rng(5), n=10)
    hits, total = 0, 0
    for i in range(len(x)):
        result = gradcam(trained, x[i, :, 0])
        assert result.heatmaps.shape == (6, SIZE, SIZE)
        assert result.heatmaps.min() >= 0 and result.heatmaps.max() == pytest.approx(1.0)
        np.testing.assert_array_equal(result.probabilities >= 0.5, y[i] == 1)
        for k in np.flatnonzero(y[i]):
            r, c = peak_index(result.heatmaps[k])
            hits += np.hypot(r - centres[i, k, 0], c - centres[i, k, 1]) <= 4
            total += 1
    assert hits >= 0.9 * total


def test_heatmap_is_the_gradient_weighted_last_stage(trained):
    """Grad-CAM by its definition, computed here on its own: slice t's lesion log-odds
    differentiated w.r.t. the last stage, the gradient's spatial mean weighting that stage's
    channels, negatives cut, upsampled; gradcam() gives exactly that, on one scale."""
    from torch.nn import functional as F

    x, _, _, _ = _stacks(np.random.default_rng(6), n=1)
    stack = torch.from_numpy(x[0])
    kept = []
    handle = trained.cam_layer.register_forward_hook(lambda _m, _i, out: kept.append(out))
    try:
        logits = trained(stack)
    finally:
        handle.remove()
    result = gradcam(trained, x[0, :, 0])
    for t in range(len(stack)):
        (grad,) = torch.autograd.grad(logits[t, 1] - logits[t, 0], kept[0], retain_graph=True)
        cam = F.relu((grad[t].mean(dim=(1, 2))[:, None, None] * kept[0][t]).sum(0))
        cam = (
            F.interpolate(cam[None, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[
                0, 0
            ]
            .detach()
            .numpy()
        )
        np.testing.assert_allclose(result.heatmaps[t] * result.peak, cam, atol=1e-5)
    assert kept[0].shape[-1] == SIZE // 2 ** len(trained.encoder.stages)


def test_heatmaps_come_back_at_the_size_asked_for(trained):
    x, _, _, _ = _stacks(np.random.default_rng(2), n=1)
    big = np.kron(x[0, :, 0], np.ones((4, 4), np.float32))  # 128² slices, reduced inside
    result = gradcam(trained, big)
    assert result.heatmaps.shape == (6, 128, 128)
    assert gradcam(trained, x[0], out_size=(64, 48)).heatmaps.shape == (6, 64, 48)


def test_model_is_left_as_it_was_and_no_grad_does_not_stop_it(trained):
    x, _, _, _ = _stacks(np.random.default_rng(3), n=1)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    trained.train()
    for p in trained.parameters():
        p.grad = None
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            result = gradcam(trained, x[0, :, 0])
        assert result.peak > 0
        assert trained.training
        assert all(p.grad is None for p in trained.parameters())
        for k, v in trained.state_dict().items():
            torch.testing.assert_close(v, before[k])
    finally:
        trained.eval()
        for p in trained.parameters():
            p.requires_grad_(True)


def test_refused_under_inference_mode(trained):
    x, _, _, _ = _stacks(np.random.default_rng(4), n=1)
    with torch.inference_mode(), pytest.raises(InvalidInputError, match="inference_mode"):
        gradcam(trained, x[0, :, 0])


def test_refuses_models_and_inputs_it_cannot_explain(trained):
    from monai.networks.nets import UNet

    unet = UNet(2, 1, 2, (4, 8), (2,), num_res_units=0)
    with pytest.raises(InvalidInputError, match="slice classifier only"):
        gradcam(unet, np.zeros((3, SIZE, SIZE), np.float32))
    with pytest.raises(InvalidInputError, match="stack of slices"):
        gradcam(trained, np.zeros((SIZE, SIZE), np.float32))
    with pytest.raises(InvalidInputError, match="no class 5"):
        gradcam(trained, np.zeros((2, SIZE, SIZE), np.float32), target=5)

"""Site adaptation (ai.training.adapt): which weights learn, batch-norm statistics measured
on a site's images, and the blend of a fine-tune back toward its parent, alone and through
the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.networks.nets import UNet

from medview.ai.models.cards import card_from_dict
from medview.ai.runtime.loading import load_model
from medview.ai.training.adapt import blend, renormalise, set_trainable
from medview.ai.training.data import PreparedStudy
from medview.ai.training.patches import Augment, PatchSampler
from tests.ai.test_training import one_thread, run, tiny_job
from tests.ai.tiny_models import card_dict

__all__ = ["one_thread"]  # the autouse fixture: a private data folder, one thread


def _unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return UNet(
        spatial_dims=2,
        in_channels=3,
        out_channels=3,
        channels=(4, 8, 16),
        strides=(2, 2),
        num_res_units=1,
        norm="batch",
    )


def test_norm_only_leaves_the_convolutions_frozen() -> None:
    net = _unet()
    n = set_trainable(net, "norm")
    learning = {k for k, p in net.named_parameters() if p.requires_grad}
    assert learning and n == sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert all(".N." in k or ".A." in k for k in learning)  # MONAI's ADN: norm, activation
    assert n < sum(p.numel() for p in net.parameters()) / 20
    set_trainable(net, "all")
    assert all(p.requires_grad for p in net.parameters())


def test_decoder_keeps_the_first_layer_frozen_and_the_last_learning() -> None:
    net = _unet()
    set_trainable(net, "decoder")
    names = [k for k, _ in net.named_parameters()]
    grad = {k: p.requires_grad for k, p in net.named_parameters()}
    assert not grad[names[0]] and grad[names[-1]]
    assert 0 < sum(grad.values()) < len(grad)


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="trainable is one of all, norm, decoder"):
        set_trainable(_unet(), "encoder")


def test_renormalise_measures_the_statistics_of_the_site_batches() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1, bias=False), torch.nn.BatchNorm2d(2))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    net.eval()
    batches = [torch.full((2, 1, 4, 4), v) for v in (3.0, 5.0, 10.0)]
    assert renormalise(net, batches) == 1
    assert torch.allclose(net[1].running_mean, torch.full((2,), 6.0))
    assert net[1].momentum == 0.1 and not net.training  # put back as it was
    assert renormalise(torch.nn.Conv2d(1, 1, 1), batches) == 0


def test_blend_is_the_fraction_of_the_change_and_leaves_counts() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.BatchNorm2d(1))
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(2.0)
        net[1].num_batches_tracked.fill_(7)
    blend(net, start, 0.25)
    for k, v in net.state_dict().items():
        if v.is_floating_point() and k.endswith(("weight", "bias")):
            assert torch.allclose(v, start[k] + 0.5)
    assert int(net[1].num_batches_tracked) == 7


def _weights(folder: str) -> dict[str, torch.Tensor]:
    return load_model(folder, "cpu", reuse=False).module.state_dict()


def test_engine_norm_only_fine_tune_changes_only_the_norms(tmp_path: Path) -> None:
    done, _ = run(tiny_job(tmp_path, epochs=1, trainable="norm"))
    assert done is not None
    base = tmp_path / "data" / "models" / "tiny" / "1.0"
    before, after = _weights(str(base)), _weights(done["folder"])
    convs = [k for k in before if k.endswith("conv.weight")]
    assert convs and all(torch.equal(before[k], after[k]) for k in convs)
    changed = [
        k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])
    ]
    assert changed and all(".N." in k or ".A." in k for k in changed)


def test_engine_interpolate_gives_the_midpoint_of_parent_and_fine_tune(tmp_path: Path) -> None:
    full, _ = run(tiny_job(tmp_path, epochs=1, work="full", interpolate=1.0))
    half, _ = run(tiny_job(tmp_path, epochs=1, work="half", interpolate=0.5))
    assert full is not None and half is not None
    base = _weights(str(tmp_path / "data" / "models" / "tiny" / "1.0"))
    a, b = _weights(full["folder"]), _weights(half["folder"])
    moved = [k for k in base if base[k].is_floating_point() and not torch.equal(base[k], a[k])]
    assert moved
    for k in moved:
        assert torch.allclose(b[k], (base[k] + a[k]) / 2, atol=1e-6)


def _soft_tissue_study() -> PreparedStudy:
    """Liver-like tissue of 60 HU and nothing else; a label in the middle."""
    image = np.full((5, 96, 96), 60, np.int16)
    labels = np.zeros(image.shape, np.uint8)
    labels[2, 46:50, 46:50] = 2
    return PreparedStudy("k", "s", image, labels, (1.5, 0.7, 0.7), {2: 16}, Path("."))


def _patches(scanner: bool, seed: int = 0) -> np.ndarray:
    card = card_from_dict(card_dict(context_slices=3, input_size=None), "test card")
    plain = Augment(True, 0.0, 0.0, 0.0, 0.0, 0.0, scanner=scanner)
    sampler = PatchSampler([_soft_tissue_study()], card, 32, 1.0, plain)
    x, _, _ = sampler.batch(np.random.default_rng(seed), 64, "cpu")
    return x.numpy() * 1400.0 - 1000.0  # back to HU (the card's window -1000..400)


def test_scanner_augmentation_spans_kernels_noise_and_contrast_phases() -> None:
    before, after = _patches(False), _patches(True)
    assert np.allclose(before, 60, atol=0.5)  # no jitter of our own asked
    inner = after[:, 1, 2:-2, 2:-2].reshape(len(after), -1)  # (the patch's rim: padding)
    medians, spread = np.median(inner, 1), inner.std(1)
    assert medians.min() < 50 and medians.max() > 90  # darker and brighter: phases
    assert medians.min() > 36 and medians.max() < 120  # 60 HU + k 60 HU, k in [-0.3, 0.9]
    assert (np.abs(medians - 60) < 1).sum() > 10  # and about half left as they were
    assert spread.max() > 8 and (spread < 1).sum() > 5  # noise in some patches, not all
    assert np.array_equal(_patches(True, 3), _patches(True, 3))  # seeded

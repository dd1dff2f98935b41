"""The faster inference path (issue 19) gives what the plain path gave: runtime.fast_network's
folded, channels_last copy of a network, preprocess.Stack's windows, and segment() with the
bundled lesion model on a demo study against the plain path (Plan.inputs, the module as
trained, NCHW)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medview.ai.findings.postprocess import encode, label_map_at, levels
from medview.ai.runtime.fast_network import fold_batch_norms, inference_copy, network_input
from medview.ai.runtime.preprocess import Plan
from medview.core.volume import Volume
from tests.ai.seg_models import card as fake_card

torch.set_num_threads(1)


def _with_statistics(module: nn.Module, seed: int = 0) -> nn.Module:
    """Batch norms with running statistics and affine parameters far from the identity, so
    a fold that ignored any of them would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g))
                m.running_var.copy_(torch.rand(n, generator=g) * 3 + 0.1)
                if m.affine:
                    m.weight.copy_(torch.randn(n, generator=g))
                    m.bias.copy_(torch.randn(n, generator=g))
    return module.eval()


def _unet() -> nn.Module:
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    net = UNet(
        spatial_dims=2,
        in_channels=5,
        out_channels=3,
        channels=[8, 16, 32],
        strides=[2, 2],
        num_res_units=1,
        norm="batch",
    )
    return _with_statistics(net)


def test_a_unet_copy_has_its_batch_norms_folded_and_gives_the_same_output():
    net = _unet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    fast = inference_copy(net, "cpu")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == norms  # untouched
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    x = torch.rand(2, 5, 64, 48)
    with torch.inference_mode():
        want, got = net(x), fast(network_input(x.numpy(), "cpu"))
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(4, 6, 3, padding=1, bias=False),
        nn.Conv2d(4, 6, 3, padding=1, groups=2),
        nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
        nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        nn.Conv3d(4, 6, 3, padding=1),
    ],
    ids=["no-bias", "groups", "transposed", "transposed-groups", "3d"],
)
def test_each_kind_of_convolution_folds_exactly(conv):
    dims = conv.weight.dim() - 2
    norm = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(6)
    net = _with_statistics(nn.Sequential(conv, norm, nn.PReLU()), seed=3)
    x = torch.rand(2, 4, *([9] * dims))
    with torch.no_grad():
        want = net(x)
        assert fold_batch_norms(net) == 1
        assert isinstance(net[1], nn.Identity)
        assert torch.allclose(net(x), want, atol=1e-5, rtol=1e-5)


def test_norms_that_cannot_fold_are_left_alone():
    training = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3))  # train mode: batch stats
    no_stats = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3, track_running_stats=False))
    after_activation = _with_statistics(
        nn.Sequential(nn.Conv2d(2, 3, 1), nn.Sequential(nn.ReLU(), nn.BatchNorm2d(3)))
    )
    assert fold_batch_norms(training) == 0 and isinstance(training[1], nn.BatchNorm2d)
    assert fold_batch_norms(no_stats.eval()) == 0
    assert fold_batch_norms(after_activation) == 0

    class Parallel(nn.Sequential):  # its own forward: the norm does not follow the conv
        def forward(self, x):
            return self[0](x) + self[1](x[:, :1].expand(-1, 3, -1, -1))

    routed = _with_statistics(Parallel(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)))
    assert fold_batch_norms(routed) == 0


def _volume(slices: int = 11, size: int = 16) -> Volume:
    rng = np.random.default_rng(5)
    array = rng.integers(-1100, 600, (slices, size, size)).astype(np.int16)
    return Volume(array, np.diag([0.7, 0.7, 1.5, 1.0]))


@pytest.mark.parametrize("context", [1, 3, 5])
def test_stack_windows_are_plan_inputs_in_any_order(context):
    vol = _volume()
    plan = Plan.make(vol, fake_card(context_slices=context))
    slab = plan.new_slab(4)
    stack = plan.stack(vol.array, 4)
    # forwards, a jump back (progressive results run the focus first), batches of 1..4, ends
    order = [(5, 3), (0, 4), (4, 1), (8, 3), (2, 2), (10, 1), (0, 1), (6, 4)]
    for k0, n in order:
        got = plan.windows(stack, k0, n)
        np.testing.assert_array_equal(got, plan.inputs(vol.array, k0, n, slab))


def test_stack_normalises_each_slice_once_on_a_run_through_the_volume(monkeypatch):
    vol = _volume(slices=40)
    plan = Plan.make(vol, fake_card(context_slices=5))
    stack = plan.stack(vol.array, 1)
    loads = []
    load = stack._load
    monkeypatch.setattr(stack, "_load", lambda p0, need: (loads.append(p0), load(p0, need)))
    slab = plan.new_slab(1)
    for k in range(40):
        np.testing.assert_array_equal(stack.window(k, 1), plan.inputs(vol.array, k, 1, slab))
    # 44 positions (40 slices, 2 repeated at each end) through a buffer of 21: each load
    # after the first keeps the 4 positions it still holds and normalises 17 more
    assert len(stack.buf) == 21 and loads == [0, 17, 34]


def test_the_network_never_gets_the_callers_memory(tmp_path):
    from medview.ai.runtime.loading import load_model
    from tests.ai.tiny_models import card_dict, tiny_unet, write_folder

    folder = write_folder(
        tmp_path / "m", tiny_unet(in_channels=1), card=card_dict(context_slices=1)
    )
    model = load_model(folder, "cpu", reuse=False)
    assert model._fast is not None
    model._fast = nn.Sequential(nn.ReLU(inplace=True), model._fast)  # writes into its input
    x = np.full((1, 1, 32, 32), -1.0, np.float32)  # (1, 1, H, W): NCHW is channels_last too
    model.predict(x)
    assert (x == -1.0).all()


@pytest.fixture(scope="module")
def lesion_study(tmp_path_factory):
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume

    study = generate_demo_study(tmp_path_factory.mktemp("demo"), seed=1, slices=12)
    return load_volume([study.out_dir / "series"])[0]


def test_bundled_model_gives_the_plain_paths_label_map(lesion_study, kept_data_dir):
    from medview.ai.models.registry import resolve
    from medview.ai.runtime.inference import segment
    from medview.ai.runtime.loading import load_model

    model = load_model(resolve("lesion-seg").folder, "cpu", reuse=False)
    vol = lesion_study
    result = segment(vol, model, reuse=False)
    # the plain path: every window stacked afresh, the module as trained, NCHW
    plan = Plan.make(vol, model.card)
    slab = plan.new_slab(1)
    plain = np.zeros(vol.shape, np.uint8)
    with torch.inference_mode():
        for k in range(vol.shape[0]):
            x = torch.from_numpy(plan.inputs(vol.array, k, 1, slab))
            probs = torch.softmax(model.module(x), 1).numpy()
            plain[k] = encode(plan.outputs(probs)[:, 1:])[0]
    # float rounding moves a voxel's probability across a 1/127 step now and then, and where
    # two labels are both near 0 it may pick the other (8 of 78.6 M voxels on a whole study)
    differ = result.codes != plain
    assert np.count_nonzero(differ) <= vol.array.size * 1e-5
    lv = levels(len(model.card.labels))
    got, want = (c[differ].astype(int) for c in (result.codes, plain))
    level_got, level_want = (np.where(c > 0, (c - 1) % lv + 1, 0) for c in (got, want))
    assert np.abs(level_got - level_want).max(initial=0) <= 1
    other = (got > 0) & (want > 0) & ((got - 1) // lv != (want - 1) // lv)
    assert np.maximum(level_got, level_want)[other].max(initial=0) <= 2
    np.testing.assert_array_equal(result.label_map(0.5), label_map_at(plain, model.card, 0.5))


@pytest.mark.parametrize("shape", [(2, 16, 24), (1, 13, 21), (3, 1, 9)])
def test_block_max_is_the_largest_value_of_each_block(shape):
    from medview.ai.findings.postprocess import block_max

    a = np.random.default_rng(2).integers(0, 255, shape).astype(np.uint8)
    n, h, w = shape
    hb, wb = -(-h // 8), -(-w // 8)
    want = np.array(
        [
            [
                [a[k, 8 * i : 8 * i + 8, 8 * j : 8 * j + 8].max() for j in range(wb)]
                for i in range(hb)
            ]
            for k in range(n)
        ]
    )
    np.testing.assert_array_equal(block_max(a), want)

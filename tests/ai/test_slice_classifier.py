"""The slice classifier: shapes, context across slices, in-network downsampling, building and
loading through the card, and bad inputs refused in one sentence."""

import json

import numpy as np
import pytest
import torch

from medview.ai.runtime.slice_classifier import SliceClassifier
from medview.core.errors import InvalidInputError

ARGS = {"features": [4, 8], "embed": 8, "hidden": 4, "input_size": 32, "dropout": 0.0}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def tiny(seed: int = 0) -> SliceClassifier:
    torch.manual_seed(seed)
    return SliceClassifier(in_channels=1, out_channels=2, **ARGS).eval()


def stack(n: int = 6, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(
        np.random.default_rng(seed).random((n, 1, size, size), dtype=np.float32)
    )


def test_batched_stacks_and_one_stack_give_per_slice_logits():
    model = tiny()
    with torch.no_grad():
        batched = model(torch.stack([stack(seed=1), stack(seed=2)]))
        one = model(stack(seed=2))
    assert batched.shape == (2, 6, 2) and one.shape == (6, 2)
    torch.testing.assert_close(batched[1], one)


def test_each_slice_answer_uses_its_neighbours():
    """The GRU carries context: changing slice 0 changes slice 1's logit."""
    model = tiny()
    x = stack()
    y = x.clone()
    y[0] = 5.0
    with torch.no_grad():
        a, b = model(x), model(y)
    assert (a[1] - b[1]).abs().max() > 1e-4
    assert (a[5] - b[5]).abs().max() > 1e-6  # a bidirectional GRU reaches the far end too


def test_full_size_slices_are_reduced_by_block_means_inside():
    model = tiny()
    big = stack(size=128)
    means = big.reshape(6, 1, 32, 4, 32, 4).mean(dim=(3, 5))
    with torch.no_grad():
        torch.testing.assert_close(model(big), model(means), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(6, 32, 32), (6, 2, 32, 32), (1, 2, 3, 1, 32, 32)])
def test_wrong_input_shapes_are_refused(shape):
    with pytest.raises(InvalidInputError, match="SliceClassifier expects"):
        tiny()(torch.zeros(shape))


def test_an_input_size_the_stages_cannot_halve_is_refused():
    with pytest.raises(InvalidInputError, match="input size"):
        SliceClassifier(features=[4, 8, 16, 32], input_size=8)


def _through_card(folder, model: SliceClassifier, args: dict):
    """`model`'s weights in a folder with a card giving `args`, loaded as MedView does."""
    from safetensors.torch import save_file

    from medview.ai.runtime.loading import load_model, sha256_hex

    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(folder / "weights.safetensors"),
    )
    card = {
        "name": "tiny-cls",
        "version": "1.0",
        "task": "classification",
        "modality": "CT",
        "labels": [{"value": 1, "name": "slice with a lesion"}],
        "intensity": {"low": -1000, "high": 400},
        "architecture": "medview.SliceClassifier",
        "architecture_args": {**args, "outputs": "logits"},
        "context_slices": 1,
        "weights_sha256": sha256_hex((folder / "weights.safetensors").read_bytes()),
    }
    (folder / "metadata.json").write_text(json.dumps(card))
    return load_model(folder, "cpu", reuse=False)


def test_builds_and_loads_through_its_card(tmp_path):
    model = tiny(seed=3)
    loaded = _through_card(tmp_path, model, ARGS)
    x = stack().numpy()
    probs = loaded.predict(x)
    assert probs.shape == (6, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_the_same_weights_read_finer_slices_when_the_card_says_so(tmp_path):
    """slice-classifier 1.1 is 1.0's layers at twice the input size: one set of weights fits
    either, the card's input_size decides, and the lesion map and the stage Grad-CAM
    explains get finer (input / 4 here, input / 8 for the bundled three stages)."""
    model = tiny(seed=4)
    loaded = _through_card(tmp_path, model, {**ARGS, "input_size": 64}).module
    assert loaded.input_size == 64
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    with torch.no_grad():
        _, fine = loaded.forward_with_map(stack(size=128))
        _, coarse = model.forward_with_map(stack(size=128))
    assert fine.shape == (6, 16, 16) and coarse.shape == (6, 8, 8)


def test_map_evidence_adds_the_maps_soft_maximum_to_the_lesion_logit():
    torch.manual_seed(0)
    with_map = SliceClassifier(
        **ARGS, map_evidence=True, z_offsets=[-1, 0, 1], windows=[[0, 1], [0.5, 0.8]]
    ).eval()
    plain = SliceClassifier(**ARGS, z_offsets=[-1, 0, 1], windows=[[0, 1], [0.5, 0.8]]).eval()
    plain.load_state_dict(with_map.state_dict())
    x = stack()
    with torch.no_grad():
        logits, maps = with_map.forward_with_map(x)
        base = plain(x)
    cells = maps.flatten(1)
    soft_max = (torch.logsumexp(4 * cells, dim=1) - np.log(cells.shape[1])) / 4
    torch.testing.assert_close(logits[:, 0], base[:, 0])
    torch.testing.assert_close(logits[:, 1], base[:, 1] + soft_max)
    assert maps.shape == (6, 8, 8)  # 32² input, two halving stages after a strided stem
    assert cells.amax(1).ge(soft_max).all() and cells.mean(1).le(soft_max).all()

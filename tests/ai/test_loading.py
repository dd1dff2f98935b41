"""Loading a model folder: predictions equal the network's softmax; models stay warm; and
every bad file — a pickle carrying code, truncated weights, a changed file, weights that do
not fit the card, a .pt2 that would make torch run code — is refused in one sentence that
names the file, without running anything from it."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from medview.ai.runtime.loading import load_model, release_models
from medview.core.errors import InvalidInputError
from tests.ai.tiny_models import (
    batch,
    card_dict,
    export_pt2,
    reference,
    rewrite_zip,
    tiny_unet,
    write_folder,
)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _empty_cache():
    release_models()
    yield
    release_models()


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


@pytest.fixture(scope="module")
def pt2(tmp_path_factory, unet):
    return export_pt2(unet, tmp_path_factory.mktemp("pt2") / "tiny.pt2")


class Evil:
    """Unpickling this would run a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["safetensors", "state_dict"])
def test_predictions_are_the_networks_softmax(tmp_path, unet, fmt):
    model = load_model(write_folder(tmp_path / "m", unet, fmt), "cpu")
    x = batch(3)
    probs = model.predict(x)
    assert probs.dtype == np.float32 and probs.shape == (3, 3, 32, 32)
    np.testing.assert_allclose(probs, reference(unet, x), atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.device == torch.device("cpu") and not model.module.training


def test_probabilities_card_gets_no_second_softmax(tmp_path, unet):
    args = {**card_dict()["architecture_args"], "outputs": "probabilities"}
    model = load_model(
        write_folder(tmp_path / "m", unet, card=card_dict(architecture_args=args)), "cpu"
    )
    x = batch(1)
    with torch.no_grad():
        raw = unet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(x), raw, atol=1e-5)


def test_classifier_gives_one_row_per_slice(tmp_path):
    from medview.ai.models.cards import card_from_dict
    from medview.ai.runtime.networks import build_network

    card = card_dict(
        name="cls",
        task="classification",
        context_slices=1,
        input_size=None,
        architecture="medview.SliceClassifier",
        labels=[{"value": 1, "name": "lesion"}],
        architecture_args={"features": [4, 8], "embed": 8, "hidden": 4, "input_size": 16},
    )
    net = build_network(card_from_dict(card, "card.json"))
    model = load_model(write_folder(tmp_path / "c", net, card=card), "cpu")
    probs = model.predict(batch(6, channels=1))
    assert probs.shape == (6, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_models_stay_warm_until_their_files_change(tmp_path, unet):
    folder = write_folder(tmp_path / "m", unet)
    first = load_model(folder, "cpu")
    assert load_model(folder, torch.device("cpu")) is first
    assert load_model(folder, "cpu", reuse=False) is not first
    assert first.to("cpu") is first and first.requested == torch.device("cpu")
    card = json.loads((folder / "metadata.json").read_text())
    card["description"] = "edited"
    (folder / "metadata.json").write_text(json.dumps(card, indent=1))
    assert load_model(folder, "cpu") is not first
    warm = load_model(folder, "cpu")
    release_models()
    assert load_model(folder, "cpu") is not warm


def test_a_batch_of_the_wrong_shape_is_refused(tmp_path, unet):
    model = load_model(write_folder(tmp_path / "m", unet), "cpu")
    with pytest.raises(InvalidInputError, match=r"tiny:1\.0: takes input \(N, 3, 32, 32\)"):
        model.predict(batch(1, channels=1))
    with pytest.raises(InvalidInputError, match="needs a"):
        model.predict(np.zeros((3, 32, 32), np.float32))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("as_zip", [True, False])
def test_a_pickle_carrying_code_is_refused_without_running(tmp_path, unet, as_zip):
    marker = tmp_path / "ran"
    evil = {**unet.state_dict(), "model.0.conv.bias": Evil(marker)}
    if as_zip:
        payload = _saved(evil)
    else:
        import pickle

        payload = pickle.dumps(evil)
    folder = write_folder(tmp_path / "m", fmt="state_dict", payload=payload)
    with pytest.raises(InvalidInputError) as err:
        load_model(folder, "cpu")
    assert str(err.value) == (
        f"{folder / 'weights.pt'}: contains code or objects that are not plain weights; refused"
    )
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["safetensors", "state_dict"])
def test_truncated_weights_are_refused(tmp_path, unet, fmt):
    folder = write_folder(tmp_path / "m", unet, fmt, with_sha=False)
    weights = next(folder.glob("weights.*"))
    weights.write_bytes(weights.read_bytes()[:300])
    with pytest.raises(InvalidInputError, match="is truncated or damaged") as err:
        load_model(folder, "cpu")
    assert str(err.value).startswith(str(weights))


def test_weights_changed_since_the_card_are_refused(tmp_path, unet):
    folder = write_folder(tmp_path / "m", unet)
    weights = folder / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(InvalidInputError, match="does not match the weights_sha256") as err:
        load_model(folder, "cpu")
    assert str(err.value).startswith(str(weights))


def test_a_card_that_does_not_match_its_weights_is_refused(tmp_path, unet):
    args = {**card_dict()["architecture_args"], "channels": [4, 16]}
    folder = write_folder(tmp_path / "m", unet, card=card_dict(architecture_args=args))
    with pytest.raises(InvalidInputError) as err:
        load_model(folder, "cpu")
    assert str(err.value) == (
        f"{folder / 'weights.safetensors'}: the card of tiny:1.0 does not match its weights: "
        f"'model.1.submodule.conv.weight' is (8, 4, 3, 3) in the weights but (16, 4, 3, 3) "
        f"in the network"
    )


def test_missing_and_extra_weights_are_named(tmp_path, unet):
    state = dict(unet.state_dict())
    state.pop("model.0.conv.bias")
    from safetensors.torch import save

    folder = write_folder(tmp_path / "a", payload=save(state))
    with pytest.raises(InvalidInputError, match=r"'model\.0\.conv\.bias' is missing from"):
        load_model(folder, "cpu")
    state = {**unet.state_dict(), "extra.weight": torch.zeros(1)}
    folder = write_folder(tmp_path / "b", payload=save(state))
    with pytest.raises(InvalidInputError, match=r"hold 'extra\.weight', which the network"):
        load_model(folder, "cpu")


@pytest.mark.parametrize(
    ("changes", "where", "words"),
    [
        ({"architecture": "os.system"}, "metadata.json", "names architecture 'os.system'"),
        ({"weights_file": "gone.safetensors"}, "gone.safetensors", "is missing"),
        (
            {"weights_format": "onnx", "architecture": "monai.UNet"},
            "metadata.json",
            "pairs architecture 'monai.UNet' with weights_format 'onnx'",
        ),
    ],
)
def test_bad_folders_are_refused(tmp_path, unet, changes, where, words):
    folder = write_folder(tmp_path / "m", unet)
    card = {**json.loads((folder / "metadata.json").read_text()), **changes}
    (folder / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(InvalidInputError, match=words) as err:
        load_model(folder, "cpu")
    assert str(err.value).startswith(str(folder / where))


def test_an_exported_program_loads_and_predicts(tmp_path, unet, pt2):
    folder = write_folder(tmp_path / "m", fmt="torch.export", payload=pt2.read_bytes())
    model = load_model(folder, "cpu")
    assert model.input_shape == (None, 3, 32, 32)
    np.testing.assert_allclose(model.predict(batch(3)), reference(unet, batch(3)), atol=1e-5)


def _sample_inputs_with_code(marker):
    return lambda rel, data: _saved(((Evil(marker),), {})) if "sample_inputs" in rel else data


def _program_edit(change):
    def edit(rel, data):
        if not rel.startswith("models/"):
            return data
        return json.dumps(change(json.loads(data))).encode()

    return edit


def _first_expr(program, text):
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr_str":
                    node[key] = text
                    return True
                if walk(value):
                    return True
        elif isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    walk(program)
    return program


def _first_target(program, text):
    program["graph_module"]["graph"]["nodes"][0]["target"] = text
    return program


def _weights_pickled(rel, data):
    if not rel.endswith("_weights_config.json"):
        return data
    config = json.loads(data)
    next(iter(config["config"].values()))["use_pickle"] = True
    return json.dumps(config).encode()


@pytest.mark.parametrize(
    ("attack", "words"),
    [
        ("sample_inputs", "contains code or objects that are not plain weights"),
        ("expr", "contains code or objects that are not plain weights"),
        ("guards", "contains code or objects that are not plain weights"),
        ("target", "calls 'torch.serialization.os.system', which MedView does not run"),
        ("from_file", "calls 'torch.ops.aten.from_file.default'"),
        ("pickled_weights", "contains code or objects that are not plain weights"),
    ],
)
def test_a_pt2_that_would_make_torch_run_code_is_refused(tmp_path, pt2, attack, words):
    marker = tmp_path / "ran"
    shell = f"__import__('os').system('touch {marker}')"
    edit = {
        "sample_inputs": _sample_inputs_with_code(marker),
        "expr": _program_edit(lambda p: _first_expr(p, shell)),
        "guards": _program_edit(lambda p: {**p, "guards_code": [shell]}),
        "target": _program_edit(lambda p: _first_target(p, "torch.serialization.os.system")),
        "from_file": _program_edit(lambda p: _first_target(p, "torch.ops.aten.from_file.default")),
        "pickled_weights": _weights_pickled,
    }[attack]
    bad = rewrite_zip(pt2, tmp_path / "bad.pt2", edit)
    folder = write_folder(tmp_path / "m", fmt="torch.export", payload=bad.read_bytes())
    with pytest.raises(InvalidInputError, match=words) as err:
        model = load_model(folder, "cpu")
        model.predict(batch(1))
    assert str(err.value).startswith(str(folder / "weights.pt2"))
    assert not marker.exists()


def test_a_truncated_pt2_is_refused(tmp_path, pt2):
    folder = write_folder(tmp_path / "m", fmt="torch.export", payload=pt2.read_bytes()[:5000])
    with pytest.raises(InvalidInputError, match=r"weights\.pt2: is truncated or damaged"):
        load_model(folder, "cpu")

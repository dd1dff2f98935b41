"""Importing the user's own model (.pt2 from torch.export, or ONNX): it predicts what the torch
module predicts, and a model that does not fit its card is refused in one sentence naming
the file, leaving nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medview.ai.models import registry
from medview.ai.runtime.loading import load_model, release_models
from medview.ai.runtime.user_models import import_model
from medview.core.errors import InvalidInputError, UnsupportedInputError
from tests.ai.tiny_models import batch, card_dict, export_onnx, export_pt2, reference, tiny_unet

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


@pytest.fixture(scope="module")
def files(tmp_path_factory, unet):
    folder = tmp_path_factory.mktemp("exports")
    return {
        "pt2": export_pt2(unet, folder / "tiny.pt2"),
        "onnx": export_onnx(unet, folder / "tiny.onnx"),
        "onnx_batch1": export_onnx(unet, folder / "batch1.onnx", dynamic_batch=False),
        "onnx_1ch": export_onnx(tiny_unet(in_channels=1), folder / "one_channel.onnx"),
    }


@pytest.fixture(autouse=True)
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "bundled")
    release_models()
    yield tmp_path / "data" / "models"
    release_models()


def user_card(**changes):
    card = card_dict("mine", "1", **changes)
    for key in ("architecture", "architecture_args"):
        card.pop(key)
    return card


@pytest.mark.parametrize("kind", ["pt2", "onnx", "onnx_batch1"])
def test_imported_models_predict_what_the_module_does(files, unet, data, kind):
    entry = import_model(files[kind], user_card())
    assert (entry.ref, entry.bundled, entry.active) == ("mine:1", False, True)
    suffix = files[kind].suffix
    assert sorted(p.name for p in entry.folder.iterdir()) == ["metadata.json", f"model{suffix}"]
    card = json.loads((entry.folder / "metadata.json").read_text())
    fmt = "torch.export" if kind == "pt2" else "onnx"
    assert card["architecture"] == card["weights_format"] == fmt
    assert len(card["weights_sha256"]) == 64 and card["created"]
    x = batch(3)
    probs = load_model(entry.folder, "cpu").predict(x)
    np.testing.assert_allclose(probs, reference(unet, x), atol=1e-4)
    assert [p.name for p in data.iterdir()] == ["mine"]  # no staging folder left


def test_card_from_a_json_file_and_name_version_given(files, tmp_path):
    path = tmp_path / "card.json"
    path.write_text(json.dumps(user_card()))
    entry = import_model(files["onnx"], path, name="other", version="2.1")
    assert entry.ref == "other:2.1" and registry.resolve("other").folder == entry.folder


def assert_refused(data, exc, file, problem):
    assert str(exc.value) == f"{file}: {problem}"
    assert not data.exists() or not any(data.iterdir()), list(data.iterdir())


@pytest.mark.parametrize(
    ("kind", "changes", "problem"),
    [
        (
            "onnx",
            {"context_slices": 1},
            "takes 3 input channels but its card's context_slices is 1; they must agree",
        ),
        (
            "pt2",
            {"context_slices": 1},
            "takes 3 input channels but its card's context_slices is 1; they must agree",
        ),
        (
            "onnx_1ch",
            {},
            "takes 1 input channels but its card's context_slices is 3; they must agree",
        ),
        (
            "onnx",
            {"labels": [{"value": 1, "name": "lesion"}]},
            "gives 3 output channels but its card's 1 label(s) need 2 (background first)",
        ),
        (
            "pt2",
            {"labels": [{"value": 1, "name": "lesion"}]},
            "gives 3 output channels but its card's 1 label(s) need 2 (background first)",
        ),
        (
            "onnx",
            {"input_size": None},
            "only takes 32 x 32 slices; set the card's input_size to [32, 32]",
        ),
        (
            "onnx",
            {"architecture_args": {"outputs": "probabilities"}},
            "gives outputs that are not probabilities over its classes; if it ends without a "
            "softmax, set architecture_args outputs to 'logits'",
        ),
    ],
)
def test_a_model_that_does_not_fit_its_card_is_refused(files, data, kind, changes, problem):
    with pytest.raises(InvalidInputError) as err:
        import_model(files[kind], {**user_card(), **changes})
    assert_refused(data, err, files[kind], problem)


def test_an_existing_version_is_never_overwritten(files, data):
    first = import_model(files["onnx"], user_card())
    before = (first.folder / "model.onnx").read_bytes()
    with pytest.raises(InvalidInputError) as err:
        import_model(files["pt2"], user_card(), version="1.0")
    assert str(err.value) == (
        f"{files['pt2']}: cannot be imported as mine:1.0: that version "
        f"exists, and versions are never overwritten; choose a new "
        f"version number"
    )
    assert (first.folder / "model.onnx").read_bytes() == before
    assert sorted(p.name for p in first.folder.iterdir()) == ["metadata.json", "model.onnx"]


def test_other_formats_and_damaged_files_are_refused(files, data, tmp_path):
    torchscript = tmp_path / "model.pt"
    torchscript.write_bytes(b"PK")
    with pytest.raises(UnsupportedInputError) as err:
        import_model(torchscript, user_card())
    assert_refused(
        data,
        err,
        torchscript,
        "is not a torch.export program (.pt2) or an ONNX "
        "file (.onnx); TorchScript and pickled models are "
        "not imported",
    )
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(files["onnx"].read_bytes()[:700])
    with pytest.raises(InvalidInputError) as err:
        import_model(broken, user_card())
    assert_refused(data, err, broken, "is truncated or damaged (not a complete ONNX model)")
    with pytest.raises(InvalidInputError) as err:
        import_model(tmp_path / "absent.onnx", user_card())
    assert_refused(data, err, tmp_path / "absent.onnx", "does not exist")
    bad_card = tmp_path / "card.json"
    bad_card.write_text("{")
    with pytest.raises(InvalidInputError) as err:
        import_model(files["onnx"], bad_card)
    assert str(err.value).startswith(f"{bad_card}: is not valid JSON")
    with pytest.raises(InvalidInputError) as err:
        import_model(files["onnx"], {**user_card(), "modality": 3})
    assert str(err.value) == "the model card: has 'modality' of the wrong type (int, str expected)"

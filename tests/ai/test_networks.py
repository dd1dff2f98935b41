"""Networks come only from the card's whitelisted architecture with the card's channels; the
device is chosen honestly; GPU out-of-memory is told apart from other failures."""

from __future__ import annotations

import contextlib
import sys
import warnings

import pytest
import torch

from medview.ai.models.cards import card_from_dict
from medview.ai.runtime import device as dev
from medview.ai.runtime.networks import build_network, n_classes, outputs_logits
from medview.commands.setting_words import sentence
from medview.core.errors import (
    InvalidInputError,
    ResourceLimitError,
    SettingError,
    UnsupportedInputError,
)
from tests.ai.tiny_models import card_dict

torch.set_num_threads(1)


def card(**changes):
    return card_from_dict(card_dict(**changes), "card.json")


def test_unet_takes_its_channels_from_the_card():
    c = card()
    net = build_network(c)
    assert n_classes(c) == 3 and outputs_logits(c)
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_basic_unet_and_the_outputs_key_which_no_constructor_sees():
    c = card(
        architecture="monai.BasicUNet",
        architecture_args={
            "spatial_dims": 2,
            "features": [4, 4, 8, 8, 16, 4],
            "outputs": "probabilities",
        },
    )
    assert not outputs_logits(c)
    with torch.no_grad():
        assert build_network(c)(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_slice_classifier_is_built_from_its_module():
    c = card(
        name="cls",
        task="classification",
        context_slices=1,
        architecture="medview.SliceClassifier",
        labels=[{"value": 1, "name": "lesion"}],
        architecture_args={"features": [4, 8], "embed": 8, "hidden": 4, "input_size": 16},
    )
    with torch.no_grad():
        assert build_network(c).eval()(torch.zeros(5, 1, 32, 32)).shape == (5, 2)


def test_missing_slice_classifier_module_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "medview.ai.runtime.slice_classifier", None)
    c = card(task="classification", context_slices=1, architecture="medview.SliceClassifier")
    with pytest.raises(UnsupportedInputError, match=r"medview\.ai\.runtime\.slice_classifier"):
        build_network(c)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (
            {"architecture_args": {**card_dict()["architecture_args"], "outputs": "scores"}},
            "outputs 'scores'",
        ),
        (
            {"architecture_args": {**card_dict()["architecture_args"], "in_channels": 1}},
            "in_channels 1 but its context_slices make 3",
        ),
        (
            {"architecture_args": {**card_dict()["architecture_args"], "out_channels": 5}},
            "out_channels 5",
        ),
        (
            {
                "architecture_args": {
                    "spatial_dims": 2,
                    "channels": [4, 8],
                    "strides": [2],
                    "bogus": 1,
                }
            },
            "does not accept",
        ),
        ({"task": "classification"}, "segmentation network"),
        ({"architecture": "onnx"}, "loaded from its file"),
    ],
)
def test_cards_that_cannot_be_built_are_refused(changes, words):
    with pytest.raises((InvalidInputError, UnsupportedInputError), match=words) as err:
        build_network(card(**changes))
    assert "tiny:1.0" in str(err.value)


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(dev.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.choose_device() == torch.device("cpu")
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    assert dev.choose_device("auto") == torch.device("mps")
    monkeypatch.setattr(dev.torch.cuda, "is_available", lambda: True)
    assert dev.choose_device() == torch.device("cuda")
    assert dev.choose_device("CPU") == torch.device("cpu")


def test_an_unavailable_device_is_refused_in_one_sentence(monkeypatch):
    monkeypatch.setattr(dev.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    with pytest.raises(SettingError) as err:
        dev.choose_device("cuda")
    assert (err.value.setting, err.value.value, err.value.kind) == ("device", "cuda", "unavailable")
    assert sentence(err.value) == (
        "CUDA was requested but no CUDA device is available; use --device cpu"
    )
    with pytest.raises(SettingError, match="Apple MPS was requested"):
        dev.choose_device("mps")
    with pytest.raises(UnsupportedInputError, match="unknown device 'tpu'"):
        dev.choose_device("tpu")


def test_autocast_only_on_cuda(monkeypatch):
    assert isinstance(dev.autocast_context("cpu"), contextlib.nullcontext)
    assert isinstance(dev.autocast_context(torch.device("mps")), contextlib.nullcontext)
    for bf16, dtype in ((True, torch.bfloat16), (False, torch.float16)):
        monkeypatch.setattr(dev.torch.cuda, "is_bf16_supported", lambda b=bf16: b)
        with warnings.catch_warnings():  # a CPU-only torch warns that it disables itself
            warnings.simplefilter("ignore")
            ctx = dev.autocast_context("cuda")
        assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == dtype


def test_one_thread_while_the_ui_is_live():
    before = torch.get_num_threads()
    try:
        dev.set_threads_for_ui(True)
        assert torch.get_num_threads() == 1
        assert dev.set_threads_for_ui(False) == 1
        assert torch.get_num_threads() == dev.cpu_cores()
    finally:
        torch.set_num_threads(before)


def test_out_of_memory_is_told_apart():
    assert dev.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried"))
    assert dev.is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert dev.is_out_of_memory(
        Exception(
            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : "
            "Failed to allocate memory for requested buffer"
        )
    )
    assert not dev.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not dev.is_out_of_memory(ResourceLimitError("x.dcm", "would run out of memory"))

"""ai.inference.segment: card-driven preprocessing, compact outputs, progress and cancel per
batch, the out-of-memory fallback, TTA, reuse, and a real (tiny) model on a demo study."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
import torch

from medview.ai.runtime import inference
from medview.ai.runtime.inference import kept_result, segment
from medview.core.errors import InvalidInputError, ResourceLimitError
from medview.core.jobs import CancelToken, JobCancelled
from tests.ai import seg_models
from tests.ai.seg_models import FakeModel, card, expected, volume

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh(kept_data_dir):
    """Every test: its own data folder, no kept result from another test."""


def test_preprocessing_follows_the_card_and_outputs_are_uint8():
    vol = volume((5, 16, 16))
    result = segment(vol, FakeModel(card()))
    assert result.codes.dtype == np.uint8 and result.codes.shape == (5, 16, 16)
    labels = result.label_map()
    assert labels.dtype == np.uint8 and labels.shape == (5, 16, 16)
    assert_close(result, vol, 1)
    # 2.5D: label 2 is 0.2 x the mean of the two neighbours, edge slices replicated
    assert_close(result, vol, 2)
    assert result.probability(1, 2).shape == (16, 16)  # one plane, decoded alone
    np.testing.assert_array_equal(result.probability(2, np.s_[:, 3]), result.probability(2)[:, 3])
    np.testing.assert_array_equal(
        result.max_probability(), np.maximum(result.probability(1), result.probability(2))
    )
    assert result.shape == vol.shape
    assert result.uncertainty is None and result.warnings == []
    assert set(result.timings) == {"preprocess", "predict", "postprocess"}


def assert_close(result, vol, label, where=np.s_[...], tol=2.0):
    """The decoded probability is FakeModel's within the one-byte code's steps (255/127
    apart for two labels), where that label wins clearly; 0 where the other label wins."""
    want, wins = expected(vol, label)
    got = result.probability(label).astype(float)
    assert np.abs(got - want)[where][wins[where]].max() <= tol
    _, loses = expected(vol, 3 - label)
    assert (got[where][loses[where]] == 0).all()


def test_label_map_holds_the_cards_label_values():
    labels = [{"value": 3, "name": "a"}, {"value": 7, "name": "b"}]
    vol = volume((3, 8, 8))
    vol.array[:] = 400  # p1 = 0.8 everywhere but where changed below
    vol.array[1, :4] = -1000  # p1 = 0, p2 from bright neighbours = 0.2: background wins
    result = segment(vol, FakeModel(card(labels=labels)))
    labels = result.label_map()
    assert set(np.unique(labels)) == {0, 3}
    assert (labels[1, :4] == 0).all() and (labels[0] == 3).all()


def test_progress_per_batch_and_cancel_between_batches():
    vol = volume((10, 8, 8))
    seen = []
    segment(vol, FakeModel(card()), batch_size=4, progress=seen.append)
    assert [round(p.fraction, 2) for p in seen] == [0.4, 0.8, 1.0]

    token = CancelToken()

    def cancel_on_second(model, x):
        if len(model.shapes) == 1:
            token.cancel()

    model = FakeModel(card(), on_call=cancel_on_second)
    with pytest.raises(JobCancelled):
        segment(vol, model, batch_size=2, cancel=token, reuse=False)
    assert len(model.shapes) == 2  # the batch running when cancel came, then nothing


def oom(message="CUDA out of memory. Tried to allocate 2.00 GiB"):
    return torch.OutOfMemoryError(message)


def test_out_of_memory_halves_the_batch_then_continues():
    vol = volume((9, 8, 8))
    plain = segment(vol, FakeModel(card()), reuse=False)

    def fail_big(model, x):
        if len(x) > 1:
            raise oom()

    model = FakeModel(card(), device="cuda", on_call=fail_big)
    result = segment(vol, model, batch_size=4, reuse=False)
    np.testing.assert_array_equal(result.codes, plain.codes)
    assert result.batch_size == 1 and result.device == "cuda"
    assert any("reduced to 1" in w for w in result.warnings)
    assert {s[0] for s in model.shapes} == {1}


def test_out_of_memory_at_one_slice_moves_to_the_cpu():
    vol = volume((5, 8, 8))
    plain = segment(vol, FakeModel(card()), reuse=False)

    def fail_on_gpu(model, x):
        if model.device.type == "cuda":
            raise oom()

    result = segment(
        vol, FakeModel(card(), device="cuda", on_call=fail_on_gpu), batch_size=2, reuse=False
    )
    np.testing.assert_array_equal(result.codes, plain.codes)
    assert result.device == "cpu"
    assert [w.split(";")[0] for w in result.warnings] == [
        "The CUDA ran out of memory",
        "The CUDA ran out of memory even for one slice",
    ]


def test_out_of_memory_on_the_cpu_is_one_clear_sentence_and_other_errors_pass():
    def fail(model, x):
        raise oom("DefaultCPUAllocator: not enough memory: you tried to allocate; out of memory")

    with pytest.raises(ResourceLimitError, match="Not enough memory"):
        segment(volume((2, 8, 8)), FakeModel(card(), on_call=fail), batch_size=1)

    def bug(model, x):
        raise ValueError("a bug, not memory")

    with pytest.raises(ValueError, match="a bug"):
        segment(volume((2, 8, 8)), FakeModel(card(), on_call=bug))


class Asymmetric(FakeModel):
    """Adds a ramp across columns to label 1: flipping left-right changes its answer."""

    def predict(self, x):
        y = super().predict(x)
        ramp = np.linspace(0, 0.1, x.shape[-1], dtype=np.float32)
        y[:, 1] += ramp
        y[:, 0] -= ramp
        return y


def test_tta_averages_flips_and_keeps_an_uncertainty_map():
    vol = volume((4, 16, 16))
    pointwise = FakeModel(card())
    with_tta = segment(vol, pointwise, tta=True, batch_size=4)
    plain = segment(vol, FakeModel(card()))
    assert len(pointwise.shapes) == 3  # one batch, three flips
    assert np.abs(with_tta.codes.astype(int) - plain.codes).max() <= 1
    assert with_tta.uncertainty.dtype == np.uint8 and with_tta.uncertainty.max() <= 1

    spread = segment(vol, Asymmetric(card()), tta=True, reuse=False)
    # members: ramp, flipped ramp (lr), ramp (ud) -> mean ramp is symmetric-ish, std > 0
    assert spread.uncertainty[:, :, 0].mean() > 10 and spread.tta
    mean_ramp = (2 * 0.1 * np.arange(16) / 15 + 0.1 * (15 - np.arange(16)) / 15) / 3
    got = spread.probability(1).astype(float) - plain.probability(1)
    _, wins = expected(vol, 1)
    shift = np.nanmean(np.where(wins, got, np.nan), axis=(0, 1))
    assert np.abs(shift - mean_ramp * 255).max() < 2.5


def test_a_second_run_reuses_the_kept_result_until_the_volume_changes():
    vol = volume((4, 8, 8))
    first = segment(vol, FakeModel(card()), series_key="1.2.3")
    model = FakeModel(card())
    assert segment(vol, model, series_key="1.2.3") is first and model.shapes == []
    assert kept_result(vol, card(), False, "1.2.3") is first
    assert kept_result(vol, card(), True, "1.2.3") is None  # TTA is another result
    assert kept_result(vol, card(version="1.1"), False, "1.2.3") is None
    assert not first.codes.flags.writeable  # shared: read-only

    changed = volume((4, 8, 8), seed=5)  # same key, other content (series reloaded)
    assert kept_result(changed, card(), False, "1.2.3") is None
    # without a series key only the very same Volume object is reused
    keyless = segment(vol, FakeModel(card()))
    twin = volume((4, 8, 8))
    assert kept_result(vol, card()) is keyless and kept_result(twin, card()) is None
    for k in range(inference.MAX_KEPT + 1):
        segment(volume((2, 4, 4), seed=k), FakeModel(card()), series_key=f"s{k}")
    assert kept_result(vol, card(), False, "1.2.3") is None  # oldest went


def test_resampling_only_when_spacing_differs_by_more_than_a_quarter():
    vol = volume((2, 32, 32), spacing=(2.0, 0.8, 0.8))
    near = FakeModel(card(expected_spacing_mm=[0.95, 0.95]))
    segment(vol, near)
    assert near.shapes[0][2:] == (32, 32)
    far = FakeModel(card(expected_spacing_mm=[1.6, 1.6]))
    result = segment(vol, far, reuse=False)
    assert far.shapes[0][2:] == (16, 16) and result.codes.shape[1:] == (32, 32)
    # bilinear down and up keeps a smooth image's probabilities close
    smooth = volume((2, 32, 32))
    smooth.array[:] = np.linspace(-1000, 400, 32).astype(np.int16)[None, None, :]
    back = segment(smooth, FakeModel(card(expected_spacing_mm=[1.6, 1.6])), reuse=False)
    assert_close(back, smooth, 1, np.s_[:, :, 2:-2], tol=8)


def test_fixed_input_size_is_padded_and_cropped_back():
    vol = volume((2, 10, 20))
    model = FakeModel(card(input_size=[16, 12]))
    result = segment(vol, model)
    assert model.shapes[0][2:] == (16, 12)
    assert_close(result, vol, 1, np.s_[:, :, 4:16])
    assert not result.codes[:, :, :4].any() and not result.codes[:, :, 16:].any()  # cut away


def test_plane_is_padded_for_the_networks_downsampling():
    vol = volume((2, 30, 21))
    model = FakeModel(
        card(architecture_args={"spatial_dims": 2, "channels": [4, 8, 16], "strides": [2, 2]})
    )
    result = segment(vol, model)
    assert model.shapes[0][2:] == (32, 24)
    assert_close(result, vol, 1)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"modality": "MR"}, "is a CT series; model fake-seg:1.0 is made for MR"),
        ({"task": "classification"}, "classification model"),
    ],
)
def test_models_that_do_not_fit_are_refused(change, words):
    with pytest.raises(InvalidInputError, match=words):
        segment(volume((2, 8, 8)), FakeModel(card(**change)))


def test_colour_images_and_wrong_output_channels_are_refused():
    from medview.core.volume import Volume, VolumeMetadata

    colour = Volume(np.zeros((1, 8, 8, 3), np.uint8), np.eye(4), VolumeMetadata(modality="CT"))
    with pytest.raises(InvalidInputError, match="colour"):
        segment(colour, FakeModel(card()))
    one_label = card(labels=[{"value": 1, "name": "x"}])
    with pytest.raises(InvalidInputError, match="does not match the weights"):
        segment(volume((2, 8, 8)), FakeModel(one_label))


def test_unknown_modality_runs_with_a_warning():
    vol = volume((2, 8, 8), modality="")
    result = segment(vol, FakeModel(card()))
    assert result.warnings and "modality" in result.warnings[0]


def _peak_bytes(vol) -> int:
    tracemalloc.start()
    try:
        segment(vol, FakeModel(card()), batch_size=4, reuse=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_only_by_the_uint8_maps_no_float_volume_copy():
    small, big = volume((20, 128, 128)), volume((60, 128, 128))
    grown = _peak_bytes(big) - _peak_bytes(small)
    kept = big.array.size - small.array.size  # one byte per voxel
    # per-batch buffers do not grow with the series; a float32 copy would add 4 bytes/voxel
    assert grown < 1.2 * kept


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume

    study = generate_demo_study(tmp_path_factory.mktemp("demo"), seed=3, slices=24)
    return load_volume([study.series_dir])


def test_tiny_real_model_on_a_demo_study(tmp_path, demo):
    from medview.ai.runtime.loading import load_model

    vol, series = demo
    folder = seg_models.write_bright_model(tmp_path / "bright")
    model = load_model(folder, torch.device("cpu"), reuse=False)
    t0 = time.perf_counter()
    result = segment(vol, model, series_key=series.key)
    assert time.perf_counter() - t0 < 10
    assert result.device == "cpu" and result.codes.shape == vol.shape
    labels = result.label_map(0.5)
    assert 0 < np.count_nonzero(labels == 1) < vol.array.size // 10
    # where the map says 1, label 1 reaches 0.5 and beats label 2
    p1 = result.probability(1).astype(int)
    on = labels == 1
    assert (p1[on] >= result.probability(2)[on]).all() and (p1[on] >= 128).all()
    assert not (labels[p1 >= 128] == 0).any()
    t0 = time.perf_counter()
    assert segment(vol, model, series_key=series.key) is result
    assert time.perf_counter() - t0 < 0.1

"""A fine-tune's card numbers are those of what the reader is shown: with a card's
postprocess (size rules, false-positive classifier) train_metrics.evaluate scores the
findings findings_from lists, and the same segmentation without the classifier beside them;
a card without one keeps the plain label-map rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from medview.ai.findings.postprocess import findings_from
from medview.ai.findings.scoring import MIN_VOXELS
from medview.ai.models.cards import load_card
from medview.ai.runtime.inference import clear_kept, segment
from medview.ai.runtime.loading import load_model
from medview.ai.training import metrics as tm
from medview.ai.training.data import PreparedStudy
from medview.core.volume import Volume
from tests.ai.test_fp_reduction import MIN_VOXELS as FP_MIN_VOXELS
from tests.ai.test_fp_reduction import write_fp_model

SPACING = (2.0, 0.8, 0.8)


@pytest.fixture(autouse=True)
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)
    clear_kept()
    yield
    clear_kept()


def study(tmp_path: Path) -> PreparedStudy:
    """A labelled block the bright model finds, and a small bright speck it also finds
    (about 40 voxels: above the plain MIN_VOXELS, below the size classifier's minimum)."""
    image = np.full((12, 48, 48), -1000, np.int16)
    labels = np.zeros(image.shape, np.uint8)
    image[3:9, 10:20, 10:20] = 400
    labels[3:9, 10:20, 10:20] = 1
    image[5:7, 32:35, 32:35] = 400
    return PreparedStudy("k", "speck", image, labels, SPACING, {1: 600, 2: 0}, tmp_path)


def test_postprocess_drops_the_speck_as_findings_from_does(tmp_path: Path):
    card = load_card(write_fp_model(tmp_path / "m"))
    module = load_model(tmp_path / "m", "cpu", reuse=False).module.train()
    st = study(tmp_path)
    plain = dataclasses.replace(card, postprocess=None)

    before = tm.evaluate(module, plain, [st], "cpu")
    after = tm.evaluate(module, card, [st], "cpu")
    assert module.training  # the mode it came in
    assert before["false_positives_per_study"] == 1.0  # the speck
    assert after["false_positives_per_study"] == 0.0
    assert before["sensitivity_ge_6mm"] == after["sensitivity_ge_6mm"] == 1.0
    assert after["min_component_voxels"] == 5 and after["fp_classifier"] == "fp.json"
    # the same segmentation scored without the classifier: the speck passes the size rules
    bare = after["without_fp_classifier"]
    assert bare["false_positives_per_study"] == 1.0 and bare["sensitivity_ge_6mm"] == 1.0
    assert bare["dice_mean"] < after["dice_mean"] and "without_fp_classifier" not in before

    # the app's own path lists exactly the regions evaluate scored
    volume = Volume(st.image, np.diag([*SPACING, 1.0]))
    result = segment(volume, load_model(tmp_path / "m", "cpu", reuse=False), reuse=False)
    found = findings_from(result.codes, volume, card, 0.5)
    every = findings_from(result.codes, volume, plain, 0.5)
    assert len(every) == 2 and len(found) == 1
    assert min(f.voxel_count for f in every) < FP_MIN_VOXELS
    listed = tm.listed_map(module, card, st, "cpu")
    assert np.count_nonzero(listed) == sum(f.voxel_count for f in found)
    off_truth = [
        f
        for f in found
        if not st.labels[tuple(slice(a, b + 1) for a, b in zip(*f.bbox_index, strict=True))].any()
    ]
    assert after["false_positives_per_study"] == len(off_truth)


def test_a_card_without_postprocess_gives_the_plain_numbers(tmp_path: Path):
    card = dataclasses.replace(load_card(write_fp_model(tmp_path / "m")), postprocess=None)
    module = load_model(tmp_path / "m", "cpu", reuse=False).module
    st = study(tmp_path)
    pred = tm.predict(module, card, st, None, "cpu")
    old = tm.summarise([tm.score(pred, st.labels, SPACING, [1, 2])], card)
    assert tm.evaluate(module, card, [st], "cpu") == old
    assert old["min_component_voxels"] == MIN_VOXELS and "fp_classifier" not in old


def test_parent_numbers_are_kept_until_the_studies_or_model_change(tmp_path: Path, monkeypatch):
    card = load_card(write_fp_model(tmp_path / "m"))
    card = dataclasses.replace(card, weights_sha256="ab" * 32)
    module = load_model(tmp_path / "m", "cpu", reuse=False).module
    st = study(tmp_path / "cache" / "k")
    st.folder.mkdir(parents=True)
    (st.folder / "meta.json").write_text('{"source": 1}')
    first = tm.evaluate_kept(module, card, [st], "cpu")
    assert first == tm.evaluate(module, card, [st], "cpu")
    calls = []
    real = tm.evaluate
    monkeypatch.setattr(tm, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert tm.evaluate_kept(module, card, [st], "cpu") == first and not calls
    (st.folder / "meta.json").write_text('{"source": 2}')  # relabelled
    tm.evaluate_kept(module, card, [st], "cpu")
    other = dataclasses.replace(card, weights_sha256="cd" * 32)
    tm.evaluate_kept(module, other, [st], "cpu")
    tm.evaluate_kept(module, dataclasses.replace(card, weights_sha256=""), [st], "cpu")
    assert len(calls) == 3

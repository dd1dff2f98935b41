"""One segmentation of each of the reader's studies by the parent serves both the mining of
its mistakes and the cross-validation's scores of it (training.parent_pass): what it keeps
is what each would have found on its own, and neither segments the study again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medview.ai.models.cards import load_card
from medview.ai.runtime.loading import load_model
from medview.ai.training import metrics
from medview.ai.training.data import META_FILE
from medview.ai.training.parent_pass import parent_pass
from medview.ai.training.tasks import mined_mistakes, mined_path
from tests.ai.test_fp_reduction import write_fp_model
from tests.ai.test_train_metrics_postprocess import setup, study  # noqa: F401 (autouse: a data folder, 1 thread)


def test_one_pass_keeps_what_mining_and_scoring_find_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = load_card(write_fp_model(tmp_path / "m"))
    module = load_model(tmp_path / "m", "cpu", reuse=False).module
    folder = tmp_path / "cache" / "speck"
    folder.mkdir(parents=True)
    (folder / META_FILE).write_text('{"source": "speck"}')
    st = study(folder)
    mined = metrics.mistakes(module, card, st, "cpu")  # the predict path mining used alone
    scored = metrics.study_scores(module, card, [st], "cpu")[0][0]
    assert len(mined) and scored["false_positives"] == {1: 0, 2: 0}  # the speck: mined, dropped

    seen: list[tuple[int, int]] = []
    parent_pass(module, card, [st], "cpu", lambda i, n: seen.append((i, n)))
    assert seen == [(1, 1)]

    def no_second_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("the study was segmented again")

    monkeypatch.setattr(metrics, "_segmented", no_second_pass)
    monkeypatch.setattr(metrics, "predict", no_second_pass)
    assert np.array_equal(mined_mistakes(module, card, st, "cpu"), mined)
    assert metrics.scores_kept(module, card, [st], "cpu") == [json.loads(json.dumps(scored))]
    parent_pass(module, card, [st], "cpu", lambda i, n: seen.append((i, n)))  # all kept
    assert seen == [(1, 1)]


def test_a_study_without_its_cache_file_is_still_mined(tmp_path: Path) -> None:
    """No cache file, no kept scores (scores_kept's rule): the mistakes are kept all the same."""
    card = load_card(write_fp_model(tmp_path / "m"))
    module = load_model(tmp_path / "m", "cpu", reuse=False).module
    st = study(tmp_path / "bare")
    (tmp_path / "bare").mkdir()
    assert metrics.kept_scores_path(card, st) is None
    parent_pass(module, card, [st], "cpu")
    assert np.array_equal(
        mined_mistakes(module, card, st, "cpu"), metrics.mistakes(module, card, st, "cpu")
    )


def test_a_lower_threshold_mines_where_the_parent_is_unsure(tmp_path: Path) -> None:
    """At 0.05 every voxel the parent gives any real chance of a label is a candidate: the
    wider map holds every 0.5 mistake and more, its mistakes are kept apart from the 0.5
    ones, and both paths find the same."""
    card = load_card(write_fp_model(tmp_path / "m"))
    module = load_model(tmp_path / "m", "cpu", reuse=False).module
    st = study(tmp_path / "s")
    (tmp_path / "s").mkdir()
    sure = mined_mistakes(module, card, st, "cpu")
    unsure = mined_mistakes(module, card, st, "cpu", None, 0.05)
    wide = metrics.predict(module, card, st, None, "cpu", threshold=0.05)
    assert wide[tuple(sure.T)].all() and wide[tuple(unsure.T)].all()
    assert np.count_nonzero(wide) > np.count_nonzero(metrics.predict(module, card, st, None, "cpu"))
    assert mined_path(card, st, 0.05) != mined_path(card, st)
    fresh = study(tmp_path / "t")
    (tmp_path / "t").mkdir()
    parent_pass(module, card, [fresh], "cpu", threshold=0.05)
    assert np.array_equal(np.load(mined_path(card, fresh, 0.05)), unsure)

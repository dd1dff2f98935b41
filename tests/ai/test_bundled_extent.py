"""Bundled lesion-seg's outline extent (ai.extent), 1.1's and 1.2's: chosen on the
development seeds, and on a study it never saw the grown outlines fit the lesions better
than the mask at the threshold, without finding or losing anything."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from medview.ai.models.cards import load_card
from medview.ai.models.registry import bundled_models_dir

SEG12_DIR = bundled_models_dir() / "lesion-seg" / "1.2"
SEG11_DIR = bundled_models_dir() / "lesion-seg" / "1.1"
SEED, SLICES = 9002, 40  # never trained or tuned on


@pytest.mark.parametrize("folder", [SEG11_DIR, SEG12_DIR], ids=["seg11", "seg12"])
def test_the_card_names_an_extent_chosen_on_the_development_seeds(folder):
    card = load_card(folder)
    post = card.postprocess
    assert 0.0 < post.extent_threshold < card.validation["threshold"]
    assert 0.0 < post.extent_max_mm <= 10.0
    chosen = re.search(
        r"probability at least ([0-9.]+), at most ([0-9.]+) mm out .*? "
        r"chosen on the same development seeds",
        card.training_data,
    )
    assert chosen and float(chosen[1]) == post.extent_threshold
    assert float(chosen[2]) == post.extent_max_mm
    assert str(post.extent_threshold) in card.description


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Per-lesion scores of the active version's findings on an unseen slab, with and
    without the extent, and the two label maps."""
    from medview.ai.bundled.data import cache_study
    from medview.ai.bundled.evaluation import score_study, segment_cached
    from medview.ai.findings.postprocess import findings_from
    from medview.ai.runtime.loading import load_model

    mp = pytest.MonkeyPatch()
    mp.setenv("MEDVIEW_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    try:
        model = load_model(SEG12_DIR, "cpu", reuse=False)
        st = cache_study(tmp_path_factory.mktemp("studies"), SEED, slices=SLICES)
        result = segment_cached(model, st)
        card = model.card
        plain = dataclasses.replace(
            card, postprocess=dataclasses.replace(card.postprocess, extent_threshold=0.0)
        )
        out = {}
        for name, c in (("plain", plain), ("grown", card)):
            mask = np.zeros(result.codes.shape, np.uint8)
            found = findings_from(
                result.codes, st.volume(), c, 0.5, coarse_max=result.coarse_max, mask_out=mask
            )
            out[name] = (score_study(mask, st, min_voxels=1), mask, found)
        yield out
    finally:
        mp.undo()


def test_grown_outlines_fit_the_lesions_better_and_find_the_same(scored):
    (plain, plain_mask, plain_found), (grown, grown_mask, grown_found) = (
        scored["plain"],
        scored["grown"],
    )
    assert len(plain_found) == len(grown_found) >= 3
    assert [f.peak_probability for f in plain_found] == [f.peak_probability for f in grown_found]
    assert ((plain_mask > 0) <= (grown_mask == plain_mask)).all()  # only ever added to
    assert plain["false_positives"] == grown["false_positives"]
    pairs = [
        (a, b) for a, b in zip(plain["lesions"], grown["lesions"], strict=True) if a["detected"]
    ]
    assert pairs and all(b["detected"] for _, b in pairs)
    assert np.mean([b["dice"] for _, b in pairs]) > np.mean([a["dice"] for a, _ in pairs])

"""Putting held-out numbers on a bundled card: the old numbers move under `development`
with a note and their seeds, speeds (typed or measured) never reach the card, a second run keeps
the first development block, and only the card's validation changes on disk."""

import json
import shutil

import pytest

from medview.ai.bundled.held_out import (
    DEVELOPMENT_NOTE,
    held_out_validation,
    rewrite_validation,
)
from medview.ai.models.card_numbers import DEVELOPMENT, development_title, seed_range
from medview.ai.models.cards import CARD_FILE, load_card
from medview.ai.models.registry import bundled_models_dir

OLD = {
    "studies": 10,
    "sensitivity_ge_6mm": 0.9444,
    "false_positives_per_study": 0.7,
    "held_out_seeds": list(range(1001, 1011)),
    "threshold": 0.5,
    "min_component_voxels": 20,
    "seconds_per_study": 10.8,
    "ms_per_512_slice_2_threads": 33.8,
    "speed_measured_on": "lesion-seg 1.1",
}
MEASURED = {
    "model": "lesion-seg:1.2",
    "studies": 3,
    "sensitivity_ge_6mm": 0.9,
    "false_positives_per_study": 1.0,
    "held_out_seeds": [3003, 3001, 3002],
    "missed_ge_6mm": [{"seed": 3002, "id": 4}, {"seed": 3001, "id": 7}],
    "threshold": 0.5,
    "min_component_voxels": 20,
    "seconds_per_study": 99.0,
    "ms_per_512_slice_2_threads": 250.0,
    "wall_s": 400.0,
    "goals_met": {},
}


def test_old_numbers_become_labelled_development_numbers():
    new = held_out_validation(OLD, MEASURED)
    assert new["held_out_seeds"] == [3001, 3002, 3003]
    assert [m["seed"] for m in new["missed_ge_6mm"]] == [3001, 3002]
    assert new["sensitivity_ge_6mm"] == 0.9 and "3001-3003" in new["measured"]
    # speeds and the eval script's wrapping never reach the card
    for key in (
        "seconds_per_study",
        "wall_s",
        "goals_met",
        "model",
        "speed_measured_on",
        "ms_per_512_slice_2_threads",
    ):
        assert key not in new and key not in new[DEVELOPMENT]
    dev = new[DEVELOPMENT]
    assert dev["note"] == DEVELOPMENT_NOTE.format(seeds="1001-1010")
    assert dev["seeds"] == OLD["held_out_seeds"] and "held_out_seeds" not in dev
    assert dev["sensitivity_ge_6mm"] == 0.9444
    assert development_title(new) == "Development numbers (not held out; demo seeds 1001-1010)"
    # measured again later: the development block stays the first one
    again = held_out_validation(new, {**MEASURED, "sensitivity_ge_6mm": 0.8})
    assert again[DEVELOPMENT] == dev and again["sensitivity_ge_6mm"] == 0.8


@pytest.mark.parametrize(
    ("seeds", "text"),
    [([3001, 3002, 3003], "3001-3003"), ([1, 5], "1, 5"), (None, ""), (["x"], "")],
)
def test_seed_range(seeds, text):
    assert seed_range(seeds) == text


def test_rewriting_a_card_changes_only_its_validation(tmp_path):
    folder = tmp_path / "lesion-seg" / "1.2"
    shutil.copytree(bundled_models_dir() / "lesion-seg" / "1.2", folder)
    before = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    new = held_out_validation(before["validation"], MEASURED)
    rewrite_validation(folder, new)
    after = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    assert after["validation"] == new
    assert {k: v for k, v in after.items() if k != "validation"} == {
        k: v for k, v in before.items() if k != "validation"
    }
    assert load_card(folder).validation["held_out_seeds"] == [3001, 3002, 3003]

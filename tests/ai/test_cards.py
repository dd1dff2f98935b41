import json

import pytest

from medview.ai.models.cards import DISCLAIMER, card_from_dict, load_card
from medview.core.errors import InvalidInputError

GOOD = {
    "name": "lesion-seg",
    "version": "1.0",
    "task": "segmentation",
    "modality": "CT",
    "labels": [{"value": 1, "name": "lung nodule"}, {"value": 2, "name": "liver lesion"}],
    "intensity": {"low": -1000, "high": 400},
    "architecture": "monai.UNet",
    "architecture_args": {"spatial_dims": 2},
    "context_slices": 3,
}


def test_good_card_round_trips(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps(GOOD))
    card = load_card(tmp_path)
    assert card.ref == "lesion-seg:1.0" and card.in_channels == 3
    assert card.label_name(2) == "liver lesion"
    again = card_from_dict(json.loads(card.to_json()), "x")
    assert again == card
    assert "not a diagnosis" in DISCLAIMER


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"architecture": "os.system"}, "architecture"),
        ({"task": "detection"}, "task"),
        ({"weights_file": "../../etc/passwd"}, "outside"),
        ({"version": "latest"}, "version"),
        ({"name": "../evil"}, "name"),
        ({"context_slices": 2}, "odd"),
        ({"intensity": {"low": 5, "high": 1}}, "high"),
        ({"labels": []}, "labels"),
    ],
)
def test_bad_cards_are_refused_with_a_reason(change, words):
    with pytest.raises(InvalidInputError, match=words):
        card_from_dict({**GOOD, **change}, "card.json")


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(InvalidInputError, match="missing"):
        load_card(tmp_path)
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        load_card(tmp_path)

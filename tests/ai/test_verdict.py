"""The verdict next to Activate (issue 15): better only when the Dice change's interval lies
above 0 and false positives did not rise; the sentence names the parent, the number of
studies and both changes with their intervals."""

from __future__ import annotations

from medview.ai.models.verdict import BETTER, UNCLEAR, WORSE, judge, verdict


def _card(dice: tuple[float, float | None], fp: tuple[float, float | None], n: int = 8) -> dict:
    change = {
        "dice": {"mean": dice[0], "half_width": dice[1], "n": n},
        "false_positives_per_study": {"mean": fp[0], "half_width": fp[1], "n": n},
    }
    return {
        "dice_mean": 0.7,
        "fine_tune": {
            "parent": "lesion-seg:1.2",
            "cross_validation": {"folds": 5, "studies": n, "change": change},
        },
    }


def test_a_worse_version_says_so_with_its_numbers() -> None:
    said = verdict(_card((-0.05, 0.08), (1.5, 1.1)), "1.2")
    assert said.level == WORSE
    assert said.text == (
        "Not better than 1.2 on your 8 studies: Dice −0.05 ± 0.08; false "
        "positives +1.5 ± 1.1 a study."
    )


def test_more_false_positives_is_not_better_even_with_a_clear_dice_gain() -> None:
    said = verdict(_card((0.12, 0.04), (0.8, 0.5)), "1.2")
    assert said.level == WORSE and said.text.startswith("Not better than 1.2")
    assert "Dice +0.12 ± 0.04" in said.text and "false positives +0.8 ± 0.5" in said.text


def test_a_gain_whose_interval_reaches_zero_is_not_clearly_better() -> None:
    said = verdict(_card((0.03, 0.05), (-0.5, 0.7)), "1.2")
    assert said.level == UNCLEAR
    assert said.text == (
        "Not clearly better than 1.2 on your 8 studies: Dice +0.03 ± 0.05; "
        "false positives −0.5 ± 0.7 a study. The interval includes no gain."
    )


def test_a_clear_gain_without_more_false_positives_is_better() -> None:
    said = verdict(_card((0.10, 0.04), (0.0, 0.3), n=12), "1.2")
    assert said.level == BETTER
    assert said.text.startswith("Better than 1.2 on your 12 studies: Dice +0.10 ± 0.04")


def test_one_study_has_no_interval_and_is_never_called_better() -> None:
    said = verdict(_card((0.2, None), (0.0, None), n=1), "1.2")
    assert said.level == UNCLEAR and "on your 1 study: Dice +0.20 (no interval)" in said.text
    assert judge({"mean": None}, None) == WORSE  # nothing measured: not better


def test_a_card_from_before_cross_validation_uses_its_validation_split() -> None:
    old = {
        "dice_mean": 0.60,
        "false_positives_per_study": 7.0,
        "fine_tune": {
            "parent": "lesion-seg:1.2",
            "val_studies": ["a", "b"],
            "parent_metrics": {"dice_mean": 0.64, "false_positives_per_study": 3.0},
        },
    }
    said = verdict(old, "1.2")
    assert said.level == WORSE
    assert said.text == (
        "Not better than 1.2 on your 2 studies: Dice −0.04 (no interval); "
        "false positives +4.0 (no interval) a study."
    )
    assert verdict({"dice_mean": 0.9}, "1.2") is None  # a bundled version: no verdict

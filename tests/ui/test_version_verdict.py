"""The verdict beside Activate (issue 15), on the real widgets: a cross-validated fine-tune
that did worse than its parent on the reader's studies says so in words in the Versions list
and in the Compare view, numbers carry their 95% intervals, and nothing is activated until
the reader presses Activate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6 import QtCore

from medview.ai.models import registry
from medview.ui.panels.model_versions import ModelVersions
from medview.ui.panels.version_compare import VersionCompareDialog
from tests.ai.tiny_models import card_dict, tiny_unet, write_folder

LEFT = QtCore.Qt.MouseButton.LeftButton
SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))
PARENT = {
    "dice_mean": 0.712,
    "sensitivity_ge_6mm": 0.86,
    "false_positives_per_study": 2.0,
    "studies": 8,
    "lesions": 21,
    "threshold": 0.5,
}
WORSE = {
    "dice_mean": 0.655,
    "sensitivity_ge_6mm": 0.81,
    "false_positives_per_study": 3.5,
    "studies": 8,
    "lesions": 21,
    "threshold": 0.5,
}
CV = {
    "folds": 5,
    "studies": 8,
    "level": 0.95,
    "intervals": {
        "dice_mean": {"parent": [0.61, 0.79], "new": [0.55, 0.74]},
        "false_positives_per_study": {"parent": [1.1, 3.0], "new": [2.0, 5.1]},
        "sensitivity_ge_6mm": {"parent": [0.7, 1.0], "new": [0.62, 0.95]},
    },
    "change": {
        "dice": {"mean": -0.0512, "half_width": 0.0804, "n": 8},
        "false_positives_per_study": {"mean": 1.5, "half_width": 1.2, "n": 8},
    },
}


@pytest.fixture
def versions(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelVersions:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    keys = [f"k{i}" for i in range(8)]
    for version, extra in (
        ("1.2", {"validation": {"dice_mean": 0.9, "studies": 10}}),
        (
            "1.2.1",
            {
                "parent_version": "1.2",
                "validation": {
                    **WORSE,
                    "fine_tune": {
                        "parent": "lesion-seg:1.2",
                        "parent_metrics": PARENT,
                        "val_studies": keys,
                        "train_studies": keys,
                        "val_hash": "h",
                        "cross_validation": CV,
                    },
                },
            },
        ),
    ):
        write_folder(
            registry.user_models_dir() / "lesion-seg" / version,
            tiny_unet(),
            card=card_dict("lesion-seg", version, input_size=None, **extra),
        )
    registry.activate("lesion-seg", "1.2")
    v = ModelVersions()
    qtbot.addWidget(v)
    v.resize(620, 360)
    v.show_model("lesion-seg")
    v.show()
    return v


SENTENCE = (
    "Not better than 1.2 on your 8 studies: Dice −0.05 ± 0.08; false positives +1.5 ± 1.2 a study."
)


def test_the_versions_list_says_a_worse_version_is_not_better(qtbot, versions) -> None:
    assert not versions.verdict.isVisible()  # nothing selected: nothing to say
    versions.select("1.2.1")
    assert versions.verdict.isVisible() and versions.verdict.text() == "⚠ " + SENTENCE
    # beside Activate, on its row
    assert abs(versions.verdict.geometry().top() - versions.activate_button.geometry().top()) < 10
    t = versions.table
    row = {t.item(r, 0).text(): t.item(r, 2).text() for r in range(t.rowCount())}
    assert row["1.2.1"] == "8 studies of yours, cross-validated"
    versions.grab().save(str(SHOTS / "versions_worse_verdict.png"))
    assert registry.resolve("lesion-seg").card.version == "1.2"  # not activated for them
    versions.select("1.2")  # a bundled-like version with no parent: no verdict
    assert not versions.verdict.isVisible()
    versions.select("1.2.1")
    qtbot.mouseClick(versions.activate_button, LEFT)  # the reader's choice, still allowed
    assert registry.resolve("lesion-seg").card.version == "1.2.1"


def test_the_compare_view_gives_intervals_and_the_verdict_beside_activate(qtbot, versions) -> None:
    versions.select("1.2", "1.2.1")
    qtbot.mouseClick(versions.compare_button, LEFT)
    dialog = versions.findChild(VersionCompareDialog)
    qtbot.addWidget(dialog)
    assert dialog.value("dice_mean", 1) == "0.712 [0.61, 0.79]"
    assert dialog.value("dice_mean", 2) == "0.655 [0.55, 0.74]"
    assert dialog.value("false_positives_per_study", 2) == "3.5 [2, 5.1]"
    assert dialog.value("dice_mean", 3) == "-0.057"
    assert "all 8 studies" in dialog.note.text() and "5-fold" in dialog.note.text()
    assert dialog.verdict.text() == "⚠ 1.2.1: " + SENTENCE
    dialog.grab().save(str(SHOTS / "compare_worse_verdict.png"))
    assert registry.resolve("lesion-seg").card.version == "1.2"
    dialog.b.setCurrentText("lesion-seg:1.2.1")
    qtbot.mouseClick(dialog.activate_button, LEFT)
    assert registry.resolve("lesion-seg").card.version == "1.2.1"
    dialog.a.setCurrentText("lesion-seg:1.2.1")  # the same version twice: no verdict
    dialog.b.setCurrentText("lesion-seg:1.2.1")
    assert dialog.verdict.text() == "" and not dialog.verdict.isVisible()
    dialog.close()

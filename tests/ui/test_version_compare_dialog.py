"""The Compare dialog of the Versions list, as a reader reads it: results worded ("Dice of
all voxels", "sensitivity ≥6 mm"), each with B − A; the conditions the numbers were measured
with (studies, lesions, threshold, ...) apart under their own title, marked same or
differs instead of a "+0" that reads like a result."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6 import QtCore

from medview.ai.models import registry
from medview.ui.panels.model_versions import ModelVersions
from medview.ui.panels.version_compare import CONDITIONS_TITLE, VersionCompareDialog
from tests.ai.tiny_models import card_dict, tiny_unet, write_folder

LEFT = QtCore.Qt.MouseButton.LeftButton
SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))
MEASURED = {"studies": 1, "lesions": 8, "threshold": 0.5, "min_component_voxels": 20}


@pytest.fixture
def versions(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelVersions:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    parent = {
        "dice_mean": 0.9199,
        "sensitivity_ge_6mm": 0.8333,
        "false_positives_per_study": 0.0,
        **MEASURED,
    }
    for version, extra in (
        ("1.0", {"validation": {"mean_dice_ge_6mm": 0.8, "studies": 10}}),
        (
            "1.0.1",
            {
                "parent_version": "1.0",
                "validation": {
                    "dice_mean": 0.7125,
                    "sensitivity_ge_6mm": 1.0,
                    "false_positives_per_study": 37.0,
                    **MEASURED,
                    "fp_threshold": 0.26,
                    "fine_tune": {
                        "parent": "tiny:1.0",
                        "parent_metrics": parent,
                        "val_studies": ["a"],
                        "val_hash": "h",
                    },
                },
            },
        ),
    ):
        write_folder(
            registry.user_models_dir() / "tiny" / version,
            tiny_unet(),
            card=card_dict("tiny", version, input_size=None, **extra),
        )
    v = ModelVersions()
    qtbot.addWidget(v)
    v.show_model("tiny")
    return v


def test_conditions_are_apart_from_results(qtbot, versions: ModelVersions) -> None:
    versions.select("1.0", "1.0.1")
    qtbot.mouseClick(versions.compare_button, LEFT)
    dialog = versions.findChild(VersionCompareDialog)
    qtbot.addWidget(dialog)
    table = dialog.table
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    title = names.index(CONDITIONS_TITLE)
    assert names[:title] == [
        "Dice of all voxels (mean of labels)",
        "sensitivity ≥6 mm",
        "false positives per study",
    ]
    assert set(names[title + 1 :]) == {
        "studies",
        "lesions",
        "threshold",
        "min component voxels",
        "FP threshold",
    }
    assert table.columnSpan(title, 0) == 4
    assert dialog.value("dice_mean", 3) == "-0.2074"
    assert dialog.value("threshold", 3) == "same" and dialog.value("studies", 1) == "1"
    assert dialog.value("fp_threshold", 3) == ""  # only B's card says
    assert "the 1 validation study of tiny:1.0.1" in dialog.note.text()
    dialog.grab().save(str(SHOTS / "version_compare_dialog.png"))
    dialog.close()


def test_the_versions_list_says_where_numbers_come_from(versions: ModelVersions) -> None:
    t = versions.table
    row = {
        t.item(r, 0).text(): [t.item(r, c).text() for c in range(t.columnCount())]
        for r in range(t.rowCount())
    }
    header = [t.horizontalHeaderItem(c).text() for c in range(3, 6)]
    assert header == ["lesion Dice", "sens. ≥6 mm", "FP/study"]  # one metric a column
    assert row["1.0"][3] == "0.8" and row["1.0"][2] == "10 studies (its card)"
    assert row["1.0.1"][3] == "—"  # its voxel Dice is another metric: not in this column
    assert row["1.0.1"][2] == "1 study of yours" and row["1.0.1"][6] == "1.0"


def test_the_versions_list_labels_the_bundled_cards_development_numbers(
    qtbot, tmp_path, monkeypatch
) -> None:
    """The bundled cards' numbers are from held-out demo seeds; the numbers from seeds that
    shaped the models are in the 'measured on' tooltip, labelled, never in a column."""
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    v = ModelVersions()
    qtbot.addWidget(v)
    v.show_model("lesion-seg")
    t = v.table
    for r in range(t.rowCount()):
        card = v.entries[r].card.validation
        cell = t.item(r, 2)
        assert cell.text() == f"{card['studies']} held-out demo studies"
        assert "Held-out numbers" in cell.toolTip()
        _, dev = cell.toolTip().split("Development numbers (not held out; demo seeds 1001-1010): ")
        assert f"Dice per lesion ≥6 mm (mean) {card['development']['mean_dice_ge_6mm']:.3g}" in dev
        assert t.item(r, 3).text() == f"{card['mean_dice_ge_6mm']:.3g}"


def test_two_bundled_versions_compare_on_their_shared_held_out_seeds(tmp_path, monkeypatch) -> None:
    """Every bundled lesion-seg version was scored on the same held-out demo seeds, so the
    comparison says so instead of 'not directly comparable'."""
    from medview.ui.panels.version_compare import paired_metrics

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    seg = {e.card.version: e for e in registry.scan_models().models if e.card.name == "lesion-seg"}
    a, b, where = paired_metrics(seg["1.1"], seg["1.2"])
    assert where == "both on the same held-out demo seeds 3001-3020 (see their cards)"
    assert a["mean_dice_ge_6mm"] == seg["1.1"].card.validation["mean_dice_ge_6mm"]
    assert "development" not in a and "development" not in b

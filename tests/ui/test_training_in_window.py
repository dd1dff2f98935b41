"""The Training panel inside the main window: selecting its tab lists the labelled studies
again (in the tabbed dock the panel is shown once, at app start, so studies marked done later
never appeared); Activate and roll back under Training > Versions change what the AI panel
runs: its model picker moves to the version just activated (it stayed on the version chosen
when the app started, so Run kept using the old one after "… now runs")."""

from __future__ import annotations

from PySide6 import QtCore

from medview.ai.models import registry
from tests.ai.tiny_models import card_dict, tiny_unet, write_folder
from tests.ai.train_fixtures import make_studies, make_study
from tests.ui.main_window_fixtures import make_window

LEFT = QtCore.Qt.MouseButton.LeftButton


def test_activate_and_roll_back_reach_the_ai_panel(qtbot, data_dir) -> None:
    for version in ("1.0", "1.0.1"):
        write_folder(
            data_dir / "models" / "tiny" / version,
            tiny_unet(),
            card=card_dict("tiny", version, input_size=None),
        )
    registry.activate("tiny", "1.0")
    window = make_window(qtbot, (1200, 800))
    ai, versions = window.ai, window.training.versions
    ai.model_combo.setCurrentIndex(ai.model_combo.findText("tiny:1.0  (yours)"))
    versions.show_model("tiny")
    versions.select("1.0.1")
    qtbot.mouseClick(versions.activate_button, LEFT)
    assert registry.resolve("tiny").card.version == "1.0.1"
    assert ai.current_entry().ref == "tiny:1.0.1"
    versions.select("1.0")  # roll back
    qtbot.mouseClick(versions.activate_button, LEFT)
    assert ai.current_entry().ref == "tiny:1.0"


def test_selecting_the_tab_lists_the_studies_again(qtbot, data_dir, tmp_path) -> None:
    folder = make_studies(tmp_path / "studies", 3)
    window = make_window(qtbot, (1200, 800))
    panel = window.training
    panel.studies.data_edit.setText(str(folder))
    window.dock("Labels").raise_()
    window.dock("Training").raise_()  # as a click on its tab does
    qtbot.waitUntil(lambda: panel.studies.table.rowCount() == 3, timeout=30_000)
    window.dock("Labels").raise_()  # the reader labels another study meanwhile
    make_study(folder / "study-04", 9)
    window.dock("Training").raise_()
    qtbot.waitUntil(lambda: panel.studies.table.rowCount() == 4, timeout=30_000)


def test_a_new_version_is_offered_in_the_ai_panel_at_once(qtbot, data_dir) -> None:
    """A run's new version joins the AI panel's picker when the run ends (it appeared only
    after Activate or a restart), and the version the reader runs stays chosen."""
    write_folder(
        data_dir / "models" / "tiny" / "1.0",
        tiny_unet(),
        card=card_dict("tiny", "1.0", input_size=None),
    )
    registry.activate("tiny", "1.0")
    window = make_window(qtbot, (1200, 800))
    ai = window.ai
    ai.model_combo.setCurrentIndex(ai.model_combo.findText("tiny:1.0  (yours)"))
    assert ai.model_combo.findText("tiny:1.0.1  (yours)") == -1
    write_folder(
        data_dir / "models" / "tiny" / "1.0.1",
        tiny_unet(),
        card=card_dict("tiny", "1.0.1", input_size=None),
    )  # as the child writes it
    metrics = {"dice_mean": 0.5, "false_positives_per_study": 1.0}
    window.training.on_event(
        {
            "event": "done",
            "version": "tiny:1.0.1",
            "parent": "tiny:1.0",
            "metrics": metrics,
            "parent_metrics": metrics,
        }
    )
    assert ai.model_combo.findText("tiny:1.0.1  (yours)") >= 0
    assert ai.current_entry().ref == "tiny:1.0"
    assert registry.resolve("tiny").card.version == "1.0"  # offered, not activated

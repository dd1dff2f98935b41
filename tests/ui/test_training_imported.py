"""The Training panel fine-tunes an imported MONAI bundle as it does a bundled model: the
base-model choice offers it, Start runs the real `medview train` child, and the new version
appears under Versions and in Compare with the parent (docs/imported-models.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6 import QtCore

from medview.ui.panels.training_panel import TrainingPanel

pytest.importorskip("monai")

LEFT = QtCore.Qt.MouseButton.LeftButton
SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))


@pytest.fixture
def imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The bundle factory's tiny 3D U-Net imported, and two labelled 12-slice demo studies."""
    import torch

    from medview.ai.runtime.bundle_import import import_bundle
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume
    from tests.ai import bundle_factory as bf
    from tests.ai.imported_studies import labelled_studies

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))  # the child inherits it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    series = [generate_demo_study(tmp_path / f"d{i}", seed=i, slices=12).series_dir for i in (1, 2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    net = bf.trained_unet([load_volume([series[0]])[0].array], steps=2)
    torch.set_num_threads(threads)
    entry = import_bundle(bf.make_bundle(tmp_path / "bundle", net))
    return entry.card, labelled_studies(tmp_path / "studies", series)


def test_panel_fine_tunes_an_imported_bundle(qtbot, imported) -> None:
    card, studies = imported
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 900)
    panel.studies.data_edit.setText(str(studies))
    panel.show()
    qtbot.waitUntil(lambda: panel.studies.table.rowCount() == 2, timeout=30_000)
    index = panel.base_combo.findData(card.ref)
    assert index >= 0, [panel.base_combo.itemData(i) for i in range(panel.base_combo.count())]
    panel.base_combo.setCurrentIndex(index)
    for name, value in (("epochs", 1), ("patches_per_study", 2), ("threads", 1), ("folds", 1)):
        panel.form.widgets[name].setValue(value)
    try:
        qtbot.mouseClick(panel.start_button, LEFT)
        qtbot.waitUntil(lambda: "written" in panel.status.text(), timeout=400_000)
        qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=60_000)  # (the child exits)
        assert "written (not active): validation Dice " in panel.status.text()
        v = panel.versions
        rows = [v.table.item(r, 0).text() for r in range(v.table.rowCount())]
        assert rows[0] == card.version and len(rows) == 2, rows
        panel.tabs.setCurrentIndex(2)
        v.select(card.version, rows[1])
        dialog = v.compare()
        assert dialog.value("dice_mean", 3) not in ("", "—")
        dialog.grab().save(str(SHOTS / "training_compare_imported.png"))
        dialog.close()
        panel.grab().save(str(SHOTS / "training_panel_imported.png"))
    finally:
        panel.shutdown()

"""The AI panel's "Import model…" with real clicks: a MONAI bundle made with monai.bundle
tooling is imported and offered in the model list, then run on a study; a bundle whose
config would run code asks first, and declining leaves nothing imported and its canary
unwritten; accepting records the consent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6 import QtCore, QtWidgets

from medview.ai.models import registry
from medview.ai.runtime.inference import clear_kept
from medview.core.volume import Volume, VolumeMetadata
from medview.ui.panels import model_import
from medview.ui.panels.ai_panel import AIPanel
from medview.viewer.state import ViewerState
from tests.ai import bundle_factory as bf

Qt = QtCore.Qt
MS = 60_000


@pytest.fixture
def panel(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    torch.set_num_threads(1)
    clear_kept()
    state = ViewerState()
    a = np.full((20, 40, 40), -50, np.int16)
    a[8:12, 10:30, 10:30] = 60
    affine = np.diag([2.0, 1.5, 1.5, 1.0])
    state.set_volume(Volume(a, affine, VolumeMetadata(modality="CT", source="test")), "k")
    panel = AIPanel(state, lambda: [])
    qtbot.addWidget(panel)
    panel.resize(420, 700)
    panel.show()
    qtbot.waitExposed(panel)
    yield panel
    panel.shutdown()
    clear_kept()


def _choose(monkeypatch, path):
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))


def _answer(monkeypatch, button_text: str | None, asked: list):
    """Answer the consent warning by clicking the button with that text (None: Cancel)."""

    def exec_(box):
        asked.append((box.text(), box.detailedText()))
        for b in box.buttons():
            if (button_text and b.text() == button_text) or (
                button_text is None
                and box.buttonRole(b) == QtWidgets.QMessageBox.ButtonRole.RejectRole
            ):
                b.click()
        return 0

    monkeypatch.setattr(QtWidgets.QMessageBox, "exec", exec_)


def test_import_a_bundle_from_the_panel_and_run_it(qtbot, panel, tmp_path, monkeypatch):
    from monai.networks.nets import UNet

    bundle = bf.make_bundle(tmp_path / "tiny_bundle", UNet(**bf.NET_ARGS))
    _choose(monkeypatch, bundle / "configs" / "metadata.json")
    with qtbot.waitSignal(panel.importer.imported, timeout=MS) as got:
        qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
    assert got.args[0].ref == "tiny-ct-segmentation:0.2.1"
    assert panel.model_combo.currentText().startswith("tiny-ct-segmentation")
    assert "Imported tiny-ct-segmentation:0.2.1." in panel.status.text()
    panel.grab().save(str(tmp_path / "panel.png"))
    with qtbot.waitSignal(panel.result_shown, timeout=MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.results is not None


@pytest.mark.parametrize("consent", [False, True])
def test_a_code_bundle_asks_first(qtbot, panel, tmp_path, monkeypatch, consent):
    from monai.networks.nets import UNet

    canary = tmp_path / "canary.txt"
    bundle = bf.code_bundle(tmp_path / "code_bundle", UNet(**bf.NET_ARGS), canary)
    asked: list = []
    _answer(monkeypatch, model_import.ALLOW if consent else None, asked)
    _choose(monkeypatch, bundle / "configs" / "metadata.json")
    if consent:
        with qtbot.waitSignal(panel.importer.imported, timeout=MS) as got:
            qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
        assert got.args[0].card.consent["granted"] and canary.exists()
    else:
        qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "was not imported" in panel.status.text(), timeout=MS)
        assert not canary.exists()
        assert not any(registry.user_models_dir().rglob("metadata.json"))
    assert len(asked) == 1 and "Python expression" in asked[0][1]

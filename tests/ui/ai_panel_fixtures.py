"""The AI panel tests' fixtures: only the tests' own models (bright-seg), a volume with known
blobs, and the panel beside a view of each plane (`viewer`)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtWidgets

from medview.ai.models import registry
from medview.ai.runtime.inference import clear_kept
from medview.core.volume import Volume, VolumeMetadata
from medview.ui.panels.ai_panel import AIPanel
from medview.ui.slice_view import SliceView
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ai.seg_models import write_bright_model

KEY = "1.2.826.0.1.3680043.99.55"
# (centre slice, row, col), radius, HU: bright-seg calls them lung nodules at p >= 0.5 (the
# third, the faintest, is small); lower thresholds add small liver-lesion findings around them
BALLS = (((5, 20, 20), 6, 300), ((10, 44, 40), 8, 150), ((12, 16, 48), 5, 80))


@pytest.fixture
def models(tmp_path, monkeypatch):
    """Only the test's own models: bright-seg (the default segmentation model)."""
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    clear_kept()
    folder = write_bright_model(registry.user_models_dir() / "bright-seg" / "1.0")
    registry.activate("bright-seg", "1.0")
    yield folder
    clear_kept()


def blobs(slices: int = 16, balls=BALLS) -> Volume:
    """Soft tissue (-50 HU) with balls (BALLS), squashed to half their radius across slices."""
    a = np.full((slices, 64, 64), -50, np.int16)
    z, y, x = np.mgrid[:slices, :64, :64]
    for (cz, cy, cx), r, hu in balls:
        a[((z - cz) * 2) ** 2 + ((y - cy) * 0.8) ** 2 + ((x - cx) * 0.8) ** 2 <= r * r] = hu
    affine = np.diag([3.0, 2.4, 2.4, 1.0])  # 154 x 154 x 48 mm: room to zoom in
    affine[:3, 3] = (-50.0, -50.0, 60.0)
    return Volume(a, affine, VolumeMetadata(modality="CT", source="blobs", series_number=4))


@pytest.fixture
def ai_volume() -> Volume:
    """The volume the viewer opens (a test module may override it)."""
    return blobs()


@pytest.fixture
def viewer(qtbot, models, ai_volume):
    state = ViewerState()
    state.set_volume(ai_volume, KEY)
    host = QtWidgets.QWidget()
    row = QtWidgets.QHBoxLayout(host)
    views = [SliceView(state, p) for p in Plane]
    for v in views:
        row.addWidget(v, 1)
    panel = AIPanel(state, lambda: views)
    row.addWidget(panel, 1)
    qtbot.addWidget(host)
    host.resize(1300, 520)
    host.show()
    qtbot.waitExposed(host)
    yield state, views, panel
    panel.shutdown()

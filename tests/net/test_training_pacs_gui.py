"""'Studies on the PACS' in the Training panel, against a real PACS: the PACS… button
offers the saved nodes; choosing one fetches the node's studies whose MedView SEG is
marked done and lists them with their labels for the split (the data is pacs://NODE, which
the training process fetches the same way); a node that is down is one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.labels import LabelMap, segment_for
from medview.io.dicom.index import scan
from medview.io.image_files import read_image
from medview.io.labels.seg import export_seg
from medview.net import dimse
from medview.net.nodes import save_nodes
from tests.net.orthanc import dimse_node, free_port
from tests.net.test_pacs_gui import shot

pytestmark = pytest.mark.external


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _pick(qtbot, studies, name: str) -> None:
    studies.pacs_menu.aboutToShow.emit()  # filled as the reader opens it
    (act,) = [a for a in studies.pacs_menu.actions() if a.data() == name]
    act.trigger()


def test_studies_on_the_pacs_are_listed_for_training(
    qtbot, orthanc, study_as_stored, data_dir, tmp_path
):
    stored_study = study_as_stored
    from medview.ui.panels.training_studies import TrainingStudies

    node = dimse_node(orthanc, name="hospital")
    save_nodes([node, dimse_node(orthanc, name="down", port=free_port())])
    (series,) = scan([stored_study.series_dir]).series
    truth = read_image(stored_study.labels_path).array.astype(np.uint8)
    done = LabelMap(truth, {1: segment_for(1, "lung nodule"), 2: segment_for(2, "liver lesion")})
    export_seg(done, series, tmp_path / "done.dcm", done=True)
    assert dimse.send(node, [tmp_path / "done.dcm"]) == 1
    studies = TrainingStudies()
    qtbot.addWidget(studies)
    studies.resize(700, 360)
    studies.names = {1: "lung nodule", 2: "liver lesion"}  # the base model's (the panel's)
    studies.pacs_menu.aboutToShow.emit()
    assert [a.data() for a in studies.pacs_menu.actions()] == ["hospital", "down"]
    with qtbot.waitSignal(studies.listed, timeout=120_000) as listed:
        _pick(qtbot, studies, "hospital")
    assert studies.data == "pacs://hospital"
    assert studies.rows, listed.args[0]
    assert any(
        "lung nodule" in studies.table.item(i, 2).text() for i in range(studies.table.rowCount())
    )
    assert sum(len(v) for v in studies.split().values()) == len(studies.rows)
    shot(studies, "training-studies-on-the-pacs")
    qtbot.waitUntil(lambda: not studies._listing)
    with qtbot.waitSignal(studies.listed, timeout=60_000) as down:
        _pick(qtbot, studies, "down")
    assert down.args[0].startswith("Down: nothing answers at ") and not studies.rows

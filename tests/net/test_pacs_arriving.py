"""A series shown while it arrives (ui.arriving_series), against a real PACS (Orthanc), as a
reader meets it: Retrieve, and the first slice is on screen while the rest still comes; the
wheel and the arrow keys step through the slices already here, in their order along the
series; once whole the series opens at the slice the reader was on. A cancelled retrieval
leaves the viewer as it was; Retrieve again shows the slices here already with the rest.
The PACS is made slow (0.1 s an instance) so that the transfer lasts long enough to look
at."""

from __future__ import annotations

import time

import pydicom
import pytest

from medview.net import retrieve
from medview.net.nodes import save_nodes
from tests.net.orthanc import dimse_node
from tests.net.pacs_search import find_stored_study
from tests.net.test_pacs_gui import shot
from tests.ui.annotation_fixtures import click
from tests.ui.main_window_fixtures import make_window

pytestmark = pytest.mark.external
RUN_MS = 60_000
SLOW_S = 0.1


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def slow_pacs(monkeypatch):
    """Every stored instance takes SLOW_S longer to arrive."""
    arrived = retrieve._Progress.arrived

    def slowly(self, path):
        time.sleep(SLOW_S)
        arrived(self, path)

    monkeypatch.setattr(retrieve._Progress, "arrived", slowly)


def _pacs_with_study(qtbot, orthanc, stored_study, window):
    save_nodes([dimse_node(orthanc)])
    return find_stored_study(qtbot, window, stored_study)


def _wheel(widget, notches: int) -> None:
    from PySide6 import QtCore, QtGui

    centre = QtCore.QPointF(widget.width() / 2, widget.height() / 2)
    event = QtGui.QWheelEvent(
        centre,
        widget.mapToGlobal(centre),
        QtCore.QPoint(),
        QtCore.QPoint(0, 120 * notches),
        QtCore.Qt.MouseButton.NoButton,
        QtCore.Qt.KeyboardModifier.NoModifier,
        QtCore.Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QtCore.QCoreApplication.sendEvent(widget.viewport(), event)


def _positions(stored_study) -> dict[str, float]:
    """SOP Instance UID -> z of the stored study's slices (its normal is z)."""
    out = {}
    for p in stored_study.series_dir.glob("*.dcm"):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        out[str(ds.SOPInstanceUID)] = float(ds.ImagePositionPatient[2])
    return out


def test_slices_are_shown_and_scrolled_while_they_arrive(
    qtbot, orthanc, stored_study, data_dir, slow_pacs
):
    from PySide6 import QtCore

    window = make_window(qtbot, (1200, 800))
    pacs, studies = _pacs_with_study(qtbot, orthanc, stored_study, window)
    n = stored_study.n_slices
    arriving = window.pacs.arriving
    seen: list[tuple[int, int]] = []
    arriving.shown.connect(lambda at, here: seen.append((at, here)))
    click(qtbot, studies.retrieve_button)
    # the first slice is on screen before the whole series is here
    qtbot.waitUntil(lambda: bool(seen), timeout=RUN_MS)
    assert seen[0][1] < n and window.grid.arriving and studies.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: seen[-1][1] >= n // 2, timeout=RUN_MS)  # (on screen, here)
    assert studies.cancel_button.isEnabled()  # still arriving
    page = window.grid._pages[window.grid._focused]
    assert page.image_item.image is not None and "slices here; scroll" in page.text
    shot(window, "arriving-first-slice")
    # scroll to the first slice along the series, then two down with the keyboard
    _wheel(page, 30)
    qtbot.waitUntil(lambda: seen[-1][0] == 1, timeout=5000)
    here = [p for _k, _a, p in arriving.order]
    z = _positions(stored_study)
    on_screen = [z[p.rsplit("/", 1)[-1][:-4]] for p in here]
    assert on_screen == sorted(on_screen)  # in order along the series, not as they came
    qtbot.keyClick(page, QtCore.Qt.Key.Key_Down)
    qtbot.keyClick(page, QtCore.Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: seen[-1][0] == 3, timeout=5000)
    looked_at = arriving.slice_file
    assert "slice 3 of the" in page.text
    shot(window, "arriving-scrolled")
    # whole: the series opens, at the slice the reader was on
    with qtbot.waitSignal(
        window.image_shown, timeout=RUN_MS, check_params_cb=lambda what: what == "volume"
    ):
        pass
    qtbot.waitUntil(studies.search_button.isEnabled, timeout=RUN_MS)
    assert not window.grid.loading
    assert window.state.volume.shape[0] == n
    index = int(window.state.cursor_ijk[0])
    assert window.series.slices[index].sop_instance_uid == looked_at.rsplit("/", 1)[-1][:-4]
    shot(window, "arriving-whole")
    pacs.hide()


def test_a_cancelled_retrieval_leaves_the_viewer_as_it_was_and_resumes(
    qtbot, orthanc, stored_study, data_dir, slow_pacs, tmp_path
):
    from medview.demo import generate_demo_study

    window = make_window(qtbot, (1000, 700))
    before = generate_demo_study(tmp_path / "open", seed=3, slices=6)
    with qtbot.waitSignal(
        window.image_shown, timeout=RUN_MS, check_params_cb=lambda what: what == "volume"
    ):
        window.open_paths([str(before.series_dir)])
    key = window.state.series_key
    pacs, studies = _pacs_with_study(qtbot, orthanc, stored_study, window)
    arriving = window.pacs.arriving
    click(qtbot, studies.retrieve_button)
    qtbot.waitUntil(lambda: window.grid.arriving, timeout=RUN_MS)
    click(qtbot, studies.cancel_button)
    qtbot.waitUntil(studies.search_button.isEnabled, timeout=RUN_MS)
    assert "Cancelled; what arrived is kept" in studies.note.text()
    qtbot.waitUntil(lambda: not window.grid.loading, timeout=5000)
    assert window.state.series_key == key and window.state.volume.shape[0] == 6
    assert not arriving.active
    # Retrieve again: only the missing instances come, and those here already are shown too
    here = len(list(arriving.series_dir.glob("*.dcm")))
    assert 0 < here < stored_study.n_slices
    seen: list[tuple[int, int]] = []
    arriving.shown.connect(lambda at, n: seen.append((at, n)))
    click(qtbot, studies.retrieve_button)
    qtbot.waitUntil(lambda: bool(seen), timeout=RUN_MS)
    assert seen[0][1] > here
    with qtbot.waitSignal(
        window.image_shown, timeout=RUN_MS, check_params_cb=lambda what: what == "volume"
    ):
        pass
    qtbot.waitUntil(studies.search_button.isEnabled, timeout=RUN_MS)
    assert f"{here} were here already" in studies.note.text()
    assert window.state.volume.shape[0] == stored_study.n_slices
    pacs.hide()

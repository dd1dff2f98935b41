"""Retrieve in the viewer: how soon a reader sees the series (issue 16: first slice shown
<= 0.5 s after the retrieval starts; whole series <= 1.2x getscu). Debian's Orthanc on
loopback, started here, holds a demo CT; MedView's main window (offscreen Qt) retrieves it
through File > PACS by C-GET, as a reader's Retrieve does, with the series shown as it
arrives (ui.arriving_series) and without (the viewer waits until the series is whole, as
before). Recorded from the Retrieve: the first slice drawn, and the whole series open in
the viewer. dcmtk's getscu fetches the same series in the same run as the reference.
Medians of --repeat, the runs interleaved.

Run: nice -n 10 python benchmarks/bench_pacs_arriving.py [--slices N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from benchmarks.bench_pacs import _getscu
from medview.net import dimse
from medview.net.nodes import DimseNode, save_nodes
from medview.net.query import StudyQuery
from tests.net.orthanc import dimse_node, running_orthanc


def _retrieve_in_viewer(node: DimseNode, patient_id: str, data: Path, arriving: bool):
    """(s to the first slice drawn, s to the whole series open) for one Retrieve."""
    from PySide6 import QtCore

    from medview.ui.main_window import MainWindow
    from medview.ui.settings import Settings

    os.environ["MEDVIEW_DATA_DIR"] = str(data)
    save_nodes([node])
    window = MainWindow(Settings())
    window.resize(1200, 800)
    window.show()
    pacs = window.pacs.open_pacs()
    studies = pacs.studies
    if not arriving:
        studies.retrieval_started.disconnect(window.pacs.arriving.start)
    (row,) = dimse.find_studies(node, StudyQuery(patient_id=patient_id))
    studies._fill([row])
    studies.table.selectRow(0)
    marks: dict[str, float] = {}
    loop = QtCore.QEventLoop()

    def drawn() -> None:
        marks.setdefault("first", time.perf_counter() - started)

    def shown(what: str) -> None:
        if what == "volume":
            marks.setdefault("whole", time.perf_counter() - started)
            loop.quit()

    window.grid.slice_painted.connect(drawn)
    window.image_shown.connect(shown)
    started = time.perf_counter()
    studies.retrieve_selected()
    QtCore.QTimer.singleShot(600_000, loop.quit)
    loop.exec()
    while studies._worker is not None and studies._worker.running:
        QtCore.QCoreApplication.processEvents()
    pacs.close()
    window.close()
    window.pacs.shutdown()
    window.deleteLater()
    QtCore.QCoreApplication.processEvents()
    return marks.get("first", marks["whole"]), marks["whole"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from PySide6 import QtWidgets

    from medview.demo import generate_demo_study

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    work = Path(tempfile.mkdtemp(prefix="bench-arriving-"))
    demo = generate_demo_study(work / "demo", seed=7, slices=args.slices)
    import pydicom

    files = sorted(demo.series_dir.glob("*.dcm"))
    patient_id = str(pydicom.dcmread(files[0], stop_before_pixels=True).PatientID)
    with running_orthanc(work / "orthanc") as server:
        node = dimse_node(server, name="bench")
        dimse.send(node, files)
        ref, on, off = [], [], []
        for r in range(args.repeat):
            ref.append(
                _getscu(server, demo.study_instance_uid, demo.series_instance_uid, work / f"g{r}")
            )
            on.append(_retrieve_in_viewer(node, patient_id, work / f"on{r}", True))
            off.append(_retrieve_in_viewer(node, patient_id, work / f"off{r}", False))
            print(
                f"run {r}: getscu {ref[-1]:.2f} s, shown as it arrives {on[-1]}, "
                f"shown when whole {off[-1]}",
                flush=True,
            )
    del app
    g = statistics.median(ref)
    print(
        f"\n{args.slices}-slice CT by C-GET into the viewer, median of {args.repeat} "
        f"(load avg {os.getloadavg()[0]:.1f}):"
    )
    print(f"  getscu, whole series              {g:6.2f} s")
    for name, runs in (("shown as it arrives", on), ("shown when whole (before)", off)):
        first = statistics.median(x[0] for x in runs)
        whole = statistics.median(x[1] for x in runs)
        print(
            f"  {name:26s} first slice drawn {first:6.2f} s (goal <= 0.5 s), whole series "
            f"open {whole:6.2f} s = {whole / g:4.2f}x getscu"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

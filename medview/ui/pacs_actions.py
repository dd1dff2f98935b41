"""The PACS from the main window: File > PACS Query / Retrieve… opens the PacsWindow, and a
study it retrieves opens in the viewer: its first image series is shown as it arrives
(ui.arriving_series: the reader scrolls through the slices here so far), opens whole at the
slice the reader was at as soon as it has arrived, and the browser is filled with every
series when the retrieval ends; File > Send to
PACS… sends the open series' results to a node the reader picks: their labels as a DICOM
SEG (marked done when the labels are marked done), the AI's findings mask as its SEG, and
the TID 1500 report of the findings with the reader's decisions (jobs.pacs.send_results_job).
Sending runs on the thread pool; a failure is one sentence in a message box."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.errors import MedviewError
from medview.core.labels import LabelMap
from medview.io.labels.store import DONE
from medview.jobs.pacs import AIOutput, SentResults, send_results_job
from medview.net.nodes import Node, load_nodes
from medview.ui.arriving_series import ArrivingSeries
from medview.ui.workers import JobWorker

if TYPE_CHECKING:
    from medview.ui.main_window import MainWindow
    from medview.ui.pacs_window import PacsWindow

LABELS, AI_SEG, REPORT = "labels", "ai_seg", "report"


class SendDialog(QtWidgets.QDialog):
    """The node to send to and what to send; what the open series lacks is unticked and
    disabled, saying why."""

    def __init__(
        self,
        nodes: list[Node],
        offered: dict[str, tuple[str, str]],
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Send to PACS")
        self.node = QtWidgets.QComboBox()
        for n in nodes:
            self.node.addItem(n.name, n)
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        form = QtWidgets.QFormLayout(self)
        form.addRow("Node", self.node)
        for key, (text, why_not) in offered.items():
            box = QtWidgets.QCheckBox(text)
            box.setChecked(not why_not)
            box.setEnabled(not why_not)
            box.setToolTip(why_not)
            self.checks[key] = box
            form.addRow(box)
        if AI_SEG in self.checks and REPORT in self.checks and self.checks[REPORT].isEnabled():
            # the report points into the AI's SEG: without it there is nothing to point at
            self.checks[AI_SEG].toggled.connect(self._report_needs_seg)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.send_button = buttons.addButton(
            "Send", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _report_needs_seg(self, on: bool) -> None:
        report = self.checks[REPORT]
        report.setEnabled(on)
        report.setChecked(on)
        report.setToolTip("" if on else "The report refers to the AI's SEG; send it too.")

    def chosen(self) -> set[str]:
        return {k for k, box in self.checks.items() if box.isChecked()}


class PacsActions(QtCore.QObject):
    sent = QtCore.Signal(object)  # SentResults

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.pacs_window: PacsWindow | None = None
        self.worker: JobWorker | None = None
        # owned by the app (see ui/segmentation_files.py: a pool freed by the GC deadlocks)
        self._pool = QtCore.QThreadPool(QtCore.QCoreApplication.instance())
        self.arriving = ArrivingSeries(window.grid, self._pool, self)
        self.arriving.shown.connect(
            lambda _at, here: window.status_label.setText(
                f"Retrieving: {here} {'slice' if here == 1 else 'slices'} here…"
            )
        )
        self._resume_at: str | None = None  # the SOP instance on screen while it arrived
        window.image_shown.connect(self._on_image_shown)
        menu = window.menus.file_menu
        after_recent = menu.actions()[
            menu.actions().index(window.menus.recent_menu.menuAction()) + 1
        ]
        self.open_action = QtGui.QAction("&PACS: Query / Retrieve…", self)
        self.open_action.setShortcut(QtGui.QKeySequence("Ctrl+Shift+P"))
        self.open_action.triggered.connect(self.open_pacs)
        self.send_action = QtGui.QAction("&Send to PACS…", self)
        self.send_action.triggered.connect(self.send_dialog)
        menu.insertSeparator(after_recent)
        menu.insertAction(after_recent, self.open_action)
        menu.insertAction(after_recent, self.send_action)
        menu.aboutToShow.connect(self._update_enabled)
        self._update_enabled()

    def _update_enabled(self) -> None:
        busy = self.worker is not None and self.worker.running
        self.send_action.setEnabled(self._series() is not None and not busy)

    def _series(self):
        s = self.w.series
        return s if s is not None and s.key == self.w.state.series_key else None

    # -- query / retrieve
    def open_pacs(self) -> PacsWindow:
        from medview.ui.pacs_window import PacsWindow  # the net modules load on first use

        if self.pacs_window is None:
            self.pacs_window = PacsWindow(self.w)
            self.pacs_window.open_study.connect(self.open_retrieved)
            studies = self.pacs_window.studies
            studies.retrieval_started.connect(self.arriving.start)
            studies.instance_arrived.connect(self.arriving.add)
            studies.retrieval_ended.connect(self.arriving.stop)
        self.pacs_window.show()
        self.pacs_window.raise_()
        return self.pacs_window

    def open_retrieved(self, folder: str) -> None:
        """A retrieved study's first image series (its folder, whole) while the rest
        arrives, then the study's folder when the retrieval ends: rescanned, so the browser
        lists every series (the study's first series is shown). While the series arrived,
        it opens at the slice the reader was looking at."""
        shown = self.arriving.on_screen()  # drawn on while the whole series loads
        if shown is not None and self.arriving.slice_file is not None:
            self._resume_at = Path(self.arriving.slice_file).stem  # stored as <SOP UID>.dcm
        self.w.open_paths([folder], shown)

    def _on_image_shown(self, what: str) -> None:
        if what != "volume":
            return
        sop, self._resume_at = self._resume_at, None
        series, volume = self.w.series, self.w.state.volume
        if sop is None or series is None or volume is None:
            return
        at = [i for i, f in enumerate(series.slices) if f is not None and f.sop_instance_uid == sop]
        if at and len(series.slices) == volume.shape[0]:
            ijk = self.w.state.cursor_ijk.copy()
            ijk[0] = at[0]
            self.w.state.set_cursor_index(ijk)

    # -- send back
    def _offered(self) -> tuple[dict[str, tuple[str, str]], LabelMap | None, bool, AIOutput | None]:
        ann, results = self.w.annotation, self.w.ai.results
        labels = None
        if ann.editor is not None and ann.editor.label_map.segments:
            lm = ann.editor.label_map
            labels = LabelMap(lm.array.copy(), dict(lm.segments), lm.series_key)
        done = ann.store is not None and ann.store.status.state == DONE
        ai = None
        if results is not None:
            ai = AIOutput(results.mask_layer.array.copy(), results.card, list(results.findings))
        offered = {
            LABELS: (
                f"Your labels as DICOM SEG ({'marked done' if done else 'draft'})",
                "" if labels is not None else "There are no labels on this series.",
            ),
            AI_SEG: (
                "The AI's findings as DICOM SEG",
                "" if ai is not None else "The AI has not run on this series.",
            ),
            REPORT: (
                "The findings report (DICOM SR TID 1500, with your decisions)",
                "" if ai is not None and ai.findings else "There are no AI findings.",
            ),
        }
        return offered, labels, done, ai

    def send_dialog(self) -> SendDialog | None:
        try:
            nodes = load_nodes()
        except MedviewError as err:
            self.w.message("PACS nodes", str(err), QtWidgets.QMessageBox.Icon.Warning)
            return None
        if not nodes:
            self.w.message(
                "No PACS node",
                "No PACS node is saved yet; add one under File > PACS: Query / Retrieve…, Nodes.",
            )
            return None
        offered, *_ = self._offered()
        dialog = SendDialog(nodes, offered, self.w)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.send(dialog.node.currentData(), dialog.chosen()))
        dialog.open()
        return dialog

    def send(self, node: Node, chosen: set[str]) -> JobWorker | None:
        """Send what is `chosen` (LABELS, AI_SEG, REPORT) of the open series to `node`."""
        series = self._series()
        if series is None or (self.worker is not None and self.worker.running):
            return None
        _, labels, done, ai = self._offered()
        labels = labels if LABELS in chosen else None
        if ai is not None and AI_SEG not in chosen:
            ai = None
        elif ai is not None and REPORT not in chosen:
            ai = AIOutput(ai.mask, ai.card, [])
        worker = JobWorker(send_results_job, node, series, labels, done, ai, parent=self)
        worker.result.connect(lambda r: self._sent(node, r))
        worker.failed.connect(
            lambda sentence: (
                self.w.status_label.setText(f"Nothing was sent to {node.name}: see the message."),
                self.w.message("Send to PACS failed", sentence, QtWidgets.QMessageBox.Icon.Warning),
            )
        )
        worker.finished.connect(self._update_enabled)
        self.worker = worker
        self.w.status_label.setText(f"Sending to {node.name}…")
        worker.start(self._pool)
        self._update_enabled()
        return worker

    def _sent(self, node: Node, r: SentResults) -> None:
        self.w.status_label.setText(
            f"Sent {', '.join(r.what)} to {node.name} "
            f"({r.sent} instances)." + "".join(f" {n}" for n in r.notes)
        )
        self.sent.emit(r)

    def shutdown(self, wait_ms: int = 5000) -> None:
        if self.pacs_window is not None:
            self.pacs_window.receive.stop()
        self._pool.waitForDone(wait_ms)

"""The prior comparison from the main window: File > Compare with Prior Study lists the priors
the study browser knows for the open series (newest first) and "Other Folder…"; the browser's
own "Compare with prior" button and right-click ask for one too. The prior loads off the GUI
thread (jobs.studies.load_job) and opens beside the open study (ui.prior_compare); when the
AI panel has a result on the open study, or gets one later, the window pairs the AI's
findings on both studies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtWidgets

from medview.core.errors import MedviewError
from medview.core.series import SeriesInfo
from medview.core.volume import Volume
from medview.jobs.studies import load_job
from medview.ui.prior_compare import (
    AISource,
    PriorCompare,
    open_prior_compare,
    show_compare,
    study_of,
)
from medview.ui.workers import JobWorker
from medview.viewer.ai_results import AIResults

if TYPE_CHECKING:
    from medview.ui.main_window import MainWindow

TITLE = "Compare with prior"


def series_folder(series: SeriesInfo) -> Path:
    return Path(series.frames[0].source.path).parent


class PriorActions(QtCore.QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.window: PriorCompare | None = None
        self.worker: JobWorker | None = None
        # owned by the app (see ui/segmentation_files.py: a pool freed by the GC deadlocks)
        self._pool = QtCore.QThreadPool(QtCore.QCoreApplication.instance())
        self.menu = window.menus.prior_menu
        self.menu.aboutToShow.connect(self.rebuild_menu)
        window.browser.compare_requested.connect(self.compare_series)
        window.ai.result_shown.connect(self._on_ai_result)
        # a new threshold: the prior's findings at it too; a decision: paired again
        window.ai.display.findings_changed.connect(self._on_ai_threshold)
        window.ai.table.decided.connect(self._on_ai_decided)

    def rebuild_menu(self) -> None:
        self.menu.clear()
        for prior in self.w.browser.priors:
            date = prior.study.study_date
            text = f"{date[:4]}-{date[4:6]}-{date[6:8]}  {prior.study.description}".strip()
            act = self.menu.addAction(text)
            act.triggered.connect(lambda _=False, s=prior.series: self.compare_series(s))
        if self.w.browser.priors:
            self.menu.addSeparator()
        self.menu.addAction("Other &Folder…").triggered.connect(
            lambda _=False: self.compare_folder()
        )

    def _current(self) -> tuple[Volume, Path] | None:
        w = self.w
        if w.state.volume is None or w.series is None or not w.series.frames:
            w.message(TITLE, "Open the current DICOM study first.")
            return None
        return w.state.volume, series_folder(w.series)

    def compare_folder(self, folder: str = "") -> None:
        """The open study beside the one in a folder the reader picks (read on this thread:
        the reader waits for it anyway)."""
        current = self._current()
        if current is None:
            return
        folder = folder or QtWidgets.QFileDialog.getExistingDirectory(
            self.w, "Prior study of this patient"
        )
        if not folder:
            return
        try:
            self._opened(open_prior_compare(self.w, *current, Path(folder)))
        except (MedviewError, ValueError) as exc:
            self.w.message("Could not compare", str(exc), QtWidgets.QMessageBox.Icon.Warning)

    def compare_series(self, series: SeriesInfo) -> None:
        """The open study beside `series` (a prior the browser offered), loaded off the GUI
        thread; the status bar says how far it is."""
        if self._current() is None:
            return
        if self.worker is not None and self.worker.running:
            self.worker.cancel()
        self.worker = worker = JobWorker(load_job, series, parent=self)
        worker.result.connect(lambda v: self._loaded(worker, series, v))
        worker.failed.connect(
            lambda text: self.w.message(
                "Could not compare", text, QtWidgets.QMessageBox.Icon.Warning
            )
        )
        self.w.status_label.setText("Loading the prior study…")
        worker.start(self._pool)

    def _loaded(self, worker: JobWorker, series: SeriesInfo, prior: Volume) -> None:
        current = self._current() if worker is self.worker else None
        if current is None:
            return  # superseded by a later request, or the open study went
        try:
            window = show_compare(
                self.w,
                study_of(prior, series_folder(series), series.key),
                study_of(*current, self.w.state.series_key),
            )
        except ValueError as exc:
            self.w.message("Could not compare", str(exc), QtWidgets.QMessageBox.Icon.Warning)
            return
        self._opened(window)

    def _opened(self, window: PriorCompare) -> None:
        if self.window is not None:
            self.window.close()
        self.window = window
        self.w.status_label.setText("Prior study beside the open one.")
        results = self.w.ai.results
        if results is not None:
            self._on_ai_result(results)

    def _on_ai_result(self, results: AIResults) -> None:
        """The AI's result on the open study: the comparison pairs its findings too."""
        window = self.window
        if window is None or not window.isVisible():
            return
        if results.volume is not window.current_state.volume:
            return  # a result on another series than the one compared
        window.use_ai(
            AISource(
                results.result,
                list(results.findings),
                device=self.w.ai.device_combo.currentData() or "auto",
                tta=results.tta,
            )
        )

    def _on_ai_threshold(self) -> None:
        if self.w.ai.results is not None:
            self._on_ai_result(self.w.ai.results)

    def _on_ai_decided(self, _ids: object, _decision: str) -> None:
        """After the AI panel's own handler (connected first) recorded the decision."""
        results, window = self.w.ai.results, self.window
        if results is not None and window is not None and window.isVisible():
            window.decisions_changed(list(results.findings))

"""PriorCompare: the prior study beside the current one, scrolled together by table position,
with each finding's growth (viewer.growth) listed below.

Each study has its own ViewerState and axial SliceView (the reader can window, zoom and
scroll either); window, level and invert are kept alike in both, and a slice change in one
moves the other to the same point of the patient:
the current point less the alignment shift (body centres across the table, table position
plus the reader's offset along it). The offset box is for a breath held differently; it
moves the prior, not the findings' pairing reach. Double-clicking a row goes to that
finding in both views.

Which findings are paired, as the line above the list says: the AI's on both studies once
the current one has an AI result (`use_ai`: the same model, threshold and options run on the
prior, off the GUI thread; a kept result answers at once; findings the reader rejected are
left out; a new threshold or decision there is followed), else a demo study's ground truth
(lesions.json), else none."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.findings import Finding
from medview.core.volume import Volume
from medview.jobs.ai_assist import live_infer_job
from medview.ui.slice_view import SliceView
from medview.ui.workers import JobWorker
from medview.viewer import state as st
from medview.viewer.ai_results import AIResults
from medview.viewer.growth import (
    Lesion,
    Pair,
    alignment,
    body_centre_xy,
    days_between,
    growth_rows,
    lesions_from_findings,
    pair_findings,
    truth_lesions,
)
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState

COLUMNS = (
    "Finding",
    "Status",
    "Ø then mm",
    "Ø now mm",
    "Vol then ml",
    "Vol now ml",
    "Change %",
    "VDT days",
)
MAX_OFFSET_MM = 200.0
STATUS_COLOURS = {"new": "#e07020", "gone": "#808080"}  # paired rows keep the text colour


@dataclass
class Study:
    volume: Volume
    lesions: list[Lesion]
    date: str = ""  # DICOM YYYYMMDD
    series_key: str = ""  # lets a second AI run on the same series reuse the first


@dataclass(frozen=True)
class AISource:
    """The current study's AI result and how it was made, so the prior's is made the same
    way: the same model and version (its card's reference), threshold, device and TTA."""

    result: Any  # jobs.inference.InferenceResult on the current volume
    findings: list[Finding] = field(default_factory=list)  # the reader's view of them
    device: str = "auto"
    tta: bool = False

    @property
    def kept(self) -> list[Finding]:
        return [f for f in self.findings if f.decision != "rejected"]


def _cell(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class PriorCompare(QtWidgets.QWidget):
    def __init__(
        self, prior: Study, current: Study, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Prior comparison")
        self.prior_state, self.current_state = ViewerState(), ViewerState()
        self.prior_state.set_volume(prior.volume, prior.series_key)
        self.current_state.set_volume(current.volume, current.series_key)
        w = self.current_state.window
        self.prior_state.set_window(w.center, w.width, w.name)
        self.prior_view = SliceView(self.prior_state, Plane.AXIAL)
        self.current_view = SliceView(self.current_state, Plane.AXIAL)
        self._xy = (
            body_centre_xy(prior.volume.array, prior.volume.affine),
            body_centre_xy(current.volume.array, current.volume.affine),
        )
        self.days = days_between(prior.date, current.date)
        self.pairs: list[Pair] = pair_findings(prior.lesions, current.lesions, self.shift)
        self._syncing = False
        self.ai_source: AISource | None = None
        self.worker: JobWorker | None = None
        self._overlays: list[AIResults] = []

        self.offset_box = QtWidgets.QDoubleSpinBox()
        self.offset_box.setRange(-MAX_OFFSET_MM, MAX_OFFSET_MM)
        self.offset_box.setDecimals(1)
        self.offset_box.setSuffix(" mm")
        self.offset_box.setKeyboardTracking(False)
        self.offset_box.setToolTip(
            "Where the prior's slices lie against the current's along "
            "the table, beyond the scanner's table position"
        )
        self.offset_box.valueChanged.connect(lambda _v: self._follow(self.current_state))
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.cellDoubleClicked.connect(self.go_to_pair)

        views = QtWidgets.QHBoxLayout()
        for title, date, view in (
            ("Prior", prior.date, self.prior_view),
            ("Current", current.date, self.current_view),
        ):
            box = QtWidgets.QVBoxLayout()
            box.addWidget(QtWidgets.QLabel(f"<b>{title}</b> {_date(date)}"))
            box.addWidget(view, 1)
            views.addLayout(box, 1)
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Prior offset along the table"))
        bar.addWidget(self.offset_box)
        interval = f"{self.days:.0f} days apart" if self.days is not None else "dates unknown"
        self.summary = QtWidgets.QLabel(interval)
        bar.addWidget(self.summary, 1)
        self.source_label = QtWidgets.QLabel(
            "Findings: the demo's ground truth (lesions.json); run the AI on the current "
            "study to pair its findings instead"
            if prior.lesions or current.lesions
            else "Findings: none yet; run the AI on the current study to pair its findings"
        )
        self.source_label.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(views, 3)
        layout.addLayout(bar)
        layout.addWidget(self.source_label)
        layout.addWidget(self.table, 1)
        self._fill_table()
        for s in (self.prior_state, self.current_state):
            s.subscribe(lambda what, s=s: self._on_state(s, what))
        self._follow(self.current_state)

    @property
    def shift(self) -> np.ndarray:
        """current - prior, in LPS mm."""
        offset = self.offset_box.value() if hasattr(self, "offset_box") else 0.0
        return alignment(*self._xy, offset)

    # -- AI findings on both studies
    def use_ai(self, source: AISource) -> None:
        """Pair the AI's findings: run the model that made `source` on the prior (a kept
        result answers without a run) and list both studies' findings once it is back."""
        if self.worker is not None and self.worker.running:
            self.worker.cancel()
        self.ai_source = source
        ref = source.result.card.ref
        self.worker = JobWorker(
            live_infer_job,
            self.prior_state.volume,
            ref,
            parent=self,
            device=source.device,
            tta=source.tta,
            threshold=float(source.result.threshold),
            series_key=self.prior_state.series_key,
        )
        worker = self.worker
        worker.progress.connect(
            lambda p: self.source_label.setText(
                f"Running AI {ref} on the prior: {p.message} "
                + (f"({p.fraction:.0%})" if p.fraction >= 0 else "")
            )
        )
        worker.result.connect(lambda r: self._on_prior_ai(worker, r))
        worker.failed.connect(
            lambda text: self.source_label.setText(f"AI on the prior failed: {text}")
        )
        self.source_label.setText(f"Running AI {ref} on the prior…")
        worker.start()

    def decisions_changed(self, findings: list[Finding]) -> None:
        """The reader accepted or rejected findings on the current study: paired again with
        the prior's findings as they are (no model runs)."""
        source = self.ai_source
        if source is None or not self._overlays:
            return
        self.ai_source = replace(source, findings=list(findings))
        self._pair_ai(self.ai_source)

    def _on_prior_ai(self, worker: JobWorker, prior_result: Any) -> None:
        source = self.ai_source
        if source is None or worker is not self.worker:
            return  # superseded by a later result on the current study
        for overlay in self._overlays:
            overlay.detach()
        self._overlays = [
            AIResults(self.prior_state, prior_result),
            AIResults(self.current_state, source.result),
        ]
        self._pair_ai(source)

    def _pair_ai(self, source: AISource) -> None:
        self.pairs = pair_findings(
            lesions_from_findings(self._overlays[0].result.findings),
            lesions_from_findings(source.kept),
            self.shift,
        )
        self._fill_table()
        self.source_label.setText(
            f"Findings: AI {source.result.card.ref} on both studies at p ≥ "
            f"{float(source.result.threshold):.2f} — AI assistance, not a diagnosis"
        )

    def closeEvent(self, event) -> None:
        if self.worker is not None and self.worker.running:
            self.worker.cancel()
        super().closeEvent(event)

    def _fill_table(self) -> None:
        rows = growth_rows(self.pairs, self.days or 0.0)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            change = row["volume_change_pct"]
            values = (
                row["name"],
                row["status"],
                row["diameter_then_mm"],
                row["diameter_now_mm"],
                row["volume_then_ml"],
                row["volume_now_ml"],
                None if change is None else f"{change:+.0f}",
                row["doubling_days"],
            )
            for c, value in enumerate(values):
                item = QtWidgets.QTableWidgetItem(_cell(value))
                if row["status"] in STATUS_COLOURS:
                    item.setForeground(QtGui.QColor(STATUS_COLOURS[row["status"]]))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        counts = {s: sum(p.status == s for p in self.pairs) for s in ("paired", "new", "gone")}
        self.table.setToolTip(
            f"{counts['paired']} paired, {counts['new']} new, {counts['gone']} gone"
        )

    def _on_state(self, source: ViewerState, what: str) -> None:
        if what == st.CURSOR:
            self._follow(source)
        elif what == st.WINDOW:
            self._same_window(source)

    def _same_window(self, source: ViewerState) -> None:
        """Window, level and invert alike in both: a change read against the same grey."""
        target = self.prior_state if source is self.current_state else self.current_state
        w = source.window
        if self._syncing or (target.window, target.invert) == (w, source.invert):
            return
        self._syncing = True
        try:
            target.invert = source.invert
            target.set_window(w.center, w.width, w.name)
        finally:
            self._syncing = False

    def _follow(self, source: ViewerState) -> None:
        """Move the other study to the point of the patient `source` shows."""
        if self._syncing:
            return
        target = self.prior_state if source is self.current_state else self.current_state
        sign = -1.0 if source is self.current_state else 1.0
        point = source.cursor_lps() + sign * self.shift
        self._syncing = True
        try:
            target.set_cursor_index(target.volume.lps_to_index(point))
        finally:
            self._syncing = False

    def go_to_pair(self, row: int, _col: int = 0) -> None:
        pair = self.pairs[row]
        if pair.now is not None:
            ijk = self.current_state.volume.lps_to_index(pair.now.centre_lps_mm)
            self.current_state.set_cursor_index(ijk)
        else:
            ijk = self.prior_state.volume.lps_to_index(pair.then.centre_lps_mm)
            self.prior_state.set_cursor_index(ijk)


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def study_of(volume: Volume, folder: Path, series_key: str = "") -> Study:
    """A study for the comparison: its volume and, for a demo study, its ground truth.
    ValueError with one sentence for a broken lesions.json."""
    lesions = truth_lesions(_study_root(folder)) or []
    return Study(volume, lesions, volume.metadata.study_date, series_key)


def show_compare(parent: QtWidgets.QWidget | None, prior: Study, current: Study) -> PriorCompare:
    """The comparison as a window of its own, shown."""
    window = PriorCompare(prior, current, parent=parent)
    window.setWindowFlag(QtCore.Qt.WindowType.Window)
    window.resize(1200, 800)
    window.show()
    return window


def open_prior_compare(
    parent: QtWidgets.QWidget | None, current: Volume, current_folder: Path, prior_folder: Path
) -> PriorCompare:
    """The comparison of the open study with the one in `prior_folder` (read here, for a
    folder the reader picks). Raises InvalidInputError / ValueError with one sentence for a
    folder that cannot serve."""
    from medview.io.open_volume import load_volume

    prior, _series = load_volume([prior_folder])
    return show_compare(parent, study_of(prior, prior_folder), study_of(current, current_folder))


def _study_root(folder: Path) -> Path:
    """A demo study's folder from its series folder or itself."""
    folder = Path(folder)
    return folder.parent if folder.name == "series" else folder

"""Two versions of a model on the open study, side by side: the comparison view of the
fine-tuning issue ("both versions' overlays on the same study and their metrics side by
side").

Two linked views of the same plane — slice, crosshair, window/level, zoom and pan move
together (viewer.version_compare.LinkedStates for the states, pyqtgraph's view links for the
zoom) — each with its version's findings mask in the card's label colours and, optionally,
the other version's outline in that version's colour. Beside them: each version's findings
on this study, the two cards' validation numbers (panels.version_compare.metric_rows, the
same rows as the Compare dialog), and the findings only one version has; clicking one
centres both views on it.

The views show the study that was open when the comparison started (the same Volume object,
no copy), in states of their own, so the main viewer stays free to scroll, measure or open
another study meanwhile. Both versions run as one job (jobs.version_compare) on this
window's own thread pool, with progress and cancel; a version that already ran on this
series is shown from its kept result without running again."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medview.ai.models.cards import DISCLAIMER
from medview.ai.models.registry import ModelEntry
from medview.jobs.version_compare import VersionRun, compare_versions_job
from medview.ui.panels.ai_panel import HEADER_STYLE
from medview.ui.panels.version_compare import fill_table, metric_rows, table_value
from medview.ui.slice_view import SliceView
from medview.ui.workers import JobWorker
from medview.viewer.ai_results import MASK_MODES, MASK_OPACITY, focus_rect_mm
from medview.viewer.planes import Plane, native_plane
from medview.viewer.state import ViewerState
from medview.viewer.version_compare import (
    SIDES,
    VERSION_COLOURS,
    LinkedStates,
    OnlyIn,
    differences,
    version_layers,
)

THRESHOLD = 0.5  # the findings threshold the cards' validation numbers use
_ROLE = QtCore.Qt.ItemDataRole.UserRole


def _swatch(colour: tuple[int, ...], text: str) -> str:
    return f'<span style="color: rgb{tuple(colour[:3])}">■</span> {text}'


class VersionOverlayCompare(QtWidgets.QDialog):
    message = QtCore.Signal(str)  # one sentence for the status bar

    def __init__(
        self,
        viewer: ViewerState,
        first: ModelEntry,
        second: ModelEntry,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if viewer.volume is None:
            raise ValueError("the comparison needs a study on screen")
        self.entries = (first, second)
        self.volume, self.series_key = viewer.volume, viewer.series_key
        self.states = (ViewerState(), ViewerState())
        for state in self.states:
            state.set_volume(self.volume, self.series_key)
            state.set_window(viewer.window.center, viewer.window.width, viewer.window.name)
            if state.invert != viewer.invert:
                state.toggle_invert()
            state.set_cursor_index(viewer.cursor_ijk)
        self.link = LinkedStates(self.states)
        self.runs: list[VersionRun | None] = [None, None]
        self.layers: list[tuple | None] = [None, None]  # (own, outline) per side
        self.diffs: list[OnlyIn] = []
        self.views: list[SliceView] = []
        # its own (shutdown() cancels and waits for it), owned by the application: a pool
        # freed by Python's garbage collector waits for its threads while holding the GIL
        # they need, which hung a test run when a closed window was collected
        self._pool = QtCore.QThreadPool(QtCore.QCoreApplication.instance())
        self.worker: JobWorker | None = None
        self._running = False
        self._todo: list[int] = []  # the sides the running job's versions are for
        self.setWindowTitle(
            f"Compare {first.ref} and {second.ref} on "
            f"{self.volume.metadata.series_description or 'the open series'}"
        )
        app = QtCore.QCoreApplication.instance()
        if app is not None:  # the app quits with this window open: end its job first
            app.aboutToQuit.connect(self.shutdown)
        self._build()
        self._make_views(native_plane(self.volume.affine))
        self.resize(1280, 720)
        self.run()

    # -- building
    def _build(self) -> None:
        a, b = self.entries
        self.header = QtWidgets.QLabel(f"{DISCLAIMER} · A = {a.ref}, B = {b.ref}", wordWrap=True)
        self.header.setStyleSheet(HEADER_STYLE)
        self.titles = [QtWidgets.QLabel(textFormat=QtCore.Qt.TextFormat.RichText) for _ in SIDES]
        panes = QtWidgets.QHBoxLayout()
        self._pane_layouts = []
        for title in self.titles:
            box = QtWidgets.QVBoxLayout()
            box.addWidget(title)
            panes.addLayout(box, 1)
            self._pane_layouts.append(box)
        self.plane_combo = QtWidgets.QComboBox(toolTip="The plane both views show")
        for plane in Plane:
            self.plane_combo.addItem(plane.value.capitalize(), plane)
        self.plane_combo.activated.connect(lambda: self._make_views(self.plane_combo.currentData()))
        self.mask_combo = QtWidgets.QComboBox(toolTip="Each view's own version's findings")
        self.mask_combo.addItems([m.capitalize() for m in MASK_MODES])
        self.mask_combo.activated.connect(self._show_layers)
        self.other_box = QtWidgets.QCheckBox(
            "Outline the other version",
            checked=True,
            toolTip="In each view, the other version's findings as an outline in its colour",
        )
        self.other_box.toggled.connect(self._show_layers)
        self.legend = QtWidgets.QLabel(wordWrap=True, textFormat=QtCore.Qt.TextFormat.RichText)
        self.run_button = QtWidgets.QPushButton(
            "Run", clicked=self.run, toolTip="Run the versions not shown yet"
        )
        self.cancel_button = QtWidgets.QPushButton("Cancel", clicked=self.cancel)
        self.progress = QtWidgets.QProgressBar(textVisible=False, maximumHeight=10)
        self.progress.setRange(0, 1000)
        self.status = QtWidgets.QLabel(wordWrap=True)
        self.metrics = QtWidgets.QTableWidget(0, 4)
        self.metrics.setHorizontalHeaderLabels(["", "A", "B", "B − A"])
        self.metrics.verticalHeader().hide()
        self.metrics.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.metrics.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.metrics.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_note = QtWidgets.QLabel(wordWrap=True)
        self.diff_list = QtWidgets.QListWidget(toolTip="Click to centre both views on it")
        self.diff_list.itemClicked.connect(lambda item: self.go_to(item.data(_ROLE)))
        self.diff_list.itemActivated.connect(lambda item: self.go_to(item.data(_ROLE)))

        form = QtWidgets.QFormLayout()
        form.addRow("Plane", self.plane_combo)
        form.addRow("Own findings", self.mask_combo)
        form.addRow("", self.other_box)
        run = QtWidgets.QHBoxLayout()
        run.addWidget(self.run_button, 1)
        run.addWidget(self.cancel_button)
        side = QtWidgets.QVBoxLayout()
        side.addLayout(form)
        side.addWidget(self.legend)
        side.addLayout(run)
        side.addWidget(self.progress)
        side.addWidget(self.status)
        side.addWidget(QtWidgets.QLabel("<b>On this study and on the cards' validation</b>"))
        side.addWidget(self.metrics, 2)
        side.addWidget(self.metrics_note)
        side.addWidget(QtWidgets.QLabel("<b>Found by one version only</b>"))
        side.addWidget(self.diff_list, 1)
        side_widget = QtWidgets.QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(380)
        body = QtWidgets.QHBoxLayout()
        body.addLayout(panes, 1)
        body.addWidget(side_widget)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(body, 1)
        self._fill_metrics()
        self._show_titles()
        self._update_enabled()

    def _make_views(self, plane: Plane) -> None:
        """Both views on `plane` (new ones: a SliceView shows one plane), zoom linked."""
        for view in self.views:
            view.setParent(None)
            view.deleteLater()
        self.views = [SliceView(state, plane) for state in self.states]
        for box, view in zip(self._pane_layouts, self.views, strict=True):
            box.addWidget(view, 1)
        self.views[1].vb.setXLink(self.views[0].vb)
        self.views[1].vb.setYLink(self.views[0].vb)
        with QtCore.QSignalBlocker(self.plane_combo):
            self.plane_combo.setCurrentIndex(list(Plane).index(plane))
        QtCore.QTimer.singleShot(0, self, self.views[0].fit)

    # -- running both versions
    def run(self) -> None:
        """Run (or show the kept results of) the versions not shown yet."""
        if self.busy():
            return
        todo = [i for i in (0, 1) if self.runs[i] is None]
        if not todo:
            return
        folders = [self.entries[i].folder for i in todo]
        self._todo = todo
        self.worker = JobWorker(
            compare_versions_job,
            self.volume,
            folders,
            series_key=self.series_key,
            threshold=THRESHOLD,
        )
        self.worker.progress.connect(self._on_progress)
        self.worker.event.connect(self._on_run)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.finished.connect(self._on_finished)
        self.progress.setValue(0)
        self._say("Running " + " and ".join(self.entries[i].ref for i in todo) + " on this study…")
        self._running = True
        self.worker.start(self._pool)
        self._show_titles()
        self._update_enabled()

    def busy(self) -> bool:
        """Running, until its end has reached this window (the worker's own flag drops
        on the pool thread, a moment before its last signals arrive here)."""
        return self._running

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Cancel what runs and wait for it, before the window goes."""
        if self.worker is not None and self.worker.running:
            self.worker.cancel()
        self._pool.waitForDone(wait_ms)

    def cancel(self) -> None:
        """Stop the job within a batch of slices; a version already in stays shown."""
        if self.busy():
            self.worker.cancel()
            self._say("Cancelling…")

    def done(self, code: int) -> None:
        self.shutdown()
        super().done(code)

    def closeEvent(self, ev) -> None:
        self.shutdown()
        super().closeEvent(ev)

    def _on_progress(self, p) -> None:
        if self.sender() is self.worker and p.fraction >= 0:
            self.progress.setValue(round(p.fraction * 1000))

    def _on_run(self, run: object) -> None:
        if self.sender() is not self.worker or not isinstance(run, VersionRun):
            return
        side = self._todo[run.index]
        self.runs[side] = run
        colours = {lab.value: tuple(lab.colour) for lab in run.result.card.labels}
        self.layers[side] = version_layers(run.result.card.ref, colours, run.label_map, side)
        self._show_layers()
        self._show_titles()
        if all(self.runs):
            maps = [r.label_map for r in self.runs]
            self.diffs = differences([r.result.findings for r in self.runs], maps)
            self._fill_diffs()
        self._fill_metrics()

    def _on_failed(self, sentence: str) -> None:
        if self.sender() is self.worker:
            self._say(sentence)
            self.message.emit(sentence)

    def _on_cancelled(self) -> None:
        if self.sender() is self.worker:
            self._say(
                "Cancelled; "
                + (
                    "the version that finished is shown."
                    if any(self.runs)
                    else "nothing was shown."
                )
            )

    def _on_finished(self) -> None:
        if self.sender() is not self.worker:
            return
        self._running = False
        self._update_enabled()
        self._show_titles()
        if all(self.runs):
            parts = []
            for side, run in enumerate(self.runs):
                r = run.result
                how = "kept result" if r.reused else f"{sum(r.timings.values()):.1f} s"
                parts.append(f"{SIDES[side]} {r.card.ref}: {len(r.findings)} finding(s) ({how})")
            self._say("; ".join(parts) + f"; {len(self.diffs)} found by one version only.")

    # -- what is shown
    def _show_layers(self) -> None:
        """Each side: its own mask as the mask combo says, the other's outline on top."""
        mode = MASK_MODES[self.mask_combo.currentIndex()]
        for side, state in enumerate(self.states):
            own = self.layers[side][0] if self.layers[side] else None
            other = self.layers[1 - side][1] if self.layers[1 - side] else None
            if own is not None:
                own.visible = mode != "off"
                own.outline = mode == "outline"
                own.opacity = MASK_OPACITY.get(mode, own.opacity)
            if other is not None:
                other.visible = self.other_box.isChecked()
            wanted = [x for x in (own, other) if x is not None]
            if [id(x) for x in state.layers] != [id(x) for x in wanted]:
                for layer in list(state.layers):
                    state.remove_layer(layer)
                for layer in wanted:
                    state.add_layer(layer)
            else:
                state.layers_changed()
        labels = next((r.result.card.labels for r in self.runs if r), [])
        swatches = " ".join(_swatch(lab.colour, lab.name) for lab in labels)
        parts = [
            f"Each view's own version, {'hidden' if mode == 'off' else mode}"
            + (f": {swatches}" if swatches else "")
            + "."
        ]
        if self.other_box.isChecked():
            parts.append(
                "The other version's outline: "
                + ", ".join(
                    _swatch(VERSION_COLOURS[i], f"{SIDES[i]} {e.ref}")
                    for i, e in enumerate(self.entries)
                )
                + "."
            )
        self.legend.setText(" ".join(parts) + f"<br><i>{DISCLAIMER}</i>")

    def _show_titles(self) -> None:
        for side, (title, entry) in enumerate(zip(self.titles, self.entries, strict=True)):
            run = self.runs[side]
            if run is not None:
                found = f"{len(run.result.findings)} finding(s) at p ≥ {THRESHOLD:.2f}"
            else:
                found = "running…" if self.busy() else "not run"
            title.setText(
                _swatch(VERSION_COLOURS[side], f"<b>{SIDES[side]} · {entry.ref}</b> — {found}")
            )

    def _fill_metrics(self) -> None:
        where, rows, conditions = metric_rows(*self.entries)
        counts = [len(r.result.findings) if r else None for r in self.runs]
        only = [sum(d.side == i for d in self.diffs) if all(self.runs) else None for i in (0, 1)]
        study = []
        for name, (va, vb) in (
            ("findings on this study", counts),
            ("found by this version only", only),
        ):
            diff = "" if va is None or vb is None else f"{vb - va:+d}"
            study.append(
                (name, "—" if va is None else str(va), "—" if vb is None else str(vb), diff)
            )
        fill_table(self.metrics, study + rows, conditions)
        self.metrics_note.setText(f"Validation numbers: {where}.")

    def value(self, metric: str, column: int) -> str:
        """The text shown for `metric` (a card's key or a row name) in column 1 (A), 2 (B)
        or 3 (B − A); for tests."""
        return table_value(self.metrics, metric, column)

    def _fill_diffs(self) -> None:
        self.diff_list.clear()
        for i, d in enumerate(self.diffs):
            item = QtWidgets.QListWidgetItem(d.describe())
            item.setData(_ROLE, i)
            item.setToolTip(
                f"{self.entries[d.side].ref} found it; {self.entries[1 - d.side].ref} did not"
            )
            self.diff_list.addItem(item)
        if not self.diffs:
            self.diff_list.addItem("Both versions found the same regions.")

    def go_to(self, index: int | None) -> None:
        """Both views to a finding only one version has, zoomed to it with a margin."""
        if index is None or not 0 <= index < len(self.diffs):
            return
        finding = self.diffs[index].finding
        with QtCore.QSignalBlocker(self.diff_list):
            self.diff_list.setCurrentRow(index)
        self.states[0].set_cursor_index(finding.centroid_index)  # the link moves the other
        plane = self.views[0].plane
        x, y, w, h = focus_rect_mm(finding, self.states[0].maps[plane])
        self.views[0].vb.setRange(QtCore.QRectF(x, y, w, h), padding=0.0)
        self._say(self.diffs[index].describe() + ".")

    def _update_enabled(self) -> None:
        busy = self.busy()
        self.run_button.setEnabled(not busy and not all(self.runs))
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)

    def _say(self, text: str) -> None:
        self.status.setText(text)

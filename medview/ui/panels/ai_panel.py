"""AIPanel: run a segmentation model on the open series and review what it found.

Top to bottom: the "AI assistance — not a diagnosis" header with the model shown; the model
picker (bundled and the user's segmentation models, the active one first chosen) with its
validation numbers; device and test-time augmentation; Run / Cancel with progress; the
display of the result (threshold, probability heatmap, mask filled or outlined,
uncertainty, legend); the findings table; and Grad-CAM "Explain slice" by the slice
classifier when one is installed. "Accept into labels" hands findings to the main window's
Annotation (`into_labels`), which copies them into the label map and accepts them here.

Everything slow is a job run by JobWorker (jobs.ai_assist): the model runs with one torch
thread so the reader keeps scrolling and measuring meanwhile, cancel lands within a batch,
and a result for a series no longer shown is dropped. The slab around the reader's slice
comes first and is drawn at once, marked partial (`partial`), until the whole result
replaces it; a cancelled or failed run leaves what was shown before. The threshold slider
needs no model: AIResults recomputes mask and findings from the kept probabilities,
debounced by 100 ms."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtWidgets

from medview.ai.models.card_numbers import development, development_title
from medview.ai.models.cards import DISCLAIMER
from medview.ai.models.registry import ModelEntry, active_model, scan_models
from medview.core.errors import MedviewError
from medview.io import series_files
from medview.io.workspace import reader_name
from medview.jobs.ai_assist import (
    check_model_fits,
    devices_job,
    has_kept_result,
    live_infer_job,
)
from medview.jobs.inference import PartialSegmentation
from medview.ui.panels.ai_display import AIDisplay
from medview.ui.panels.explain_box import ExplainBox
from medview.ui.panels.findings_table import FindingsTable
from medview.ui.panels.model_import import ModelImporter
from medview.ui.settings import Settings
from medview.ui.slice_view import SliceView
from medview.ui.workers import JobWorker
from medview.viewer import state as st
from medview.viewer.ai_results import AIResults, focus_rect_mm, window_for_label
from medview.viewer.finding_store import FindingStore
from medview.viewer.state import ViewerState

DEVICES = (("auto", "Auto"), ("cpu", "CPU"), ("cuda", "CUDA"), ("mps", "Apple MPS"))
_MAIN_METRICS = ("sensitivity", "per_study", "dice", "auc", "accuracy")
HEADER_STYLE = "color: #f0b040; font-weight: bold;"


class AIPanel(QtWidgets.QWidget):
    message = QtCore.Signal(str)  # one sentence for the status bar
    result_shown = QtCore.Signal(object)  # AIResults, once on screen
    partial_shown = QtCore.Signal(object)  # AIResults of the focus slab, while the run goes on
    # (AIResults, [Finding]) to copy into the label map; the receiver accepts them (decide)
    into_labels = QtCore.Signal(object, object)

    def __init__(
        self,
        state: ViewerState,
        views: Callable[[], list[SliceView]],
        parent: QtWidgets.QWidget | None = None,
        settings: Settings | None = None,
    ) -> None:
        super().__init__(parent)
        self.state, self._views = state, views
        self.settings = settings  # where the window-by-finding choice is kept, when given
        # the panel's own pool (shutdown() cancels and waits for it), owned by the app: a
        # pool freed by Python's GC waits for its threads holding the GIL they need
        self._pool = QtCore.QThreadPool(QtCore.QCoreApplication.instance())
        self.results: AIResults | None = None  # the whole result on screen (None while partial)
        # the focus slab's result while the run goes on, and the result it replaced on
        # screen (back if the run is cancelled or fails)
        self.partial: AIResults | None = None
        self._before: AIResults | None = None
        self.entries: list[ModelEntry] = []
        self.worker: JobWorker | None = None
        self.last_message: QtWidgets.QMessageBox | None = None
        self._run_for: tuple | None = None  # (volume, series key) the running job is for
        self._devices: JobWorker | None = None
        self._build()
        self.refresh_models()
        state.subscribe(self._on_state)
        self.destroyed.connect(lambda *_, s=state, f=self._on_state: s.unsubscribe(f))
        self._restore_kept()

    # -- building
    def _build(self) -> None:
        self.header = QtWidgets.QLabel(DISCLAIMER, wordWrap=True)
        self.header.setStyleSheet(HEADER_STYLE)
        self.model_combo = QtWidgets.QComboBox(toolTip="Segmentation model to run")
        self.model_combo.currentIndexChanged.connect(self._show_card)
        self.card_label = QtWidgets.QLabel(wordWrap=True)
        self.device_combo = QtWidgets.QComboBox(
            toolTip="Where the model runs (Auto: CUDA, then Apple MPS, then the CPU)"
        )
        for key, text in DEVICES:
            self.device_combo.addItem(text, key)
        self._enable_devices(("auto", "cpu"), "Looking for GPUs…")
        self.device_combo.installEventFilter(self)
        self.tta_box = QtWidgets.QCheckBox(
            "Uncertainty",
            toolTip=(
                "Test-time augmentation (TTA): run the model also on flipped images (3x the "
                "time) and show where the runs disagree"
            ),
        )
        self.run_button = QtWidgets.QPushButton("Run", clicked=self.run)
        self.importer = ModelImporter(self, self._pool)
        self.importer.imported.connect(lambda entry: self.refresh_models(select=entry.ref))
        self.importer.said.connect(self._say)
        self.import_button = QtWidgets.QPushButton(
            "Import model…",
            clicked=self.importer.choose,
            toolTip="Add a MONAI bundle or an nnU-Net v2 model as a new model version",
        )
        self.cancel_button = QtWidgets.QPushButton("Cancel", clicked=self.cancel)
        self.progress = QtWidgets.QProgressBar(textVisible=False, maximumHeight=10)
        self.progress.setRange(0, 1000)
        self.status = QtWidgets.QLabel(wordWrap=True)
        self.display = AIDisplay(self.state, self._pool)
        self.display.mask_moved.connect(self._on_mask_moved)
        self.display.findings_changed.connect(self._on_findings_changed)
        self.display.failed.connect(lambda text: self._tell("Findings not measured", text))
        self.table = FindingsTable()
        self.table.activated.connect(self.go_to)
        self.window_box = QtWidgets.QCheckBox(
            "Window for the finding (lung for a lung nodule)",
            toolTip=(
                "Going to a finding sets the CT window its label calls for; untick to keep "
                "your own window"
            ),
        )
        self.window_box.setChecked(self.settings is None or self.settings.finding_window)
        self.window_box.toggled.connect(self._keep_window_choice)
        self.table.decided.connect(self.decide)
        self.table.to_labels.connect(self._to_labels)
        self.explain = ExplainBox(self.state, self._pool)
        self.explain.failed.connect(lambda text: self._tell("Explain slice failed", text))
        self.device_combo.currentIndexChanged.connect(
            lambda: setattr(self.explain, "device", self.device_combo.currentData())
        )

        form = QtWidgets.QGridLayout()
        form.addWidget(QtWidgets.QLabel("Model"), 0, 0)
        form.addWidget(self.model_combo, 0, 1, 1, 2)
        form.addWidget(self.card_label, 1, 0, 1, 3)
        form.addWidget(QtWidgets.QLabel("Device"), 2, 0)
        form.addWidget(self.device_combo, 2, 1)
        form.addWidget(self.tta_box, 2, 2)
        form.addWidget(self.import_button, 3, 0, 1, 3)
        form.setColumnStretch(1, 1)
        run = QtWidgets.QHBoxLayout()
        run.addWidget(self.run_button, 1)
        run.addWidget(self.cancel_button)
        # in a scroll area: the dock shares the right column, and a short one must still
        # reach every control (the findings table takes whatever room there is)
        inner = QtWidgets.QWidget()
        scroll = QtWidgets.QScrollArea(
            widgetResizable=True, frameShape=QtWidgets.QFrame.Shape.NoFrame
        )
        scroll.setWidget(inner)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        layout = QtWidgets.QVBoxLayout(inner)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.header)
        layout.addLayout(form)
        layout.addLayout(run)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.display)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.window_box)
        layout.addWidget(self.explain)

    def refresh_models(self, select: str | None = None) -> None:
        """Read the model cards again (no torch): segmentation models for the picker (on
        `select` when given: the version just activated, which is what Run must use), the
        slice classifier for Explain."""
        listing = scan_models()
        self.entries = [e for e in listing.models if e.card.task == "segmentation"]
        preferred = active_model("segmentation")
        current = next((e for e in self.entries if e.ref == select), None) or self.current_entry()
        with QtCore.QSignalBlocker(self.model_combo):
            self.model_combo.clear()
            for e in self.entries:
                self.model_combo.addItem(
                    f"{e.ref}  ({'bundled' if e.bundled else 'yours'})", str(e.folder)
                )
            keep = current or preferred
            refs = [e.ref for e in self.entries]
            if keep is not None and keep.ref in refs:
                self.model_combo.setCurrentIndex(refs.index(keep.ref))
        if not self.entries:
            self.model_combo.addItem("No segmentation model installed")
        classifiers = [
            e
            for e in listing.models
            if e.active and e.card.architecture == "medview.SliceClassifier"
        ]
        task_default = active_model("classification")
        self.explain.set_classifier(
            next(
                (e for e in classifiers if task_default and e.ref == task_default.ref),
                classifiers[0] if classifiers else None,
            )
        )
        self._show_card()
        self._update_enabled()
        if listing.problems:
            self._say(listing.problems[0])

    def current_entry(self) -> ModelEntry | None:
        folder = self.model_combo.currentData()
        return next((e for e in self.entries if str(e.folder) == folder), None)

    def _show_card(self) -> None:
        entry = self.current_entry()
        if entry is None:
            self.card_label.setText("Install a model with 'medview models import'.")
            return
        card = entry.card
        shown = _shown(card.validation)
        # numbers from seeds that shaped the model: labelled, and only in the tooltip
        dev = development(card.validation)
        dev_text = f"{development_title(card.validation)}: {_shown(dev)}\n{dev.get('note', '')}"
        labels = ", ".join(lab.name for lab in card.labels)
        self.card_label.setText(
            f"{card.ref} · {card.modality} · {labels}"
            + (
                f"\nValidation{' (held out)' if dev else ''}: {shown}"
                if shown
                else "\nNo validation numbers in its card."
            )
        )
        self.card_label.setToolTip(
            "\n\n".join(
                x
                for x in (
                    card.description,
                    card.training_data,
                    "\n".join(
                        f"{k}: {v}"
                        for k, v in card.validation.items()
                        if not isinstance(v, (list, dict))
                    ),
                    dev_text if dev else "",
                )
                if x
            )
        )

    def _enable_devices(
        self, available: tuple[str, ...], why_not: str = "Not found on this machine"
    ) -> None:
        items = self.device_combo.model()
        for i, (key, _) in enumerate(DEVICES):
            items.item(i).setEnabled(key in available)
            items.item(i).setToolTip("" if key in available else why_not)

    def _ask_devices(self) -> None:
        """Find which devices this machine has, once: the job imports torch, so it runs
        off the GUI thread and only when the reader reaches for the device list or runs a
        model, never while the window opens."""
        if self._devices is None:
            self._devices = JobWorker(devices_job, parent=self)
            self._devices.result.connect(self._enable_devices)
            self._devices.start(self._pool)

    def eventFilter(self, watched: QtCore.QObject, ev: QtCore.QEvent) -> bool:
        if watched is self.device_combo and ev.type() in (
            QtCore.QEvent.Type.MouseButtonPress,
            QtCore.QEvent.Type.KeyPress,
        ):
            self._ask_devices()
        return super().eventFilter(watched, ev)

    # -- running the model
    def run(self, *, auto: bool = False) -> None:
        """Run the chosen model on the open series (or show its kept result again)."""
        volume, entry = self.state.volume, self.current_entry()
        refusal = (
            "A model is still running; wait for it or cancel it first."
            if self.busy()
            else "Open a study first."
            if volume is None
            else "Choose a model first: none is installed for this task."
            if entry is None
            else ""
        )
        if refusal:
            if not auto:  # a kept result offered on opening waits for the next one quietly
                self._say(refusal)
            return
        try:
            warnings = check_model_fits(volume, entry.card)
        except MedviewError as error:
            self._tell("Model does not fit this series", str(error))
            return
        self._run_for = (volume, self.state.series_key)
        self.worker = JobWorker(
            live_infer_job,
            volume,
            entry.folder,
            parent=self,
            device=self.device_combo.currentData(),
            tta=self.tta_box.isChecked(),
            threshold=self.display.threshold(),
            series_key=self.state.series_key,
            focus=int(self.state.cursor_ijk[0]),
        )
        self.worker.progress.connect(self._on_progress)
        self.worker.event.connect(self._on_partial)
        self.worker.result.connect(self._on_result)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.finished.connect(self._update_enabled)
        self.progress.setValue(0)
        self._ask_devices()
        self._say(
            "Showing the kept result…" if auto else " ".join([f"Running {entry.ref}…", *warnings])
        )
        self.worker.start(self._pool)
        self._update_enabled()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Cancel what runs and wait briefly for it, before the window goes."""
        for worker in (self.worker, self.explain.worker, self._devices):
            if worker is not None and worker.running:
                worker.cancel()
        self._pool.waitForDone(wait_ms)

    def _restore_kept(self) -> None:
        """A series this model already ran on shows its result again (kept, so no model
        runs), with the reader's decisions on it."""
        entry, volume = self.current_entry(), self.state.volume
        if (
            entry
            and volume is not None
            and has_kept_result(volume, entry.card, self.tta_box.isChecked(), self.state.series_key)
        ):
            QtCore.QTimer.singleShot(0, self, lambda: self.run(auto=True))

    def busy(self) -> bool:
        return self.worker is not None and self.worker.running

    def cancel(self) -> None:
        if self.busy():
            self.worker.cancel()
            self._say("Cancelling…")

    def _on_progress(self, p) -> None:
        if self.sender() is self.worker and p.fraction >= 0:
            self.progress.setValue(round(p.fraction * 1000))

    def _shown(self) -> AIResults | None:
        """What the overlays and the table show: the partial result while the run goes on."""
        return self.partial or self.results

    def _on_partial(self, event) -> None:
        """The slab around the reader's slice is done first (jobs.inference): its overlays
        and findings are drawn at once, marked partial, and the whole result replaces them.
        Until then `results` is None, so nothing half-done is exported or decided on."""
        if self.sender() is not self.worker or not isinstance(event, PartialSegmentation):
            return
        volume, key = self._run_for
        if self.state.volume is not volume or self.state.series_key != key:
            return
        if self.results is not None:
            self.results.detach()
            self._before, self.results = self.results, None
        if self.partial is not None:
            self.partial.detach()
        store = FindingStore(key, series_files.findings_file(key), reader_name())
        self.partial = AIResults(self.state, event.result, store, partial=event.span)
        self.display.attach(self.partial)
        self._fill_table()
        first, last = event.span
        self.header.setText(f"{DISCLAIMER}\nShown: {event.result.card.ref}, partial")
        self._say(
            f"AI: slices {first + 1}–{last} done, rest running; {self.partial.summary()} in them."
        )
        self.partial_shown.emit(self.partial)

    def _drop_partial(self) -> None:
        """A run that ends without its whole result leaves no partial one: what was on
        screen before it comes back."""
        if self.partial is None:
            return
        self.partial.detach()
        self.partial, self.results, self._before = None, self._before, None
        if self.results is not None:
            self.results.reattach()
        self.display.attach(self.results)
        self._fill_table()
        self.header.setText(
            DISCLAIMER
            if self.results is None
            else f"{DISCLAIMER}\nShown: {self.results.ref} on {self.results.result.device.upper()}"
        )

    def _on_result(self, result) -> None:
        if self.sender() is not self.worker:
            return
        volume, key = self._run_for
        if self.state.volume is not volume or self.state.series_key != key:
            self._say("The AI result was for a series no longer shown; it was dropped.")
            return
        for old in (self.results, self.partial):
            if old is not None:
                old.detach()
        self.partial = self._before = None
        store = FindingStore(key, series_files.findings_file(key), reader_name())
        self.results = AIResults(self.state, result, store)
        self.display.attach(self.results)
        self._fill_table()
        self.header.setText(f"{DISCLAIMER}\nShown: {result.card.ref} on {result.device.upper()}")
        how = "reused the kept result" if result.reused else f"{sum(result.timings.values()):.1f} s"
        self._say(
            f"{result.card.ref} ({how}): {self.results.summary()}."
            + "".join(f" {w}" for w in result.warnings)
        )
        if store.message:
            self._tell("Decisions on AI findings", store.message)
        self.result_shown.emit(self.results)

    def _on_failed(self, sentence: str) -> None:
        if self.sender() is self.worker:
            self._drop_partial()
            self._say("The model did not run: see the message.")
            self._tell("AI model failed", sentence)

    def _on_cancelled(self) -> None:
        if self.sender() is self.worker:
            self.progress.setValue(0)
            self._drop_partial()
            self._say("Cancelled; nothing was changed.")

    # -- the result on screen
    def _on_mask_moved(self, seconds: float) -> None:
        self._say(
            f"Mask at p ≥ {self._shown().threshold:.2f} ({seconds * 1000:.0f} ms, no "
            f"model run); measuring its findings…"
        )

    def _on_findings_changed(self) -> None:
        self._fill_table()
        shown = self._shown()
        r = shown.result  # the list may be capped at this threshold: say so
        notes = [w for w in r.warnings if w not in r.segmentation.warnings]
        self._say(f"{shown.summary()} (no model run)." + "".join(f" {w}" for w in notes))

    def _fill_table(self) -> None:
        r = self._shown()
        colours = {lab.value: lab.colour for lab in r.card.labels} if r else {}
        self.table.set_findings(r.findings if r else [], colours, bool(r and r.tta))

    def go_to(self, finding_id: int) -> None:
        """Every view to the finding's centre, zoomed so it fills about a third of the view
        (focus_rect_mm), in the window its label calls for unless the reader turned that
        off (window_box)."""
        shown = self._shown()
        finding = shown.finding(finding_id) if shown else None
        if finding is None:
            return
        shown.go_to(finding)
        for view in self._views():
            x, y, w, h = focus_rect_mm(
                finding, self.state.maps[view.plane], (view.vb.width(), view.vb.height())
            )
            view.vb.setRange(QtCore.QRectF(x, y, w, h), padding=0.0)
        first, last = finding.slice_range
        said = ""
        window = window_for_label(finding.label_name, self.state.volume.metadata.modality)
        if window is not None and self.window_box.isChecked():
            self.state.set_window(window.center, window.width, window.name)
            said = f" {window.name} window."
        self._say(
            f"Finding {finding.id}: {finding.label_name}, "
            f"{finding.longest_axial_diameter_mm:.1f} mm, images {first + 1}–{last + 1}." + said
        )

    def _keep_window_choice(self, on: bool) -> None:
        if self.settings is not None:
            self.settings.finding_window = on

    def decide(self, finding_ids: list[int], decision: str) -> None:
        if self.partial is not None:
            self._say("Decide once the whole series is done: these findings are partial.")
            return
        if self.results is None:
            return
        for fid in finding_ids:
            decided = self.results.decide(fid, decision)
            if decided is not None:
                self.table.update_finding(decided)
        if self.results.store.message:
            self._tell("Decisions on AI findings", self.results.store.message)
            self.results.store.message = ""
        self._say(self.results.summary() + ".")

    def _to_labels(self, finding_ids: list[int]) -> None:
        if self.partial is not None:
            self._say("Decide once the whole series is done: these findings are partial.")
        elif self.results is not None:
            found = [self.results.finding(i) for i in finding_ids]
            self.into_labels.emit(self.results, [f for f in found if f is not None])

    # -- state -> panel
    def _on_state(self, what: str) -> None:
        if what == st.VOLUME:
            if self.busy():
                self.worker.cancel()  # its result would be dropped anyway
            self.explain.reset()
            self.results = self.partial = self._before = None  # set_volume took their layers
            self.display.attach(None)
            self._fill_table()
            self.header.setText(DISCLAIMER)
            self._say("")
            self._restore_kept()
        elif what == st.LAYERS:
            self.explain.forget_removed_layer()
            self.display.sync()
        else:
            return
        self._update_enabled()

    def _update_enabled(self) -> None:
        has_volume = self.state.volume is not None
        busy = self.busy()
        self.run_button.setEnabled(has_volume and self.current_entry() is not None and not busy)
        self.cancel_button.setEnabled(busy)
        self.model_combo.setEnabled(not busy and bool(self.entries))
        self.progress.setVisible(busy)
        self.explain.update_enabled()

    # -- messages
    def _say(self, text: str) -> None:
        self.status.setText(text)
        if text:
            self.message.emit(text)

    def _tell(self, title: str, text: str) -> None:
        """One sentence in a box that does not block the event loop."""
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Warning,
            title,
            text,
            QtWidgets.QMessageBox.StandardButton.Ok,
            self,
        )
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.last_message = box
        self.message.emit(text)


def _shown(validation: dict) -> str:
    return " · ".join(
        f"{k.replace('_ge_6mm', ' ≥6 mm').replace('_', ' ')} {v:.3g}"
        for k, v in _headline(validation)
    )


def _headline(validation: dict) -> list[tuple[str, float]]:
    """The card's first number of each kind the panel has room for: sensitivity, false
    positives per study, Dice (or AUC, accuracy), in that order, three at most."""
    numbers = [
        (k, v)
        for k, v in validation.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    found = [next(((k, v) for k, v in numbers if kind in k), None) for kind in _MAIN_METRICS]
    return [x for x in found if x is not None][:3]

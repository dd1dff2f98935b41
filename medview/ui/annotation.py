"""Annotation: the main window's labelling — one LabelEditor per open series, kept in the
workspace as the reader paints, offered back after a crash, and fed from the AI panel.

When a series opens, its labels come from the workspace (io.label_store: the last snapshot
with the journal since replayed) or start empty, and a LabelAutosaver journals every step
(fsynced, on the GUI thread: a few hundred microseconds a stroke) while a one-second timer
hands due snapshots to a JobWorker (jobs.labels.snapshot_job), so the view never waits on the
disk. Another series or closing the window ends the session with a clean snapshot — the
marker that says nothing is left to recover.

A series whose saved state is newer than its clean save was left by a crash: opening it asks
"Recover / Discard (kept aside)" before any label shows; at start one question covers every
such series, and a series opened while it is still open waits for that answer rather than
asking again (one question per set of edits). Nothing is lost silently: Discard moves the
newer edits to a discarded-<n> folder of the workspace, and the labels are not editable until
the reader has answered.

The Labels panel (SegmentsPanel) shows the editor; its tool choice turns painting on in every view
(ui.paint_tools.PaintController) or off again ("W/L"). Keys live in a Labels menu, which
teaches them: B brush, E eraser, T threshold brush, G fill, L lasso, W back to
window/level, N new segment; Ctrl+Z / Ctrl+Shift+Z undo and redo (the views take the same
keys themselves while they have the focus)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.errors import MedviewError
from medview.core.labels import LabelMap
from medview.io.labels.autosave import LabelAutosaver, SnapshotTask
from medview.io.labels.catalog import pending_recovery
from medview.io.labels.store import DONE, DRAFT, LabelSource, LabelStore
from medview.io.workspace import reader_name
from medview.jobs.labels import snapshot_job
from medview.ui.paint_tools import PaintController
from medview.ui.panels.label_tool_box import NAVIGATE
from medview.ui.panels.segments_panel import SegmentsPanel, when_text
from medview.ui.segmentation_files import SegmentationFiles
from medview.ui.workers import JobWorker
from medview.viewer import state as st
from medview.viewer.label_editor import LabelEditor
from medview.viewer.label_tools import finding_indices

if TYPE_CHECKING:
    from medview.core.findings import Finding
    from medview.ui.main_window import MainWindow
    from medview.viewer.ai_results import AIResults

log = logging.getLogger(__name__)
AUTOSAVE_TICK_MS = 1000  # how often a due snapshot is looked for (LabelAutosaver decides)
TOOL_KEYS = (
    ("brush", "&Brush", "B"),
    ("eraser", "&Eraser", "E"),
    ("threshold", "&Threshold brush", "T"),
    ("fill", "&Fill", "G"),
    ("lasso", "&Lasso", "L"),
    (NAVIGATE, "&Window/level (painting off)", "W"),
)


class Annotation(QtCore.QObject):
    session_started = QtCore.Signal(object)  # the LabelEditor of the series just opened
    saved = QtCore.Signal()  # an autosave snapshot is on disk

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w, self.state = window, window.state
        self.panel = SegmentsPanel(self.state)
        # in the one tabbed group of the right column (MainWindow.add_panel)
        self.dock = window.add_panel("Labels", self.panel)
        measurements = window.dock("Measure")
        if measurements is not None:
            window.tabifyDockWidget(measurements, self.dock)
        self.editor: LabelEditor | None = None
        self.store: LabelStore | None = None
        self.saver: LabelAutosaver | None = None
        self.paint: PaintController | None = None
        self.prompt: QtWidgets.QMessageBox | None = None  # the recovery question shown
        self._recovering: set[str] = set()  # answered "Recover" at start
        # the question at start while it is open: the series it asks about, and the store of
        # one of them opened meanwhile, which waits for that answer instead of a second
        # question (one question per set of edits)
        self._asking_at_start: set[str] = set()
        self._start_prompt: QtWidgets.QMessageBox | None = None
        self._waiting: LabelStore | None = None
        # autosave's own (shutdown waits for it), owned by the app: a pool freed by
        # Python's GC waits for its threads holding the GIL they need
        self._pool = QtCore.QThreadPool(QtCore.QCoreApplication.instance())
        self._saving: JobWorker | None = None
        self._timer = QtCore.QTimer(self, interval=AUTOSAVE_TICK_MS)
        self._timer.timeout.connect(self.autosave_tick)
        self.panel.tool_changed.connect(self.set_tool)
        self.panel.status_toggled.connect(self.set_done)
        self.panel.message.connect(window.status_label.setText)
        for name, button in window.measurements.buttons.items():
            if name != NAVIGATE:  # a measurement tool takes the left button from painting
                button.clicked.connect(lambda _=False: self.set_tool({"name": NAVIGATE}))
        window.ai.into_labels.connect(self.accept_findings)
        window.ai.result_shown.connect(lambda _results: self._labels_on_top())
        self._build_menu()
        self.files = SegmentationFiles(self)  # File > Import / Export segmentation
        self.state.subscribe(self._on_state)
        QtCore.QTimer.singleShot(0, self, self.offer_recovery_at_start)

    def _build_menu(self) -> None:
        menu = QtWidgets.QMenu("&Labels", self.w)
        self.w.menuBar().insertMenu(self.w.menus.help_menu.menuAction(), menu)
        self.menu = menu
        self.key_actions: dict[str, QtGui.QAction] = {}
        add = menu.addAction("&New segment", self.panel.add_segment)
        add.setShortcut(QtGui.QKeySequence("N"))
        menu.addSeparator()
        for name, text, key in TOOL_KEYS:
            act = menu.addAction(text, lambda n=name: self.panel.tools.pick(n))
            act.setShortcut(QtGui.QKeySequence(key))
            self.key_actions[name] = act
        menu.addSeparator()
        self.undo_action = menu.addAction("&Undo", self.panel.undo)
        self.undo_action.setShortcut(QtGui.QKeySequence("Ctrl+Z"))
        self.redo_action = menu.addAction("&Redo", self.panel.redo)
        self.redo_action.setShortcuts(
            [QtGui.QKeySequence("Ctrl+Shift+Z"), QtGui.QKeySequence("Ctrl+Y")]
        )
        menu.addSeparator()
        menu.addAction("Fill &between slices", self.panel.interpolate)
        menu.addAction("Remove small &islands", self.panel.remove_islands)
        menu.addAction("&Smooth", self.panel.smooth)
        menu.addSeparator()
        self.done_action = menu.addAction(
            "Study labels &done", lambda: self.set_done(not self.panel.done_button.isChecked())
        )
        menu.aboutToShow.connect(self._update_menu)
        self._update_menu()

    def _update_menu(self) -> None:
        has = self.editor is not None
        for act in self.menu.actions():
            act.setEnabled(has)
        if has:
            self.undo_action.setText(f"&Undo {self.editor.undo_name}".strip())
            self.redo_action.setText(f"&Redo {self.editor.redo_name}".strip())
            self.undo_action.setEnabled(bool(self.editor.undo_name))
            self.redo_action.setEnabled(bool(self.editor.redo_name))
            self.done_action.setText(
                "Back to &draft" if self.panel.done_button.isChecked() else "Study labels &done"
            )

    # -- sessions: one editor per open series
    def _on_state(self, what: str) -> None:
        if what == st.VOLUME:
            self.end_session()
            self.begin_session()

    def begin_session(self) -> None:
        """Labels for the series now on screen: asks first when a crash left edits."""
        key, volume = self.state.series_key, self.state.volume
        if volume is None or volume.is_colour:
            if volume is not None:
                self.panel.title.setText(
                    "Labels are drawn on grey-scale series (CT, MR), not on colour images."
                )
            return
        try:
            store = LabelStore(key)
        except MedviewError as err:
            self._tell("Labels not available", str(err))
            return
        if store.has_unsaved() and key not in self._recovering:
            if key in self._asking_at_start:  # the question at start covers it: wait
                self._waiting = store
                self.panel.title.setText("Recover or discard the unsaved labels first.")
                return
            self._ask_recovery(store)
            return
        self._open(store)

    def _ask_recovery(self, store: LabelStore) -> None:
        found = next((r for r in pending_recovery() if r.series_key == store.series_key), None)
        what = self.state.volume.metadata.series_description or "this series"
        at = when_text(found.last_change) if found else "an unknown time"
        box, _recover, discard = self._recovery_box(
            f"MedView closed before saving the labels of {what} at {at}. Recover them, or "
            "discard the unsaved edits (they are kept aside in the workspace, not deleted)?"
        )
        volume = self.state.volume

        def answered(_result: int) -> None:
            if self.prompt is box:
                self.prompt = None
            if self.state.volume is not volume:
                return  # another series opened meanwhile: it asks again next time
            if box.clickedButton() is discard:  # closed unanswered: recovered, as safest
                kept = store.discard_unsaved()
                self.w.status_label.setText(
                    f"Unsaved label edits set aside in {kept}."
                    if kept
                    else "Unsaved label edits discarded."
                )
            self._open(store)

        box.finished.connect(answered)
        box.open()
        self.prompt = box
        self.panel.title.setText("Recover or discard the unsaved labels first.")

    def _open(self, store: LabelStore) -> None:
        volume, key = self.state.volume, self.state.series_key
        try:
            loaded = store.load()
        except MedviewError as err:
            self._tell("Labels not loaded", str(err))
            return
        if loaded is not None and loaded.label_map.array.shape != volume.shape:
            self._tell(
                "Labels not loaded",
                f"{store.folder}: the labels kept for this series "
                f"are {loaded.label_map.array.shape} voxels, the series "
                f"{volume.shape}; they are left as they are.",
            )
            return
        self._start_editor(store, loaded.label_map if loaded else LabelMap.empty(volume.shape, key))
        if loaded is not None and loaded.messages:
            self._tell("Labels", " ".join(loaded.messages))
        elif loaded is not None and loaded.replayed:
            self.w.status_label.setText(
                f"Labels recovered ({loaded.replayed} edits after the last save replayed)."
            )
        self.session_started.emit(self.editor)

    def _start_editor(self, store: LabelStore, label_map: LabelMap) -> None:
        volume, key = self.state.volume, self.state.series_key
        series = self.w.series if self.w.series is not None and self.w.series.key == key else None
        source = (
            LabelSource.from_series(series)
            if series is not None
            else LabelSource.from_volume(volume, key)
        )
        self.store, self.editor = store, LabelEditor(self.state, label_map)
        self.saver = LabelAutosaver(store, self.editor, source, on_problem=self._on_problem)
        # the menu's Undo / Redo must be enabled as soon as there is a step: a disabled
        # action's shortcut does not fire
        self.editor.subscribe(self._on_editor)
        self.panel.attach(self.editor, store.status)
        self._timer.start()
        self._update_menu()

    def _on_editor(self, what: str) -> None:
        if what in ("history", "segments"):
            self._update_menu()

    def replace_labels(self, label_map: LabelMap) -> None:
        """An imported label map becomes the series' labels (the panel's caller checked
        that the current one is empty); saved at once, so a crash keeps it."""
        store = self.store
        self.end_session()
        try:
            store.save(label_map)
        except MedviewError as err:
            self._tell("Labels not saved", str(err))
        self._start_editor(store, label_map)

    def end_session(self) -> None:
        """Close the open series' labels: painting off, a clean final save."""
        if self.prompt is not None and self.prompt is not self._start_prompt:
            # an unanswered question about this series: asked again when it reopens. done(),
            # not close(): a box without an Escape button ignores close() and stayed open
            # beside the next question
            self.prompt.finished.disconnect()
            self.prompt.done(0)
            self.prompt = None
        self._timer.stop()
        if self.paint is not None:
            self.paint.stop()
            self.paint = None
        if self.saver is not None:
            self.saver.close()  # on this thread: a snapshot still running is overtaken
            self.saver = None
        if self.editor is not None:
            self.editor.detach()
        self.editor = self.store = None
        self.panel.attach(None)
        self._update_menu()

    def shutdown(self, wait_ms: int = 5000) -> None:
        """The window closes: let a running snapshot end, then the clean save."""
        self._pool.waitForDone(wait_ms)
        self.files.shutdown(wait_ms)
        self.end_session()

    # -- autosave
    def autosave_tick(self) -> None:
        if self.saver is None or (self._saving is not None and self._saving.running):
            return
        task = self.saver.tick()
        if task is None:
            return
        worker = JobWorker(snapshot_job, task, parent=self)
        worker.result.connect(lambda _counts, t=task: self._saved(t, None))
        worker.failed.connect(lambda text, t=task: self._saved(t, MedviewError(None, text)))
        worker.cancelled.connect(lambda t=task: self._saved(t, MedviewError(None, "cancelled")))
        self._saving = worker
        worker.start(self._pool)

    def _saved(self, task: SnapshotTask, error: MedviewError | None) -> None:
        if self.saver is not None:
            self.saver.finish(task, error)
        if error is None:
            self.saved.emit()

    def _on_problem(self, sentence: str) -> None:
        log.warning("label autosave: %s", sentence)
        self.w.status_label.setText(sentence)

    # -- tools and status
    def set_tool(self, settings: dict) -> None:
        """The tool box's choice: a label tool paints in every view; "wl" stops painting."""
        name = settings.get("name", NAVIGATE)
        if self.editor is None or name == NAVIGATE:
            if self.paint is not None:
                self.paint.stop()
                self.paint = None
            self.panel.tools.show_settings({"name": NAVIGATE})
            return
        self.editor.set_tool(**{k: v for k, v in settings.items() if k != "name"})
        if self.paint is None:
            self.w.measurements.set_tool(NAVIGATE)
            self.paint = PaintController(self.w, self.editor)
        self.paint.set_tool(name)
        self.panel.tools.show_settings({**settings, "name": name})

    def set_done(self, done: bool) -> None:
        if self.store is None:
            return
        try:
            status = self.store.set_status(DONE if done else DRAFT, reader_name())
        except (MedviewError, OSError) as err:
            self._tell("Status not saved", str(err))
            status = self.store.status
        self.panel.show_status(status)
        self._update_menu()

    # -- from the AI
    def accept_findings(self, results: AIResults, findings: list[Finding]) -> None:
        """Copy AI findings into the label map, each an undo step into the segment of its
        label and model (not reviewed), and accept them in the AI panel."""
        if self.editor is None or results.volume is not self.editor.volume or not findings:
            self._tell(
                "Not into labels",
                "The labels of this series are not open yet; "
                "answer the recovery question or open the series again.",
            )
            return
        if any(abs(f.threshold - results.threshold) > 1e-9 for f in findings):
            self.w.status_label.setText(
                "The findings are still being measured at the new "
                "threshold; accept them in a moment."
            )
            return
        for finding in findings:
            seg = self.editor.accept_finding(
                finding, finding_indices(results.mask_layer.array, finding)
            )
        self.editor.set_active(seg.value)  # the reader's next edit is most likely on it
        self.w.ai.decide([f.id for f in findings], "accepted")
        names = sorted({f.label_name for f in findings})
        self.w.status_label.setText(
            f"{len(findings)} finding(s) copied into the labels ({', '.join(names)}), not "
            "reviewed until you edit or confirm them."
        )

    def _labels_on_top(self) -> None:
        """The reader's labels drawn over the AI's layers: they are what is being edited."""
        layer = self.editor.layer if self.editor is not None else None
        if layer is not None and self.state.layers and self.state.layers[-1] is not layer:
            self.state.remove_layer(layer)
            self.state.add_layer(layer)

    # -- crashes, at start
    def offer_recovery_at_start(self) -> None:
        """One question for every series a crash left unsaved (newest first)."""
        found = [r for r in pending_recovery() if r.series_key != self.state.series_key]
        if not found:
            return
        lines = "; ".join(
            f"{r.description or r.series_key} at {when_text(r.last_change)}" for r in found[:3]
        ) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        box, recover, discard = self._recovery_box(
            f"MedView closed before saving the labels of {len(found)} series ({lines}). "
            "Recover them (they come back when you open each series), or discard the "
            "unsaved edits (kept aside in the workspace, not deleted)?"
        )

        def answered(_result: int) -> None:
            # closed unanswered: nothing changes, each series asks when it is opened
            self._asking_at_start.clear()
            self._start_prompt = None
            if self.prompt is box:
                self.prompt = None
            for r in found:
                if box.clickedButton() is recover:
                    self._recovering.add(r.series_key)
                elif box.clickedButton() is discard:
                    try:
                        LabelStore(r.series_key).discard_unsaved()
                    except (MedviewError, OSError) as err:
                        self._tell("Labels not discarded", str(err))
            waiting, self._waiting = self._waiting, None
            if waiting is not None and waiting.series_key == self.state.series_key:
                self.begin_session()  # the series opened meanwhile, on this answer

        box.finished.connect(answered)
        self._asking_at_start = {r.series_key for r in found}
        box.open()
        self.prompt = self._start_prompt = box

    def _recovery_box(
        self, text: str
    ) -> tuple[QtWidgets.QMessageBox, QtWidgets.QAbstractButton, QtWidgets.QAbstractButton]:
        """The question, with Recover (the default) and Discard (kept aside)."""
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Warning,
            "Recover labels?",
            text,
            QtWidgets.QMessageBox.StandardButton.NoButton,
            self.w,
        )
        recover = box.addButton("Recover", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton(
            "Discard (kept aside)", QtWidgets.QMessageBox.ButtonRole.DestructiveRole
        )
        box.setDefaultButton(recover)
        return box, recover, discard

    def _tell(self, title: str, text: str) -> None:
        self.w.message(title, text, QtWidgets.QMessageBox.Icon.Warning)

"""Fine-tuning inside the app: the done studies and their labels, the split by patient
(visible, editable: TrainingStudies), the base model and settings (TrainingSettings, the
engine's less common ones under Advanced), Start / Stop, live loss and validation Dice
curves, time per epoch and time left, the log, and the model's versions (activate, roll
back, compare). A run that was stopped, failed or cut short stays offered above the tabs
(UnfinishedRuns), also after a restart, until it is resumed or discarded.

Every way a run can end is one sentence under the buttons: the new version, stopped (and how
to continue), the engine's own error worded for the panel (out of memory, disk full, bad
input), or a process that died without saying why (training_sentences words them).

Every button is one line into logic that runs headless (3D Slicer's rule): Start writes a
job file (ai.train_job.Job) and runs `medview train --job FILE` as a child process
(TrainingProcess), so the viewer stays fully usable and a crash in training cannot take it
down. Listing studies runs on the thread pool (jobs.training); torch never loads here."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from medview.ai.models.cards import pad_multiple
from medview.ai.models.registry import scan_models
from medview.ai.training.job import JOB_FILE, Job
from medview.ai.training.runs import CHECKPOINT_FILE, RunInfo, forget_unsaved
from medview.io import saved
from medview.io.workspace import atomic_write_text
from medview.ui.panels.model_versions import ModelVersions
from medview.ui.panels.training_curves import TrainingCurves
from medview.ui.panels.training_labels import TrainingLabels, last_mapping
from medview.ui.panels.training_sentences import (
    done_sentence,
    epoch_sentence,
    error_sentence,
    number,
    setting_sentence,
    stopped_sentence,
)
from medview.ui.panels.training_settings import TrainingSettings
from medview.ui.panels.training_studies import TrainingStudies
from medview.ui.panels.unfinished_runs import UnfinishedRuns
from medview.ui.training_process import TrainingProcess

PHASES = {
    "replay": "rehearsal studies",
    "prepare": "caching",
    "mining": "base model's mistakes",
    "evaluate": "final numbers",
}


class TrainingPanel(QtWidgets.QWidget):
    message = QtCore.Signal(str)
    version_made = QtCore.Signal(str)  # NAME:VERSION a run just wrote (not yet active)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.work: Path | None = None
        self.history: list[dict] = []
        self._ended: str | None = None  # the run's last word: done, stopped or error
        self._steps = self._epochs = 0  # of the running run (its start event)
        self._base = ""  # the running run's base model
        self._dock: QtWidgets.QDockWidget | None = None  # whose tab shows the panel
        self.process = TrainingProcess(self)
        self.process.event.connect(self.on_event)
        self.process.log_line.connect(self.log)
        self.process.finished.connect(self._finished)
        self.versions = ModelVersions()
        self.versions.message.connect(self.message)
        self.runs = UnfinishedRuns()
        self.runs.resume_requested.connect(self.resume)
        self.runs.message.connect(self._say)
        self.resume_button = self.runs.resume_button
        tabs = QtWidgets.QTabWidget()
        tabs.addTab(self._setup_tab(), "Setup")
        self.curves = TrainingCurves()
        tabs.addTab(self.curves, "Progress")
        tabs.addTab(self.versions, "Versions")
        self.tabs = tabs
        self.start_button = QtWidgets.QPushButton(
            "Start", toolTip="Fine-tune in a separate process; the viewer stays usable"
        )
        self.stop_button = QtWidgets.QPushButton(
            "Stop",
            enabled=False,
            toolTip="Save a checkpoint and stop; the run stays offered to resume",
        )
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QtWidgets.QProgressBar(visible=False)  # shown from the first run:
        self.progress.setRange(0, 1000)  # empty, it read as a text field
        self.status = QtWidgets.QLabel("Label studies, mark them done, then Start.", wordWrap=True)
        # the run's warnings (labels changed before a resume, a --map that maps nothing)
        # stay in view until the next run: the status line moves on at every step
        self.notes = QtWidgets.QLabel(
            "", wordWrap=True, visible=False, styleSheet="color: rgb(255, 190, 60)"
        )
        self.studies.listed.connect(self._listed)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.start_button, self.stop_button):
            buttons.addWidget(b)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.runs)
        layout.addWidget(tabs, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.notes)
        self._fill_models()
        self.labels.remember(last_mapping())
        self.runs.refresh()

    # ---------------------------------------------------------------- setup
    def _setup_tab(self) -> QtWidgets.QWidget:
        self.studies = TrainingStudies()
        self.labels = TrainingLabels()
        self.base_combo = QtWidgets.QComboBox(toolTip="The model and version to start from")
        self.base_combo.currentIndexChanged.connect(self._base_changed)
        self.form = TrainingSettings()
        self.form.split_changed.connect(
            lambda: self.studies.propose(
                self.form.settings().val_fraction, self.form.settings().seed
            )
        )
        self.form.changed.connect(
            lambda name: (
                self.studies.set_folds(self.form.settings().folds) if name == "folds" else None
            )
        )
        base = QtWidgets.QFormLayout()
        base.addRow("Base model", self.base_combo)
        inner = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(inner)
        layout.addWidget(self.studies, 1)
        layout.addLayout(base)
        layout.addWidget(self.labels)
        layout.addWidget(self.form)
        scroll = QtWidgets.QScrollArea(
            widgetResizable=True, frameShape=QtWidgets.QFrame.Shape.NoFrame
        )
        # scrolls down only: the form fits the dock's width (the study table scrolls its
        # own columns), so no button or spin box arrow is cut off at the right edge
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        return scroll

    def _fill_models(self) -> None:
        self.base_combo.blockSignals(True)
        self.base_combo.clear()
        self._names, self._multiple = {}, {}
        for e in scan_models().models:
            self._names[e.ref] = {lab.value: lab.name for lab in e.card.labels}
            self._multiple[e.ref] = pad_multiple(e.card)
            if e.card.architecture in ("torch.export", "onnx", "torchscript"):
                continue  # imported programs cannot be fine-tuned
            self.base_combo.addItem(e.ref + ("  (active)" if e.active else ""), e.ref)
            if e.active and e.card.task == "segmentation" and self.base_combo.count():
                self.base_combo.setCurrentIndex(self.base_combo.count() - 1)
        self.base_combo.blockSignals(False)
        self._base_changed()

    def _base_changed(self) -> None:
        ref = self.base_combo.currentData()
        self.studies.names = self._names.get(ref, {})
        self.form.set_patch_multiple(self._multiple.get(ref, 1))
        self._show_labels()
        if ref:
            self.versions.show_model(ref.split(":")[0])

    def showEvent(self, ev: object) -> None:
        """Each time the panel comes into view while nothing trains: the studies again (the
        reader may have marked more done since; the split's edits stay) and the unfinished
        runs (a run may have ended or been resumed elsewhere). In a tabbed dock the panel
        is shown once, at app start, and its tab's selection only changes the dock's
        visibility: that is followed too."""
        super().showEvent(ev)
        dock = self.parent()
        while dock is not None and not isinstance(dock, QtWidgets.QDockWidget):
            dock = dock.parent()
        if dock is not None and dock is not self._dock:
            self._dock = dock
            dock.visibilityChanged.connect(lambda shown: shown and self._in_view())
        self._in_view()

    def _in_view(self) -> None:
        if not self.process.running:
            self.runs.refresh()
            self.refresh_studies()

    def _listed(self, sentence: str) -> None:
        """The listing's sentence, unless the status holds how the last run ended (the
        studies' own summary shows the listing too)."""
        if self._ended is None:
            self.status.setText(sentence)
        self._show_labels()

    def _show_labels(self) -> None:
        self.labels.set_labels(self.studies.labels(), self.studies.names)

    def refresh_studies(self) -> None:
        """List the studies (off the GUI thread) and propose a split by patient."""
        if self._ended is None:
            self.status.setText("Looking for labelled studies…")
        s = self.form.settings()
        self.studies.refresh(s.val_fraction, s.seed)

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.message.emit(text)

    # ---------------------------------------------------------------- running
    def start(self) -> None:
        """Write the job file into a new work folder and run it."""
        if self.process.running:
            return
        problem = self.studies.problem() or self.labels.problem()
        base = self.base_combo.currentData()
        if problem or not base:
            self.status.setText(
                problem
                or "No model here can be fine-tuned: add or import a segmentation model first."
            )
            return
        work = saved.new_run_dir(base)
        job = Job(
            data=self.studies.data,
            base=base,
            settings=self.form.settings(),
            split=self.studies.split(),
            mapping=self.labels.mapping(),
            work=str(work),
        )
        try:
            work.mkdir(parents=True, exist_ok=True)
            atomic_write_text(work / JOB_FILE, job.to_json() + "\n")
        except OSError as exc:
            self.status.setText(
                f"The job file could not be written in {work} "
                f"({exc.strerror or exc}); free some disk space, then Start."
            )
            return
        self.history, self._base = [], base
        self._draw()
        self.log(f"job {work / JOB_FILE}: {asdict(job.settings)}")
        self._launch(work, ["--job", str(work / JOB_FILE)], "Starting the training process…")

    def resume(self, run: RunInfo) -> None:
        """Continue an unfinished run from its checkpoint, with its own job file."""
        if self.process.running:
            return
        self.history, self._base = list(run.history), run.base
        self._draw()
        self.progress.setValue(round(1000 * run.epoch / max(run.epochs, 1)))
        self.log(f"resuming {run.folder} from the checkpoint of epoch {run.epoch}")
        # --out: the folder where the run is now (the job names where it started)
        args = ["--job", str(run.job_file), "--resume", "--out", str(run.folder)]
        self._launch(run.folder, args, f"Resuming from the checkpoint of epoch {run.epoch}…")

    def _launch(self, work: Path, args: list[str], text: str) -> None:
        self.work, self._ended = work, None
        self.notes.clear()
        self.notes.setVisible(False)
        self.progress.setVisible(True)
        self._running(True)
        self.tabs.setCurrentIndex(1)
        self.status.setText(text)
        self.process.start(args)  # a program that cannot start answers through _finished

    def stop(self) -> None:
        self.status.setText("Stopping: saving a checkpoint…")
        self.stop_button.setEnabled(False)  # asked once; the process ends within seconds
        self.process.stop()

    def _running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.runs.training = self.work if running else None
        self.runs.refresh(select=self.work)

    def log(self, text: str) -> None:
        self.curves.log(text)

    def _draw(self) -> None:
        self.curves.draw(self.history)

    def on_event(self, ev: dict) -> None:
        kind = ev["event"]
        if kind in ("start", "epoch", "step"):
            self._phase(None)
        if kind == "start":
            self._steps, self._epochs = ev["steps_per_epoch"], ev["epochs"]
            if (ev.get("fold") or not ev["val"]) and ev.get("resumed_epoch") is None:
                self.history = []  # a new cross-validation phase: its own curves
                self._draw()
            self.curves.set_epochs(ev["epochs"])
            if ev.get("resumed_epoch") is not None:
                self.status.setText(
                    f"Resumed from the checkpoint of epoch "
                    f"{ev['resumed_epoch']} of {ev['epochs']} on "
                    f"{ev['device']}."
                )
            elif ev.get("fold"):
                self.status.setText(
                    f"Cross-validation on {ev['device']}: fold {ev['fold']} "
                    f"of {ev['folds']}, training on {ev['train']} studies and "
                    f"scoring the {ev['val']} held out, {ev['epochs']} "
                    f"epochs; then the version trains on all."
                )
            elif not ev["val"]:
                self.status.setText(
                    f"Training the version on {ev['device']}: all "
                    f"{ev['train']} studies, {ev['epochs']} epochs."
                )
            else:
                self.status.setText(
                    f"Training on {ev['device']}: {ev['train']} training and "
                    f"{ev['val']} validation studies, {ev['epochs']} epochs."
                )
        elif kind == "epoch":
            self.history = [h for h in self.history if h["epoch"] < ev["epoch"]] + [ev]
            self._draw()
            self.progress.setValue(round(1000 * ev["epoch"] / max(ev["epochs"], 1)))
            self.curves.show_times(ev)
            self.status.setText(epoch_sentence(ev))
        elif kind == "step":
            self.progress.setValue(
                round(1000 * (ev["epoch"] - 1 + ev["step"] / ev["steps"]) / max(self._epochs, 1))
            )
            self.status.setText(
                f"Epoch {ev['epoch']}: step {ev['step']} of {ev['steps']}, "
                f"loss {number(ev['loss'])}"
            )
        elif kind in ("prepare", "evaluate", "replay", "mining"):
            self.status.setText(self._preparing(ev))
            self._phase(ev)
        elif kind == "warning":
            said = setting_sentence(ev.get("setting")) or ev["message"]
            text = said[:1].upper() + said[1:] + "."
            self.notes.setText("\n".join(filter(None, [self.notes.text(), "⚠ " + text])))
            self.notes.setVisible(True)
            self.message.emit(text)
        elif kind == "early_stop":
            self.status.setText(
                f"No better validation Dice for {ev['patience']} epochs: "
                f"stopping early with epoch {ev['best_epoch']}'s weights."
            )
        elif kind == "done":
            self._phase(None)
            self.progress.setValue(1000)
            self._ended = kind
            self._say(done_sentence(ev))
            self.versions.show_model(ev["version"].split(":")[0])
            self.versions.select(ev["version"].split(":")[1])
            self._fill_models()
            self.version_made.emit(ev["version"])
        elif kind == "stopped":
            self._ended = kind
            self._say(stopped_sentence(ev, self._steps))
        elif kind == "error":
            self._ended = kind
            self._say(error_sentence(ev))
        if kind != "step":
            self.log(
                f"{kind}: "
                + ", ".join(
                    f"{k} {v}"
                    for k, v in ev.items()
                    if k not in ("event", "metrics", "parent_metrics")
                )
            )

    def _phase(self, ev: dict | None) -> None:
        """The bar counts the studies of the work before training (minutes on a first run:
        it sat empty) and after it; the epochs' share of the run otherwise."""
        done, of = (
            (ev.get("index", ev.get("study")), ev.get("of", ev.get("studies")))
            if ev
            else (None, None)
        )
        if ev is None or not done or not of:
            if self.progress.maximum() != 1000:
                self.progress.setRange(0, 1000)
                self.progress.setFormat("%p%")
            return
        self.progress.setRange(0, int(of))
        self.progress.setValue(int(done) - 1)  # the study under way is not done yet
        self.progress.setFormat(f"{PHASES[ev['event']]}: %v of %m studies")

    @staticmethod
    def _preparing(ev: dict) -> str:
        kind = ev["event"]
        if kind == "mining":
            at = (
                f"study {ev['index']} of {ev['studies']}"
                if ev.get("index")
                else f"{ev['studies']} studies"
            )
            return f"Looking for the base model's mistakes in {at}…"
        if kind == "replay":
            return f"Making rehearsal study {ev['index']} of {ev['of']}…"
        what = "Preparing study" if kind == "prepare" else f"Evaluating {ev['model']} on study"
        return f"{what} {ev.get('index', ev.get('study'))} of {ev['of']}…"

    def _finished(self, code: int, killed: bool) -> None:
        self._running(False)
        self.log(f"training process ended (exit code {code})")
        saved = self.work is not None and (self.work / CHECKPOINT_FILE).exists()
        if self.work is not None and not saved:  # a child that never started, or was
            forget_unsaved(self.work)  # killed, left the job file the panel wrote
        then = (
            "Resume continues from its last checkpoint"
            if saved
            else "it had saved no checkpoint, so Start again"
        )
        if killed:
            self._say(f"The training process did not stop in time and was ended; {then}.")
        elif self._ended is None and code == -1:
            self._say("The training process could not be started; the log shows the command.")
        elif self._ended is None:
            self._say(
                f"The training process ended unexpectedly (exit code {code}); {then} "
                f"(the log has the details)."
            )
        self._ended = self._ended or "ended"

    def may_close(self) -> bool:
        """At app close: True when nothing trains, else the reader's answer to whether to
        stop the run (it keeps its checkpoint and is offered to resume on the next start)
        or keep the app, and the run, going."""
        if not self.process.running:
            return True
        done = max((h["epoch"] for h in self.history), default=0)
        where = f" ({done} of {self._epochs} epochs done)" if self._epochs else ""
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Question,
            "Training is running",
            f"A fine-tune of {self._base or 'the model'} is running"
            f"{where}. Quitting stops it with a checkpoint; the Training panel offers to "
            f"resume it the next time MedView starts.",
            parent=self,
        )
        stop = box.addButton("Stop training and quit", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep training", QtWidgets.QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.exec()
        return box.clickedButton() is stop

    def shutdown(self) -> None:
        self.process.shutdown()
        self.studies.shutdown()

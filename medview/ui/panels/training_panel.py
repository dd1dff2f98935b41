"""Fine-tuning inside the app: the done studies and their labels, the split by patient
(visible, editable), the base model and settings, Start / Stop, live loss and validation
Dice curves, time per epoch and time left, the log, and the model's versions (activate, roll
back, compare).

Every button is one line into logic that runs headless (3D Slicer's rule): Start writes a
job file (ai.training.Job) and runs `medview train --job FILE` as a child process
(TrainingProcess), so the viewer stays fully usable and a crash in training cannot take it
down. Listing studies runs on the thread pool (jobs.training); torch never loads here."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from medview.ai.registry import scan_models
from medview.ai.train_data import WORKSPACE, split_by_patient
from medview.ai.train_job import JOB_FILE, Job, Settings, default_work
from medview.io.workspace import atomic_write_text
from medview.jobs.training import training_studies_job
from medview.ui.panels.model_versions import ModelVersions
from medview.ui.training_process import TrainingProcess
from medview.ui.workers import JobWorker

SIDES = ("train", "val")


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class TrainingPanel(QtWidgets.QWidget):
    message = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list = []  # jobs.training.StudyRow
        self.work: Path | None = None
        self._stopped = False
        self._listed = False
        self._lister: JobWorker | None = None
        self.process = TrainingProcess(self)
        self.process.event.connect(self.on_event)
        self.process.log_line.connect(self.log)
        self.process.finished.connect(self._finished)
        self.versions = ModelVersions()
        self.versions.message.connect(self.message)
        tabs = QtWidgets.QTabWidget()
        tabs.addTab(self._setup_tab(), "Setup")
        tabs.addTab(self._progress_tab(), "Progress")
        tabs.addTab(self.versions, "Versions")
        self.tabs = tabs
        self.start_button = QtWidgets.QPushButton("Start", toolTip="Fine-tune in a separate "
                                                                   "process; the viewer stays "
                                                                   "usable")
        self.stop_button = QtWidgets.QPushButton("Stop", enabled=False,
                                                 toolTip="Save a checkpoint and stop")
        self.resume_button = QtWidgets.QPushButton("Resume", enabled=False,
                                                   toolTip="Continue the stopped run")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QtWidgets.QLabel("Label studies, mark them done, then Start.",
                                       wordWrap=True)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(tabs, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self._fill_models()

    # ---------------------------------------------------------------- setup
    def _setup_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.data_edit = QtWidgets.QLineEdit(WORKSPACE, toolTip="'workspace': the studies "
                                             "marked done; or a folder of studies, each a "
                                             "series folder with labels.nii.gz")
        browse = QtWidgets.QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_studies)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.data_edit, 1)
        row.addWidget(browse)
        row.addWidget(refresh)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["study", "labels (voxels)", "used for"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.base_combo = QtWidgets.QComboBox(toolTip="The model and version to start from")
        self.base_combo.currentIndexChanged.connect(self._base_changed)
        d = Settings()
        self.epochs = QtWidgets.QSpinBox(minimum=1, maximum=500, value=d.epochs)
        self.lr = QtWidgets.QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=1e-2,
                                           singleStep=1e-4, value=d.lr)
        self.batch = QtWidgets.QSpinBox(minimum=1, maximum=256, value=d.batch_size)
        self.patch = QtWidgets.QSpinBox(minimum=16, maximum=512, singleStep=16,
                                        value=d.patch_size)
        self.augment = QtWidgets.QCheckBox("flips, rotation, zoom, intensity", checked=True)
        self.device = QtWidgets.QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.amp = QtWidgets.QCheckBox("mixed precision (CUDA)", checked=d.amp)
        form = QtWidgets.QFormLayout()
        form.addRow("Base model", self.base_combo)
        for label, widget in (("Epochs", self.epochs), ("Learning rate", self.lr),
                              ("Batch size", self.batch), ("Patch size", self.patch),
                              ("Augmentation", self.augment), ("Device", self.device),
                              ("", self.amp)):
            form.addRow(label, widget)
        layout = QtWidgets.QVBoxLayout(w)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        return w

    def _progress_tab(self) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        self.loss_plot = pg.PlotWidget(title="training loss")
        self.dice_plot = pg.PlotWidget(title="validation Dice")
        for plot in (self.loss_plot, self.dice_plot):
            plot.setLabel("bottom", "epoch")
            plot.setMinimumHeight(120)
        self.loss_curve = self.loss_plot.plot([], [], pen="y", symbol="o", symbolSize=5)
        self.dice_curve = self.dice_plot.plot([], [], pen="c", symbol="o", symbolSize=5)
        self.times = QtWidgets.QLabel("time per epoch —, time left —")
        self.log_view = QtWidgets.QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(2000)
        layout = QtWidgets.QVBoxLayout(w)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.dice_plot, 1)
        layout.addWidget(self.times)
        layout.addWidget(self.log_view, 1)
        return w

    def _fill_models(self) -> None:
        self.base_combo.blockSignals(True)
        self.base_combo.clear()
        self._names = {}
        for e in scan_models().models:
            self._names[e.ref] = {lab.value: lab.name for lab in e.card.labels}
            if e.card.architecture in ("torch.export", "onnx"):
                continue  # imported programs cannot be fine-tuned
            self.base_combo.addItem(e.ref + ("  (active)" if e.active else ""), e.ref)
            if e.active and e.card.task == "segmentation" and self.base_combo.count():
                self.base_combo.setCurrentIndex(self.base_combo.count() - 1)
        self.base_combo.blockSignals(False)
        self._base_changed()

    def _base_changed(self) -> None:
        ref = self.base_combo.currentData()
        if ref:
            self.versions.show_model(ref.split(":")[0])

    def showEvent(self, ev: object) -> None:
        """List the studies the first time the panel is seen (not at app start)."""
        super().showEvent(ev)
        if not self._listed:
            self._listed = True
            self.refresh_studies()

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of labelled studies")
        if folder:
            self.data_edit.setText(folder)
            self.refresh_studies()

    def refresh_studies(self) -> None:
        """List the studies (off the GUI thread) and propose a split by patient."""
        if self._lister is not None and self._lister.running:
            return
        self.status.setText("Looking for labelled studies…")
        worker = JobWorker(training_studies_job, self.data_edit.text().strip(), parent=self)
        worker.result.connect(self._show_studies)
        worker.failed.connect(self._listing_failed)
        self._lister = worker
        worker.start()

    def _listing_failed(self, text: str) -> None:
        self.rows = []
        self.table.setRowCount(0)
        self.status.setText(text)

    def _show_studies(self, rows: list) -> None:
        self.rows = rows
        split = split_by_patient([r.study for r in rows], Settings().val_fraction)
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            st = r.study
            names = st.segments or self._names.get(self.base_combo.currentData(), {})
            counts = ", ".join(f"{names.get(v, v)}: {n}" for v, n in sorted(r.counts.items()))
            self.table.setItem(i, 0, QtWidgets.QTableWidgetItem(st.name))
            self.table.setItem(i, 1, QtWidgets.QTableWidgetItem(counts or "no labels"))
            combo = QtWidgets.QComboBox()
            combo.addItems(["training", "validation"])
            combo.setCurrentIndex(1 if st.key in split["val"] else 0)
            self.table.setCellWidget(i, 2, combo)
        self.table.resizeColumnToContents(0)
        n_val = len(split["val"])
        self.status.setText(f"{len(rows)} labelled studies: {len(rows) - n_val} for training, "
                            f"{n_val} for validation (split by patient; change it per row).")

    def split(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"train": [], "val": []}
        for i, r in enumerate(self.rows):
            out[SIDES[self.table.cellWidget(i, 2).currentIndex()]].append(r.study.key)
        return out

    def settings(self) -> Settings:
        return Settings(epochs=self.epochs.value(), lr=self.lr.value(),
                        batch_size=self.batch.value(), patch_size=self.patch.value(),
                        augment=self.augment.isChecked(), device=self.device.currentText(),
                        amp=self.amp.isChecked())

    # ---------------------------------------------------------------- running
    def start(self, resume: bool = False) -> None:
        if self.process.running:
            return
        if resume and self.work is not None:
            args = ["--job", str(self.work / JOB_FILE), "--resume"]
        else:
            if not self.rows:
                self.status.setText("No labelled studies listed: Refresh first.")
                return
            base = self.base_combo.currentData()
            self.work = default_work(base)
            job = Job(data=self.data_edit.text().strip(), base=base,
                      settings=self.settings(), split=self.split(), work=str(self.work))
            self.work.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.work / JOB_FILE, job.to_json() + "\n")
            args = ["--job", str(self.work / JOB_FILE)]
            self.history: list[dict] = []
            self.loss_curve.setData([], [])
            self.dice_curve.setData([], [])
            self.log(f"job {self.work / JOB_FILE}: {asdict(job.settings)}")
        self.process.start(args)
        self._stopped = False
        self._running(True)
        self.tabs.setCurrentIndex(1)
        self.status.setText("Starting the training process…")

    def stop(self) -> None:
        self.status.setText("Stopping: saving a checkpoint…")
        self.process.stop()

    def _running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(False)

    def log(self, text: str) -> None:
        self.log_view.appendPlainText(text)

    def on_event(self, ev: dict) -> None:
        kind = ev["event"]
        if kind == "epoch":
            self.history = [h for h in getattr(self, "history", []) if h["epoch"] < ev["epoch"]]
            self.history.append(ev)
            done = [h for h in self.history if h.get("loss") is not None]
            self.loss_curve.setData([h["epoch"] for h in done], [h["loss"] for h in done])
            dice = [h for h in self.history if h.get("val_dice") is not None]
            self.dice_curve.setData([h["epoch"] for h in dice], [h["val_dice"] for h in dice])
            self.progress.setValue(round(1000 * ev["epoch"] / max(ev["epochs"], 1)))
            self.times.setText(f"time per epoch {_minutes(ev.get('seconds') or None)}, "
                               f"time left {_minutes(ev.get('eta_s'))}")
            self.status.setText(f"Epoch {ev['epoch']} of {ev['epochs']}: loss "
                                f"{ev['loss']}, validation Dice {ev['val_dice']}")
        elif kind == "step":
            self.status.setText(f"Epoch {ev['epoch']}: step {ev['step']} of {ev['steps']}, "
                                f"loss {ev['loss']}")
        elif kind in ("prepare", "evaluate"):
            what = "Preparing study" if kind == "prepare" else f"Evaluating {ev['model']} on"
            self.status.setText(f"{what} {ev.get('index', ev.get('study'))} of {ev['of']}…")
        elif kind == "done":
            m, p = ev["metrics"], ev["parent_metrics"]
            self.status.setText(f"{ev['version']} written (not active). Validation Dice "
                                f"{p.get('dice_mean')} → {m.get('dice_mean')}; compare and "
                                f"activate it under Versions.")
            self.versions.show_model(ev["version"].split(":")[0])
            self.versions.select(ev["version"].split(":")[1])
            self._fill_models()
        elif kind == "stopped":
            self._stopped = True
            self.status.setText(f"Stopped at epoch {ev['epoch']}; Resume continues it.")
        elif kind == "error":
            self.status.setText(f"{ev['message']} ({ev.get('try', '')})")
        if kind != "step":
            self.log(f"{kind}: " + ", ".join(f"{k} {v}" for k, v in ev.items()
                                             if k not in ("event", "metrics", "parent_metrics")))

    def _finished(self, code: int, killed: bool) -> None:
        self._running(False)
        self.resume_button.setEnabled((self._stopped or killed) and self.work is not None)
        if killed:
            self.status.setText("The training process did not stop in time and was ended; "
                                "Resume continues from its last checkpoint.")
        self.log(f"training process ended (exit code {code})")

    def shutdown(self) -> None:
        self.process.shutdown()
        if self._lister is not None:
            self._lister.cancel()

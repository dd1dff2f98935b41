"""What a fine-tune learns from, and the split it is judged on: the labelled studies (the
workspace's done studies, a folder of them, or "Studies on the PACS": pacs://NODE, a saved
node's studies carrying a MedView SEG marked done, fetched by net.training_source) with
the volume of each label (mL; voxels in the tooltip, and where the label map's grid is
unknown) and their patient
(numbered here, the ID never shown), each patient's studies on one side of the split. The
split is proposed from the validation share and seed, stays as shown, and is edited per
patient: moving one study moves that patient's other studies too, since a patient on both
sides would flatter the validation numbers. Listing runs on the thread pool
(jobs.training); a summary says how many studies, patients and labelled studies each side
has, and warns when validation lacks a label."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from medview.ai.training.data import WORKSPACE, split_by_patient
from medview.ai.training.job import Settings
from medview.core.errors import MedviewError
from medview.jobs.training import training_studies_job
from medview.ui.panels.segment_table import ml_text
from medview.ui.workers import JobWorker

SIDES = ("train", "val")
SIDE_NAMES = ("training", "validation")
COLUMNS = ("study", "patient", "labels", "used for")


def size_text(voxels: int, voxel_ml: float | None) -> str:
    """A label's size as a reader compares it across studies: its volume, or the voxel
    count where the label map's grid is unknown."""
    return f"{ml_text(voxels, voxel_ml)} mL" if voxel_ml else f"{voxels:,} voxels"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def study_names(studies: list) -> list[str]:
    """Each study's name, made unique with the folders above its image when names repeat
    (every DICOM study of the workspace may sit in a folder called "series")."""
    names = [s.name for s in studies]
    parts = [Path(s.image).parts for s in studies]
    depth = 1
    while len(set(names)) < len(names) and depth < max((len(p) for p in parts), default=0):
        depth += 1
        names = [
            "/".join(p[-depth:]) if names.count(n) > 1 else n
            for n, p in zip(names, parts, strict=True)
        ]
    return names


class TrainingStudies(QtWidgets.QWidget):
    listed = QtCore.Signal(str)  # one sentence: how many, or why none

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list = []  # jobs.training.StudyRow
        self.names: dict[int, str] = {}  # the base model's label names
        self._lister: JobWorker | None = None
        self._listing = self._again = False  # a listing runs; another is asked for
        d = Settings()
        self._proposal = (d.val_fraction, d.seed)  # the split's share and seed
        self.folds = d.folds  # cross-validation: every study is held out once (crossval)
        self.data_edit = QtWidgets.QLineEdit(
            WORKSPACE,
            toolTip="'workspace': the studies "
            "marked done; a folder of studies, each a "
            "series folder with labels.nii.gz; or "
            "pacs://NODE[?query], the studies on a PACS",
        )
        browse = QtWidgets.QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        # "Studies on the PACS": a saved node's studies whose MedView SEG is marked done
        self.pacs_button = QtWidgets.QPushButton(
            "PACS…",
            toolTip="Studies on the PACS: a "
            "node's studies with MedView labels marked "
            "done (pacs://NODE)",
        )
        self.pacs_menu = QtWidgets.QMenu(self.pacs_button)
        self.pacs_menu.aboutToShow.connect(self._fill_pacs_menu)
        self.pacs_menu.triggered.connect(lambda act: self.use_pacs(act.data()))
        self.pacs_button.setMenu(self.pacs_menu)
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(lambda: self.refresh(*self._proposal))
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.data_edit, 1)
        row.addWidget(browse)
        row.addWidget(self.pacs_button)
        row.addWidget(refresh)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeaderItem(1).setToolTip(
            "Patients are numbered here; a patient's studies stay on one side"
        )
        self.table.verticalHeader().hide()
        self.table.setMinimumHeight(140)  # a few rows stay readable in a short dock
        # a label a line, its size first: a narrow dock cuts the name, never the number (cut
        # in the middle, "lung nodule: 0.40 mL" read "lung no….40 mL")
        self.table.setWordWrap(False)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            2, QtWidgets.QHeaderView.ResizeMode.Stretch
        )
        self.summary = QtWidgets.QLabel("", wordWrap=True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)

    @property
    def data(self) -> str:
        return self.data_edit.text().strip()

    def _browse(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder of labelled studies")
        if folder:
            self.data_edit.setText(folder)
            self.refresh(*self._proposal)

    def _fill_pacs_menu(self) -> None:
        from medview.net.nodes import load_nodes

        self.pacs_menu.clear()
        try:
            names = [n.name for n in load_nodes()]
        except MedviewError as err:  # a damaged node list: its sentence, in the menu
            self.pacs_menu.addAction(str(err)).setEnabled(False)
            return
        for name in names:
            self.pacs_menu.addAction(name).setData(name)
        if not names:
            self.pacs_menu.addAction("No PACS node saved: File > PACS, Nodes").setEnabled(False)

    def use_pacs(self, node: str) -> None:
        """Train on `node`'s studies labelled done: they are fetched and listed."""
        self.data_edit.setText(f"pacs://{node}")
        self.summary.setText(f"Fetching the studies labelled done from {node}…")
        self.refresh(*self._proposal)

    def refresh(self, val_fraction: float, seed: int) -> None:
        """List the studies (off the GUI thread) and propose a split by patient; asked
        while a listing runs, once more when it ends (the folder or the done studies may
        have changed since it began)."""
        self._proposal = (val_fraction, seed)
        if self._listing:
            self._again = True
            return
        self._listing, self._again = True, False
        worker = JobWorker(training_studies_job, self.data, parent=self)
        worker.result.connect(self._show)
        worker.failed.connect(self._failed)
        worker.finished.connect(self._listed_once)
        self._lister = worker
        worker.start()

    def _listed_once(self) -> None:
        self._listing = False
        if self._again:
            self.refresh(*self._proposal)

    def _failed(self, text: str) -> None:
        self.rows = []
        self.table.setRowCount(0)
        text = text[:1].upper() + text[1:]
        text = text if text.endswith(".") else text + "."
        self.summary.setText(text)  # stays in view when the panel's status says more
        self.listed.emit(text)

    def _show(self, rows: list) -> None:
        kept = {
            r.study.patient: self.table.cellWidget(i, 3).currentIndex()
            for i, r in enumerate(self.rows)
        }  # the reader's split, kept by patient
        self.rows = rows
        patients = {r.study.patient for r in rows}
        number = {p: i + 1 for i, p in enumerate(dict.fromkeys(r.study.patient for r in rows))}
        self.table.setRowCount(len(rows))
        for i, (r, shown) in enumerate(
            zip(rows, study_names([r.study for r in rows]), strict=True)
        ):
            st = r.study
            names = st.segments or self.names
            counts = "\n".join(
                f"{size_text(n, r.voxel_ml)}  {names.get(v, v)}"
                for v, n in sorted(r.counts.items())
            )
            item = QtWidgets.QTableWidgetItem(shown)
            item.setToolTip(st.image)
            self.table.setItem(i, 0, item)
            self.table.setItem(i, 1, QtWidgets.QTableWidgetItem(f"P{number[st.patient]}"))
            item = QtWidgets.QTableWidgetItem(counts or "no labels")
            item.setToolTip(
                "\n".join(f"{names.get(v, v)}: {n:,} voxels" for v, n in sorted(r.counts.items()))
            )
            self.table.setItem(i, 2, item)
            combo = QtWidgets.QComboBox(
                toolTip="Training or validation, for every study of this patient"
            )
            combo.addItems(SIDE_NAMES)
            combo.currentIndexChanged.connect(lambda side, i=i: self._moved(i, side))
            self.table.setCellWidget(i, 3, combo)
        self.table.resizeColumnsToContents()
        self.table.resizeRowsToContents()  # a label a line: the dock is narrow
        self.propose(*self._proposal)
        self._apply({r.study.key: kept[r.study.patient] for r in rows if r.study.patient in kept})
        self.listed.emit(
            f"{_count(len(rows), 'labelled study', 'labelled studies')} of "
            f"{_count(len(patients), 'patient', 'patients')}; the split is by "
            f"patient (change it per row)."
        )

    def propose(self, val_fraction: float, seed: int) -> None:
        """The proposed split by patient (seeded), replacing edits."""
        self._proposal = (val_fraction, seed)
        split = split_by_patient([r.study for r in self.rows], val_fraction, seed)
        self._apply({k: SIDES.index(side) for side in SIDES for k in split[side]})

    def _moved(self, i: int, side: int) -> None:
        patient = self.rows[i].study.patient
        self._apply({r.study.key: side for r in self.rows if r.study.patient == patient})

    def _apply(self, sides: dict[str, int]) -> None:
        for i, r in enumerate(self.rows):
            combo = self.table.cellWidget(i, 3)
            if r.study.key in sides and combo.currentIndex() != sides[r.study.key]:
                combo.blockSignals(True)
                combo.setCurrentIndex(sides[r.study.key])
                combo.blockSignals(False)
        self._summarise()

    def split(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {side: [] for side in SIDES}
        for i, r in enumerate(self.rows):
            out[SIDES[self.table.cellWidget(i, 3).currentIndex()]].append(r.study.key)
        return out

    def labels(self) -> dict[str, tuple[int, int]]:
        """Each label of the listed studies by the name the reader gave it (its number
        when the label map has no names) -> (its value, how many studies hold it)."""
        out: dict[str, tuple[int, int]] = {}
        for r in self.rows:
            for v, n in sorted(r.counts.items()):
                key = r.study.segments.get(v) or str(v)
                if n:
                    out[key] = (v, out.get(key, (v, 0))[1] + 1)
        return out

    def _label_name(self, value: int) -> str:
        """A label value as the studies name it (the table's words), else the model's."""
        named = next(
            (r.study.segments[value] for r in self.rows if r.study.segments.get(value)), None
        )
        return named or str(self.names.get(value, value))

    def _summarise(self) -> None:
        split, parts, missing = self.split(), [], []
        labels = sorted({v for r in self.rows for v in r.counts})
        for side, title in zip(SIDES, ("Training", "Validation"), strict=True):
            rows = [r for r in self.rows if r.study.key in split[side]]
            with_label = {v: sum(1 for r in rows if r.counts.get(v)) for v in labels}
            names = ", ".join(f"{self._label_name(v)} in {n}" for v, n in with_label.items())
            n_patients = len({r.study.patient for r in rows})
            parts.append(
                f"{title}: {_count(len(rows), 'study', 'studies')} of "
                f"{_count(n_patients, 'patient', 'patients')}"
                f"{' — ' + names if names and rows else ''}."
            )
            if side == "val" and rows:
                missing = [self._label_name(v) for v, n in with_label.items() if not n]
        if self.folds >= 2:  # the sides only matter for a run of one held-out split
            with_label = {v: sum(1 for r in self.rows if r.counts.get(v)) for v in labels}
            names = ", ".join(f"{self._label_name(v)} in {n}" for v, n in with_label.items())
            n_patients = len({r.study.patient for r in self.rows})
            self.summary.setText(
                f"Cross-validation: {_count(len(self.rows), 'study', 'studies')} of "
                f"{_count(n_patients, 'patient', 'patients')} in "
                f"{min(self.folds, n_patients)} folds by patient"
                f"{' — ' + names if names else ''}. Each study is held out once, then the "
                f"version trains on all of them (the sides below apply with 1 fold only, "
                f"set under Advanced)."
            )
            return
        if missing:
            parts.append(
                f"No validation study has {', '.join(missing)}: its Dice will not be measured."
            )
        if len(split["val"]) == 1:
            parts.append(
                "One validation study: the numbers that decide whether the new "
                "version is better are from that study alone, so they vary a lot."
            )
        self.summary.setText(" ".join(parts))

    def set_folds(self, folds: int) -> None:
        """The form's cross-validation folds changed: say how the studies will be used."""
        self.folds = folds
        if self.rows:
            self._summarise()

    def problem(self) -> str | None:
        """Why the split cannot train, as one sentence; None when it can."""
        if not self.rows:
            return (
                "No labelled studies are listed: mark studies done (or choose a folder), "
                "then Refresh."
            )
        if len({r.study.patient for r in self.rows}) < 2:
            return (
                "All listed studies are of one patient: label a study of another patient "
                "to validate on, since a patient on both sides flatters the numbers."
            )
        split = self.split()
        if not split["train"] or not split["val"]:
            return (
                "Training and validation each need at least one patient's studies: move "
                "one patient to the other side."
            )
        return None

    def shutdown(self) -> None:
        self._again = False  # no listing after this one
        if self._lister is not None:
            self._lister.cancel()

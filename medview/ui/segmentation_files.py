"""SegmentationFiles: File > Import segmentation… and Export segmentation as DICOM SEG… /
NIfTI…, for the labels of the open series.

Exports go only where the reader points the save dialog (and a NIfTI's segment table
beside it, <name>.segments.json); a DICOM SEG references the series' source images, so
it is offered for DICOM series only. Imports take DICOM SEG and NIfTI / NRRD label maps
made elsewhere (3D Slicer, OHIF, ITK-SNAP, highdicom) onto the open series they match by
reference or geometry; anything else is refused in one sentence. Both run as jobs
(jobs.label_files) on their own thread pool, and a result for a series no longer shown is
dropped. An import never overwrites the reader's own labels: onto an empty label map it
becomes the label map; onto one with segments it is added as new segments, into background
voxels only, as one undo step (LabelEditor.add_labels)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.labels import LabelMap
from medview.io.labels.match import ImportedLabels, LabelTarget
from medview.io.workspace import safe_name
from medview.jobs.label_files import NIFTI, SEG, export_labels_job, import_labels_job
from medview.ui.workers import JobWorker

if TYPE_CHECKING:
    from medview.ui.annotation import Annotation

IMPORT_FILTER = (
    "Segmentations (*.dcm *.DCM *.nii *.nii.gz *.nrrd);;DICOM SEG (*.dcm *.DCM);;"
    "NIfTI / NRRD label maps (*.nii *.nii.gz *.nrrd);;All files (*)"
)
SUFFIX = {SEG: ".dcm", NIFTI: ".nii.gz"}
TITLES = {SEG: "Export segmentation as DICOM SEG", NIFTI: "Export segmentation as NIfTI"}


class SegmentationFiles(QtCore.QObject):
    done = QtCore.Signal(str)  # the sentence said when an import or export ended

    def __init__(self, annotation: Annotation) -> None:
        super().__init__(annotation)
        self.ann, self.w = annotation, annotation.w
        # owned by the app: a pool freed by Python's GC waits for its threads holding
        # the GIL they need (see ui/version_overlay_compare.py)
        self._pool = QtCore.QThreadPool(QtCore.QCoreApplication.instance())
        self.worker: JobWorker | None = None
        menu = self.w.menus.file_menu
        quit_action = next(
            a for a in menu.actions() if a.menuRole() == QtGui.QAction.MenuRole.QuitRole
        )
        before = menu.actions()[menu.actions().index(quit_action) - 1]  # its separator
        self.import_action = QtGui.QAction("&Import segmentation…", self)
        self.import_action.triggered.connect(self.import_dialog)
        self.export_actions = {
            kind: QtGui.QAction(TITLES[kind] + "…", self) for kind in (SEG, NIFTI)
        }
        for kind, act in self.export_actions.items():
            act.triggered.connect(lambda _=False, k=kind: self.export_dialog(k))
        menu.insertSeparator(before)
        for act in (self.import_action, *self.export_actions.values()):
            menu.insertAction(before, act)
        menu.aboutToShow.connect(self.update_enabled)
        self.update_enabled()

    def update_enabled(self) -> None:
        ed, busy = self.ann.editor, self.busy()
        self.import_action.setEnabled(ed is not None and not busy)
        has_labels = ed is not None and bool(ed.label_map.segments)
        self.export_actions[NIFTI].setEnabled(has_labels and not busy)
        self.export_actions[SEG].setEnabled(has_labels and not busy and self._series() is not None)
        self.export_actions[SEG].setToolTip(
            "" if self._series() is not None else "A DICOM SEG needs a DICOM series"
        )

    def busy(self) -> bool:
        return self.worker is not None and self.worker.running

    def _still_busy(self) -> bool:
        """A request while the last import or export still runs (the menu is disabled then,
        but a result arrives a moment before its thread ends) is answered, not dropped."""
        if self.busy():
            self._finished(
                "An import or export of labels is still running; try again when it has ended."
            )
            return True
        return False

    def _series(self):
        s = self.w.series
        return s if s is not None and s.key == self.w.state.series_key else None

    # -- export
    def export_dialog(self, kind: str) -> None:
        ed = self.ann.editor
        if ed is None:
            return
        v = self.w.state.volume
        stem = safe_name(f"{v.metadata.series_description or 'labels'}-labels")
        start = str(Path(self.w.settings.last_folder or Path.home()) / (stem + SUFFIX[kind]))
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self.w,
            TITLES[kind],
            start,
            "DICOM SEG (*.dcm)" if kind == SEG else "NIfTI (*.nii.gz *.nii);;NRRD (*.nrrd)",
        )
        if path:
            self.export_to(kind, path)

    def export_to(self, kind: str, path: str) -> JobWorker | None:
        """Write the open series' labels, as they are now, to `path` (chosen by the
        reader) off the GUI thread."""
        ed = self.ann.editor
        if ed is None or self._still_busy():
            return None
        if kind == SEG and not Path(path).suffix:
            path += SUFFIX[SEG]
        copy = LabelMap(
            ed.label_map.array.copy(), dict(ed.label_map.segments), ed.label_map.series_key
        )
        worker = JobWorker(
            export_labels_job,
            kind,
            copy,
            path,
            parent=self,
            series=self._series(),
            affine=self.w.state.volume.affine,
        )
        worker.result.connect(
            lambda notes: self._finished(
                f"Segmentation saved to {path}." + "".join(f" {n}" for n in notes)
            )
        )
        return self._start(worker, "Saving the segmentation…", "Segmentation not saved")

    # -- import
    def import_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self.w, "Import segmentation", self.w.settings.last_folder, IMPORT_FILTER
        )
        if path:
            self.import_from(path)

    def import_from(self, path: str) -> JobWorker | None:
        """Read a DICOM SEG or label map made elsewhere onto the open series."""
        v, key = self.w.state.volume, self.w.state.series_key
        if self.ann.editor is None or v is None or self._still_busy():
            return None
        series = self._series()
        target = (
            LabelTarget.from_series(series)
            if series is not None
            else LabelTarget.from_volume(v, key)
        )
        worker = JobWorker(import_labels_job, path, [target], parent=self)
        worker.result.connect(lambda imported: self._imported(path, imported, v))
        return self._start(worker, "Reading the segmentation…", "Segmentation not imported")

    def _imported(self, path: str, imported: ImportedLabels, volume) -> None:
        ed = self.ann.editor
        if (
            ed is None
            or self.w.state.volume is not volume
            or imported.series_key != self.w.state.series_key
        ):
            self._finished(
                "The imported segmentation was for a series no longer shown; it was dropped."
            )
            return
        name = Path(path).name
        if not ed.label_map.segments and not ed.label_map.array.any():
            self.ann.replace_labels(imported.label_map)
        else:  # beside the reader's segments, never over their voxels; one undo step
            ed.add_labels(imported.label_map, name=f"Import {name}")
        n = len(imported.label_map.segments)
        self._finished(
            f"Imported {n} segment(s) from {name}."
            + "".join(f" {note}" for note in imported.notes),
            box=bool(imported.notes),
        )

    # -- both
    def _start(self, worker: JobWorker, saying: str, failure: str) -> JobWorker:
        worker.failed.connect(lambda sentence: self._fail(failure, sentence))
        worker.finished.connect(self.update_enabled)
        self.worker = worker
        self.w.status_label.setText(saying)
        worker.start(self._pool)
        self.update_enabled()
        return worker

    def _finished(self, sentence: str, box: bool = False) -> None:
        self.w.status_label.setText(sentence)
        if box:
            self.w.message("Segmentation", sentence)
        self.done.emit(sentence)

    def _fail(self, title: str, sentence: str) -> None:
        self.w.status_label.setText(sentence)
        self.w.message(title, sentence, QtWidgets.QMessageBox.Icon.Warning)
        self.done.emit(sentence)

    def shutdown(self, wait_ms: int = 10_000) -> None:
        self._pool.waitForDone(wait_ms)

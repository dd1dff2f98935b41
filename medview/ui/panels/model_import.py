"""The AI panel's "Import model…": choose a MONAI bundle or an nnU-Net model, see what it
would run, and import it. A bundle that would run its own code (TorchScript, expressions or
unknown classes in its config) is imported only after the reader says so in a warning that
lists why; the card records that consent."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medview.jobs.model_import import ImportPreview, import_job, preview_job
from medview.ui.workers import JobWorker

ALLOW = "Import and allow its code"
CHOOSE = (
    "Import a model: a MONAI bundle (.zip, or configs/metadata.json in its folder) or "
    "an nnU-Net v2 model (its dataset.json)"
)


class ModelImporter(QtCore.QObject):
    """Runs the import dialog for `parent`; `imported(entry)` when a model was added,
    `said(text)` for the status line."""

    imported = QtCore.Signal(object)
    said = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget, pool: QtCore.QThreadPool) -> None:
        super().__init__(parent)
        self._parent, self._pool = parent, pool
        self.worker: JobWorker | None = None

    def busy(self) -> bool:
        return self.worker is not None and self.worker.running

    def choose(self) -> None:
        if self.busy():
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self._parent, CHOOSE, "", "Models (*.zip metadata.json dataset.json plans.json)"
        )
        if path:
            self.start(path)

    def start(self, path: str) -> None:
        """Read what `path` holds (in a worker), then ask and import."""
        self._run(preview_job, path, self._previewed)
        self.said.emit("Reading the model…")

    def _run(self, job, path, on_result, **kwargs) -> None:
        self.worker = JobWorker(job, path, parent=self, **kwargs)
        self.worker.result.connect(on_result)
        self.worker.failed.connect(lambda text: self._tell("Model not imported", text))
        self.worker.start(self._pool)

    def _previewed(self, preview: ImportPreview) -> None:
        if preview.unsupported:
            self._tell(
                "Model not imported",
                f"MedView cannot run {preview.path.name}: {preview.unsupported[0]}.",
            )
            return
        allow = False
        if preview.needs_code:
            if not self.ask_consent(preview):
                self.said.emit(f"{preview.path.name} was not imported: it would run its own code.")
                return
            allow = True
        self._run(import_job, str(preview.path), self._done, allow_code=allow)
        self.said.emit(f"Importing {preview.path.name}…")

    def ask_consent(self, preview: ImportPreview) -> bool:
        """The warning that lists what code the model would run; True only for ALLOW."""
        box = QtWidgets.QMessageBox(self._parent)
        box.setIcon(QtWidgets.QMessageBox.Icon.Warning)
        box.setWindowTitle("This model runs its own code")
        box.setText(
            f"{preview.path.name} would run code that came with it. Import it only "
            f"if you trust where it came from; your consent is recorded on its card."
        )
        box.setDetailedText(
            "\n".join(["Why:", *preview.needs_code, "", "What it runs:", *preview.lines])
        )
        allow = box.addButton(ALLOW, QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        return box.clickedButton() is allow

    def _done(self, entry) -> None:
        self.said.emit(
            f"Imported {entry.ref}"
            + (" (runs its own code, with your consent)." if entry.card.consent else ".")
        )
        self.imported.emit(entry)

    def _tell(self, title: str, text: str) -> None:
        self.said.emit(text)
        QtWidgets.QMessageBox.warning(self._parent, title, text)

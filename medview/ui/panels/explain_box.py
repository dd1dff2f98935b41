"""ExplainBox: "Explain slice" — the slice classifier's lesion probability for the image on
screen, and its Grad-CAM heatmap (where its evidence lies) laid over that image.

The classifier reads the current image with its neighbours (jobs.ai_assist
.explain_slice_job, off the GUI thread); the heatmap becomes an overlay layer on that one
slice, every other slice empty, named after the model and version, and replaced by the
next explanation. Without a slice classifier installed, or without the Grad-CAM module,
the button is disabled and its tooltip says why."""

from __future__ import annotations

import importlib.util

from PySide6 import QtCore, QtWidgets

from medview.ai.models.cards import DISCLAIMER
from medview.ai.models.registry import ModelEntry
from medview.jobs.ai_assist import SliceExplanation, explain_slice_job
from medview.ui.workers import JobWorker
from medview.viewer.ai_results import explanation_layer
from medview.viewer.layers import OverlayLayer
from medview.viewer.state import ViewerState

READY_TIP = "Grad-CAM of the slice classifier on the current image: where its evidence lies"


def unavailable_reason(entry: ModelEntry | None) -> str:
    """Why Explain slice cannot run here, or "" when it can."""
    if importlib.util.find_spec("medview.ai.runtime.gradcam") is None:
        return "Grad-CAM is not part of this MedView (medview.ai.runtime.gradcam is missing)."
    if entry is None:
        return (
            "No slice classifier is installed: Grad-CAM explains MedView's bundled "
            "slice-classifier model."
        )
    return ""


class ExplainBox(QtWidgets.QWidget):
    explained = QtCore.Signal(object)  # SliceExplanation, once its heatmap is shown
    failed = QtCore.Signal(str)  # one sentence for the reader
    busy_changed = QtCore.Signal()

    def __init__(
        self, state: ViewerState, pool: QtCore.QThreadPool, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state, self._pool = state, pool
        self.classifier: ModelEntry | None = None
        self.worker: JobWorker | None = None
        self.layer: OverlayLayer | None = None  # the heatmap shown
        self.device = "auto"
        self._reason = unavailable_reason(None)
        self._for: tuple | None = None
        self.button = QtWidgets.QPushButton("Explain slice", clicked=self.explain)
        self.label = QtWidgets.QLabel(wordWrap=True)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.button)
        row.addWidget(self.label, 1)
        self.update_enabled()

    def set_classifier(self, entry: ModelEntry | None) -> None:
        self.classifier = entry
        self._reason = unavailable_reason(entry)
        self.update_enabled()

    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def update_enabled(self) -> None:
        self.button.setEnabled(
            self.state.volume is not None and not self._reason and not self.running()
        )
        self.button.setToolTip(self._reason or READY_TIP)

    def reset(self) -> None:
        """A new series: what runs is cancelled, the label cleared (set_volume has already
        taken the layer away)."""
        if self.running():
            self.worker.cancel()
        self.layer = None
        self.label.setText("")
        self.update_enabled()

    def forget_removed_layer(self) -> None:
        if self.layer is not None and not any(x is self.layer for x in self.state.layers):
            self.layer = None

    def explain(self) -> None:
        volume, entry = self.state.volume, self.classifier
        if volume is None or entry is None or self.running():
            return
        index = round(float(self.state.cursor_ijk[0]))
        self._for = (volume, self.state.series_key)
        self.worker = JobWorker(
            explain_slice_job, volume, entry.folder, index, device=self.device, parent=self
        )
        self.worker.result.connect(self._on_explained)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(self._on_finished)
        self.label.setText(f"Explaining image {index + 1}…")
        self.worker.start(self._pool)
        self.update_enabled()
        self.busy_changed.emit()

    def _on_explained(self, ex: SliceExplanation) -> None:
        volume, key = self._for
        if (
            self.sender() is not self.worker
            or self.state.volume is not volume
            or self.state.series_key != key
        ):
            return  # made for a series no longer shown
        if self.layer is not None:
            self.state.remove_layer(self.layer)
        self.layer = explanation_layer(volume.shape, ex.index, ex.heatmap, ex.card.ref)
        self.state.add_layer(self.layer)
        self.label.setText(
            f"Image {ex.index + 1}: lesion probability {ex.probability:.2f} "
            f"({ex.card.ref}; {DISCLAIMER})."
        )
        self.explained.emit(ex)

    def _on_failed(self, sentence: str) -> None:
        if self.sender() is self.worker:
            self.label.setText("")
            self.failed.emit(sentence)

    def _on_finished(self) -> None:
        self.update_enabled()
        self.busy_changed.emit()

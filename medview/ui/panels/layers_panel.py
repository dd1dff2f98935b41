"""LayersPanel: the image and its overlay layers (label maps, probability heatmaps) — shown
or hidden, opacity, colour map and threshold for heatmaps, removed, or added from a file.

The layer list comes first and the selected layer's controls below it (the napari and 3D
Slicer arrangement). Every change goes to the layer in ViewerState and `layers_changed()`,
so every SliceView, in every plane, redraws the overlay. A file is read off the GUI thread
(jobs.studies.open_image_job through JobWorker) and checked against the image grid by
viewer.overlay_files; what does not fit ends in one sentence in the panel and `message`.

A label map found beside the series (io.labels.files.labels_beside: the demo's ground truth,
a study folder `medview train` reads) is read the same way and, when it fits the grid,
offered at the top: "Labels found beside this series: Show / Import into labels" — shown as
a layer here, or handed (`import_labels`) to File > Import segmentation's code."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from medview.core.errors import MedviewError
from medview.core.volume import Volume
from medview.io.image_files import SUPPORTED_READ_SUFFIXES
from medview.jobs.label_files import is_label_file
from medview.jobs.studies import open_image_job
from medview.ui.workers import JobWorker
from medview.viewer import state as st
from medview.viewer.layers import COLOUR_MAPS, OverlayLayer
from medview.viewer.overlay_files import layer_name, overlay_from_image
from medview.viewer.state import ViewerState

FILE_FILTER = (
    "Label or probability maps ("
    + " ".join(f"*{s}" for s in SUPPORTED_READ_SUFFIXES)
    + ");;All files (*)"
)
KIND_TEXT = {"labels": "label map", "heatmap": "heatmap"}
MAP_TITLES = {"CET-L3": "Hot", "CET-L17": "White-red-blue"}  # others: their own name


class LayersPanel(QtWidgets.QWidget):
    """Layers of one ViewerState; row 0 is the image itself (always shown, not removable)."""

    message = QtCore.Signal(str)  # one sentence for the status bar
    offered = QtCore.Signal(str)  # a label map beside the series fits it and is offered
    import_labels = QtCore.Signal(str)  # the reader asked to import that file into labels

    def __init__(self, state: ViewerState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._shown: list[OverlayLayer] = []  # the layers the list rows stand for, in order
        self._syncing = False
        self._worker: JobWorker | None = None
        self._pending: tuple[str, Volume] | None = None  # file being read, for this image
        self._offer_worker: JobWorker | None = None
        self._offer_for: tuple[str, Volume] | None = None  # label file beside, being read
        self.offered_layer: OverlayLayer | None = None  # read, fits, offered
        self._build()
        state.subscribe(self._on_state)
        self._on_state(st.VOLUME)

    def _build(self) -> None:
        self.list = QtWidgets.QListWidget()
        self.list.setToolTip("Tick to show a layer; select it to change it")
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentRowChanged.connect(self._show_controls)
        self.opacity = _slider("Opacity of the selected overlay")
        self.opacity.valueChanged.connect(self._on_opacity)
        self.colour_map = QtWidgets.QComboBox()
        self.colour_map.addItems([MAP_TITLES.get(m, m.capitalize()) for m in COLOUR_MAPS])
        self.colour_map.setToolTip("Colour map of the selected heatmap")
        self.colour_map.activated.connect(self._on_colour_map)
        self.threshold = _slider("Probabilities below this are not drawn")
        self.threshold.valueChanged.connect(self._on_threshold)
        self.threshold_text = QtWidgets.QLabel()
        self.threshold_text.setMinimumWidth(32)
        self.add_button = QtWidgets.QPushButton("Add overlay from file…")
        self.add_button.setToolTip(
            "A NIfTI, NRRD or MetaImage label map or probability map on the image's grid"
        )
        self.add_button.clicked.connect(self._choose_file)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.clicked.connect(self._on_remove)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.offer = QtWidgets.QFrame(frameShape=QtWidgets.QFrame.Shape.StyledPanel)
        self.offer_text = QtWidgets.QLabel(wordWrap=True)
        self.offer_show = QtWidgets.QPushButton("Show", clicked=self._show_offered)
        self.offer_show.setToolTip("Draw the label map over the image as a layer")
        self.offer_import = QtWidgets.QPushButton(
            "Import into labels", clicked=self._import_offered
        )
        self.offer_import.setToolTip(
            "Copy it into this series' labels (Labels panel), to "
            "edit it; as File > Import segmentation"
        )
        offer_buttons = QtWidgets.QHBoxLayout()
        offer_buttons.addWidget(self.offer_show)
        offer_buttons.addWidget(self.offer_import)
        offer_layout = QtWidgets.QVBoxLayout(self.offer)
        offer_layout.setContentsMargins(6, 6, 6, 6)
        offer_layout.addWidget(self.offer_text)
        offer_layout.addLayout(offer_buttons)
        self.offer.hide()

        form = QtWidgets.QGridLayout()
        form.addWidget(QtWidgets.QLabel("Opacity"), 0, 0)
        form.addWidget(self.opacity, 0, 1, 1, 2)
        form.addWidget(QtWidgets.QLabel("Colours"), 1, 0)
        form.addWidget(self.colour_map, 1, 1, 1, 2)
        form.addWidget(QtWidgets.QLabel("Threshold"), 2, 0)
        form.addWidget(self.threshold, 2, 1)
        form.addWidget(self.threshold_text, 2, 2)
        form.setColumnStretch(1, 1)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.add_button, 1)
        buttons.addWidget(self.remove_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.offer)
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

    # -- state -> widgets
    def _on_state(self, what: str) -> None:
        if what == st.VOLUME:
            self._pending = None  # a file still being read was for the previous image
            self._offer_for = self.offered_layer = None  # so was a label file beside it
            self.offer.hide()
            self._set_status("")
            self._fill_list()
        elif what == st.LAYERS and [id(x) for x in self.state.layers] != [
            id(x) for x in self._shown
        ]:
            self._fill_list()  # added or removed; a changed setting keeps the rows
            self.offer_show.setEnabled(
                self.offered_layer is not None
                and not any(x is self.offered_layer for x in self.state.layers)
            )
        else:
            return  # slices, window, display: nothing here changes (scrolling stays free)
        self.add_button.setEnabled(self.state.volume is not None and self._pending is None)

    def _fill_list(self) -> None:
        current = self.list.currentRow()
        self._syncing = True
        try:
            self.list.clear()
            self._shown = list(self.state.layers)
            v = self.state.volume
            if v is not None:
                title = v.metadata.series_description or v.metadata.modality or "volume"
                image = QtWidgets.QListWidgetItem(f"Image: {title}")
                image.setFlags(
                    QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsSelectable
                )
                image.setCheckState(QtCore.Qt.CheckState.Checked)
                image.setToolTip("The image itself: always shown, cannot be removed")
                self.list.addItem(image)
            for layer in self._shown:
                item = QtWidgets.QListWidgetItem(f"{layer.name}  ({KIND_TEXT[layer.kind]})")
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    QtCore.Qt.CheckState.Checked
                    if layer.visible
                    else QtCore.Qt.CheckState.Unchecked
                )
                self.list.addItem(item)
        finally:
            self._syncing = False
        self.list.setCurrentRow(min(max(current, 0), self.list.count() - 1))
        self._show_controls()

    def selected_layer(self) -> OverlayLayer | None:
        row = self.list.currentRow()
        return self._shown[row - 1] if 1 <= row <= len(self._shown) else None

    def _show_controls(self) -> None:
        layer = self.selected_layer()
        heat = layer is not None and layer.kind == "heatmap"
        self._syncing = True
        try:
            self.opacity.setValue(round(100 * layer.opacity) if layer else 100)
            if heat and layer.colour_map in COLOUR_MAPS:
                self.colour_map.setCurrentIndex(COLOUR_MAPS.index(layer.colour_map))
            self.threshold.setValue(round(100 * layer.threshold) if heat else 0)
            self.threshold_text.setText(f"{self.threshold.value() / 100:.2f}" if heat else "")
        finally:
            self._syncing = False
        for widget, enabled in (
            (self.opacity, layer is not None),
            (self.remove_button, layer is not None),
            (self.colour_map, heat),
            (self.threshold, heat),
        ):
            widget.setEnabled(enabled)

    # -- widgets -> state
    def _changed(self) -> None:
        if not self._syncing:
            self.state.layers_changed()

    def _on_item_changed(self, item: QtWidgets.QListWidgetItem) -> None:
        row = self.list.row(item)
        if self._syncing or not 1 <= row <= len(self._shown):
            return
        self._shown[row - 1].visible = item.checkState() == QtCore.Qt.CheckState.Checked
        self._changed()

    def _on_opacity(self, value: int) -> None:
        layer = self.selected_layer()
        if layer is not None and not self._syncing:
            layer.opacity = value / 100
            self._changed()

    def _on_colour_map(self, index: int) -> None:
        layer = self.selected_layer()
        if layer is not None and layer.kind == "heatmap":
            layer.colour_map = COLOUR_MAPS[index]
            self._changed()

    def _on_threshold(self, value: int) -> None:
        layer = self.selected_layer()
        if layer is not None and layer.kind == "heatmap" and not self._syncing:
            layer.threshold = value / 100
            self.threshold_text.setText(f"{layer.threshold:.2f}")
            self._changed()

    def _on_remove(self) -> None:
        layer = self.selected_layer()
        if layer is not None:
            self.state.remove_layer(layer)
            self._set_status(f"Removed {layer.name}.")

    # -- adding a file
    def _choose_file(self) -> None:
        v = self.state.volume
        start = str(Path(v.metadata.source).parent) if v and v.metadata.source else ""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Add overlay from file", start, FILE_FILTER
        )
        if path:
            self.add_overlay_file(path)

    def add_overlay_file(self, path: str) -> None:
        """Read `path` in the background; it becomes a layer if it fits the image shown."""
        if self.state.volume is None or self._pending is not None:
            return
        self._pending = (path, self.state.volume)
        self.add_button.setEnabled(False)
        self._set_status(f"Reading {Path(path).name}…")
        self._worker = JobWorker(open_image_job, path, parent=self)
        self._worker.result.connect(self._on_read)
        self._worker.failed.connect(self._on_failed)
        self._worker.start()

    def _on_read(self, overlay: Volume) -> None:
        if self.sender() is not self._worker:
            return  # an earlier read, superseded
        pending, self._pending = self._pending, None
        self.add_button.setEnabled(self.state.volume is not None)
        if pending is None or pending[1] is not self.state.volume:
            return  # the image changed while the file was read: it was not for this one
        path = pending[0]
        try:
            layer = overlay_from_image(overlay, self.state.volume, layer_name(path))
        except MedviewError as error:
            self._set_status(str(error))
            return
        self.state.add_layer(layer)
        self.list.setCurrentRow(len(self._shown))  # the new layer, ready to adjust
        self._set_status(f"Added {layer.name} as a {KIND_TEXT[layer.kind]}.")

    def _on_failed(self, sentence: str) -> None:
        if self.sender() is not self._worker:
            return
        self._pending = None
        self.add_button.setEnabled(self.state.volume is not None)
        self._set_status(sentence)

    # -- a label map found beside the series
    def offer_labels(self, path: str) -> None:
        """Read `path` (labels_beside found it) in the background and offer it when it is a
        label map on the image's grid; one that does not fit is said in the status line."""
        if self.state.volume is None:
            return
        self._offer_for = (path, self.state.volume)
        self._offer_worker = JobWorker(open_image_job, path, parent=self)
        self._offer_worker.result.connect(self._on_offer_read)
        self._offer_worker.failed.connect(self._on_offer_failed)
        self._offer_worker.start()

    def _on_offer_read(self, overlay: Volume) -> None:
        if self.sender() is not self._offer_worker or self._offer_for is None:
            return
        path, volume = self._offer_for
        if volume is not self.state.volume:
            return
        name = Path(path).name
        try:
            layer = overlay_from_image(overlay, volume, f"{layer_name(path)} (beside the series)")
        except MedviewError as error:
            self._set_status(f"Labels found beside this series do not fit it: {error}")
            return
        if layer.kind != "labels":
            return  # a probability map is not offered as labels
        self.offered_layer = layer
        self.offer_text.setText(f"Labels found beside this series: <b>{name}</b>")
        self.offer_text.setToolTip(path)
        self.offer_show.setEnabled(True)
        self.offer_import.setVisible(is_label_file(path))
        self.offer_import.setEnabled(True)
        self.offer.show()
        self.offered.emit(path)

    def _on_offer_failed(self, sentence: str) -> None:
        if self.sender() is self._offer_worker and self._offer_for is not None:
            self._set_status(f"Labels found beside this series could not be read: {sentence}")

    def _show_offered(self) -> None:
        layer = self.offered_layer
        if layer is not None and not any(x is layer for x in self.state.layers):
            self.state.add_layer(layer)
            self.list.setCurrentRow(len(self._shown))
            self._set_status(f"Added {layer.name} as a label map.")

    def _import_offered(self) -> None:
        if self._offer_for is not None and self.offered_layer is not None:
            self.offer_import.setEnabled(False)
            self.import_labels.emit(self._offer_for[0])

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
        if text:
            self.message.emit(text)


def _slider(tip: str) -> QtWidgets.QSlider:
    slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setPageStep(10)
    slider.setToolTip(tip)
    return slider

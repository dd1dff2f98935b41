"""AIDisplay: how the AI result is drawn — threshold, probability heatmap, mask, uncertainty —
with a legend that names the model and says it is not a diagnosis.

The threshold slider (0.05..0.95) acts once it has rested for 100 ms, so dragging it
recomputes a few times, not at every pixel of the drag. The mask moves at once, on the GUI
thread (a fraction of a second); the findings at the new threshold are measured by a job
(jobs.ai_assist.findings_job) — milliseconds for a sound model, seconds for one that lights
up hundreds of regions, which must not freeze the window — and only the latest threshold's
are shown (`findings_changed`). Before any result the slider sets the threshold the next
run uses. The other controls act on the AIResults attached, whose layers sit in the
ViewerState with the rest; a layer hidden or removed in the Layers panel shows here as off
(`sync`)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medview.ai.models.cards import DISCLAIMER
from medview.jobs.ai_assist import findings_job
from medview.ui.panels.layers_panel import MAP_TITLES
from medview.ui.workers import JobWorker
from medview.viewer.ai_results import MASK_MODES, THRESHOLD_RANGE, AIResults
from medview.viewer.layers import COLOUR_MAPS
from medview.viewer.state import ViewerState

DEBOUNCE_MS = 100
OFF, MAX = "off", "max"


class AIDisplay(QtWidgets.QWidget):
    mask_moved = QtCore.Signal(float)  # seconds the mask took; its findings are measured next
    findings_changed = QtCore.Signal()  # the findings at the mask's threshold are in
    failed = QtCore.Signal(str)

    def __init__(
        self, state: ViewerState, pool: QtCore.QThreadPool, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state, self._pool = state, pool
        self.results: AIResults | None = None
        self._measuring: JobWorker | None = None
        self.slider = QtWidgets.QSlider(
            QtCore.Qt.Orientation.Horizontal,
            toolTip=(
                "Probability a voxel needs to count as a finding; the mask and the findings "
                "follow without running the model again"
            ),
        )
        self.slider.setRange(round(THRESHOLD_RANGE[0] * 100), round(THRESHOLD_RANGE[1] * 100))
        self.slider.setValue(50)
        self.slider.setPageStep(5)
        self.value = QtWidgets.QLabel("0.50", minimumWidth=32)
        self._debounce = QtCore.QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self._apply_threshold)
        self.slider.valueChanged.connect(self._on_slider)
        self.heat = QtWidgets.QComboBox(
            toolTip="Probability heatmap: the largest over the labels, one label, or none"
        )
        self.heat.activated.connect(self._on_heat)
        self.colours = QtWidgets.QComboBox(toolTip="Colour map of the probability heatmap")
        self.colours.addItems([MAP_TITLES.get(m, m.capitalize()) for m in COLOUR_MAPS])
        self.colours.activated.connect(self._on_heat_style)
        self.opacity = QtWidgets.QSlider(
            QtCore.Qt.Orientation.Horizontal, toolTip="Opacity of the probability heatmap"
        )
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.valueChanged.connect(self._on_heat_style)
        self.mask = QtWidgets.QComboBox(
            toolTip="Findings mask at the threshold, in the labels' colours"
        )
        self.mask.addItems([m.capitalize() for m in MASK_MODES])
        self.mask.activated.connect(self._on_mask)
        self.uncertainty = QtWidgets.QCheckBox(
            "Uncertainty map",
            toolTip=("Where the test-time-augmented runs disagree (needs Uncertainty (TTA))"),
        )
        self.uncertainty.toggled.connect(self._on_uncertainty)
        self.legend = QtWidgets.QLabel(wordWrap=True, textFormat=QtCore.Qt.TextFormat.RichText)

        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        rows = (
            (QtWidgets.QLabel("Threshold"), self.slider, self.value),
            (QtWidgets.QLabel("Heatmap"), self.heat, self.colours),
            (QtWidgets.QLabel("Opacity"), self.opacity, None),
            (QtWidgets.QLabel("Mask"), self.mask, self.uncertainty),
        )
        for r, (label, first, second) in enumerate(rows):
            grid.addWidget(label, r, 0)
            grid.addWidget(first, r, 1, 1, 1 if second else 2)
            if second is not None:
                grid.addWidget(second, r, 2)
        grid.addWidget(self.legend, len(rows), 0, 1, 3)
        grid.setColumnStretch(1, 1)
        self.attach(None)

    def threshold(self) -> float:
        return self.slider.value() / 100

    # -- model -> widgets
    def attach(self, results: AIResults | None) -> None:
        """Draw `results` as the controls say (None: nothing to draw; controls wait)."""
        self.results = results
        with QtCore.QSignalBlocker(self.heat):
            self.heat.clear()
            self.heat.addItem("All labels (max)", MAX)
            for lab in results.card.labels if results else ():
                self.heat.addItem(lab.name, lab.value)
            self.heat.addItem("Off", OFF)
        for widget in (self.heat, self.colours, self.opacity, self.mask):
            widget.setEnabled(results is not None)
        self.uncertainty.setEnabled(results is not None and results.tta)
        if results is None:
            self.legend.setText("")
            return
        if abs(results.threshold - self.threshold()) > 1e-9:
            self._apply_threshold()  # the slider moved while the model ran
        self._on_heat_style()
        self._on_mask()
        self._on_uncertainty(self.uncertainty.isChecked())
        swatches = " ".join(
            f'<span style="color: rgb{tuple(lab.colour)}">■</span> {lab.name}'
            for lab in results.card.labels
        )
        self.legend.setText(f"{swatches}<br><i>AI {results.ref} — {DISCLAIMER}</i>")

    def sync(self) -> None:
        """Show as off what was hidden or removed elsewhere (the Layers panel)."""
        r = self.results
        if r is None:
            return

        def shown(layer) -> bool:
            return (
                layer is not None and layer.visible and any(x is layer for x in self.state.layers)
            )

        with QtCore.QSignalBlocker(self.heat):
            if not shown(r.heat_layer):
                self.heat.setCurrentIndex(self.heat.findData(OFF))
        with QtCore.QSignalBlocker(self.mask):
            mode = (
                ("outline" if r.mask_layer.outline else "filled") if shown(r.mask_layer) else "off"
            )
            self.mask.setCurrentIndex(MASK_MODES.index(mode))
        with QtCore.QSignalBlocker(self.uncertainty):
            self.uncertainty.setChecked(shown(r.uncertainty_layer))

    # -- widgets -> result
    def _on_slider(self, value: int) -> None:
        self.value.setText(f"{value / 100:.2f}")
        self._debounce.start()

    def _apply_threshold(self) -> None:
        if self.results is not None:
            self.mask_moved.emit(self.results.set_threshold(self.threshold()))
            self._measure()

    def _measure(self) -> None:
        """Measure the findings at the mask's threshold, unless a measurement is running:
        when it ends, the latest threshold is measured (those in between are skipped)."""
        r = self.results
        if self._measuring is not None or r is None or abs(r.result.threshold - r.threshold) < 1e-9:
            return
        self._measuring = JobWorker(findings_job, r.result, r.volume, r.threshold, parent=self)
        self._measuring.result.connect(self._on_measured)
        self._measuring.failed.connect(self.failed)
        self._measuring.finished.connect(self._measured)
        self._measuring.start(self._pool)

    def _on_measured(self, result) -> None:
        if self.results is not None and self.results.show_findings(result):
            self.findings_changed.emit()

    def _measured(self) -> None:
        self._measuring = None
        self._measure()

    def _on_heat(self) -> None:
        r = self.results
        if r is None:
            return
        choice = self.heat.currentData()
        if choice != OFF:
            r.set_heat_label(None if choice == MAX else int(choice))
        r.show(r.heat_layer, choice != OFF)

    def _on_heat_style(self) -> None:
        r = self.results
        if r is None:
            return
        r.heat_layer.colour_map = COLOUR_MAPS[self.colours.currentIndex()]
        r.heat_layer.opacity = self.opacity.value() / 100
        self._on_heat()

    def _on_mask(self) -> None:
        if self.results is not None:
            self.results.set_mask_mode(MASK_MODES[self.mask.currentIndex()])

    def _on_uncertainty(self, checked: bool) -> None:
        if self.results is not None:
            self.results.show(self.results.uncertainty_layer, checked)

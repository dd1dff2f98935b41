"""The training panel's Progress tab: training loss and validation Dice per epoch, the time
per epoch and the time left, and the log. The curves are read by someone deciding whether
the run helps, so each axis says what it shows, the epoch axis spans the whole run from the
start (whole epochs, never a scaled "x0.001" axis around a single point), Dice keeps its 0–1
scale, and the base model's own validation Dice (the run's epoch 0) is a dashed line: the
new version is better only where the curve rises above it. Each label's Dice is a thin line
of its own beside the mean (named in a legend): a run can lift one label while another
collapses, which the mean hides."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

BASE_PEN = pg.mkPen((220, 220, 220), width=1, style=QtCore.Qt.PenStyle.DashLine)
LABEL_COLOURS = ((255, 150, 40), (110, 170, 255), (140, 220, 120), (230, 110, 230))
MEAN_COLOUR = (0, 220, 220)


def _swatch(colour: tuple[int, int, int], text: str) -> str:
    """A legend entry; it wraps as a whole, never inside."""
    return f'<span style="color: rgb{colour}">■</span>&nbsp;{_unbroken(text)}'


def _unbroken(text: str) -> str:
    return text.replace(" ", "&nbsp;")


def minutes(seconds: float | None) -> str:
    """A duration as a reader says it: "40 s", "3.5 min"."""
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _plot(title: str, left: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title)
    plot.setLabel("bottom", "epoch")
    plot.setLabel("left", left)
    for axis in ("bottom", "left"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
    plot.setMouseEnabled(x=False, y=False)  # a scroll over the panel must not zoom it
    plot.hideButtons()
    plot.setMinimumHeight(120)
    return plot


class TrainingCurves(QtWidgets.QWidget):
    """The Progress tab. Its two plots are built when the tab is first shown or drawn on:
    two PlotWidgets were about a tenth of `medview PATH`'s start-up to the first image
    (issue 19's profile), for a tab most sessions never open. Until then `loss_plot`,
    `dice_plot`, `loss_curve`, `dice_curve` and `base_line` are built on first use."""

    _LAZY = frozenset({"loss_plot", "dice_plot", "loss_curve", "dice_curve", "base_line"})

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        # the legend under the plot, not in it: a small plot's legend covers the curves
        self.legend = QtWidgets.QLabel(textFormat=QtCore.Qt.TextFormat.RichText, wordWrap=True)
        self.label_curves: dict[str, pg.PlotDataItem] = {}  # per label, made as they come
        self._colours: dict[str, tuple[int, int, int]] = {}
        self.times = QtWidgets.QLabel("time per epoch —, time left —")
        self.log_view = QtWidgets.QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(2000)
        self._layout = QtWidgets.QVBoxLayout(self)
        self._layout.addWidget(self.legend)
        self._layout.addWidget(self.times)
        self._layout.addWidget(self.log_view, 1)
        self._epochs = 1
        self._built = False

    def __getattr__(self, name: str):  # only called for attributes not (yet) set
        if name in TrainingCurves._LAZY and not self.__dict__.get("_built", True):
            self._build_plots()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _build_plots(self) -> None:
        self._built = True
        self.loss_plot = _plot("training loss", "loss")
        self.dice_plot = _plot("validation Dice", "Dice (0–1)")
        self.dice_plot.setYRange(0.0, 1.0, padding=0.02)
        self.loss_curve = self.loss_plot.plot([], [], pen="y", symbol="o", symbolSize=5)
        self.dice_curve = self.dice_plot.plot(
            [], [], pen=pg.mkPen(MEAN_COLOUR, width=2), symbol="o", symbolSize=5
        )
        # named in the legend, not on the plot: a label there covers the latest epochs
        self.base_line = pg.InfiniteLine(angle=0, pen=BASE_PEN, movable=False)
        self.base_line.setVisible(False)
        self.dice_plot.addItem(self.base_line)
        self._layout.insertWidget(0, self.loss_plot, 1)
        self._layout.insertWidget(1, self.dice_plot, 1)
        self.set_epochs(self._epochs)

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        if not self._built:
            self._build_plots()
        super().showEvent(event)

    def set_epochs(self, epochs: int) -> None:
        """The epoch axis spans the run: 0 (the base model) to `epochs`, whole epochs."""
        self._epochs = epochs
        if not self._built:
            return
        step = max(1, math.ceil(epochs / 8))
        for plot in (self.loss_plot, self.dice_plot):
            plot.setXRange(0, max(epochs, 1), padding=0.04)
            plot.getAxis("bottom").setTickSpacing(step, step)

    def draw(self, history: list[dict]) -> None:
        done = [h for h in history if h.get("loss") is not None]
        self.loss_curve.setData([h["epoch"] for h in done], [h["loss"] for h in done])
        dice = [h for h in history if h.get("val_dice") is not None]
        self.dice_curve.setData([h["epoch"] for h in dice], [h["val_dice"] for h in dice])
        names = dict.fromkeys(n for h in dice for n in (h.get("val_dice_per_label") or {}))
        for name in names:
            if name not in self.label_curves:
                colour = LABEL_COLOURS[len(self.label_curves) % len(LABEL_COLOURS)]
                self.label_curves[name] = self.dice_plot.plot([], [], pen=pg.mkPen(colour, width=1))
                self._colours[name] = colour
            points = [
                (h["epoch"], h["val_dice_per_label"][name])
                for h in dice
                if name in (h.get("val_dice_per_label") or {})
            ]
            self.label_curves[name].setData([x for x, _ in points], [y for _, y in points])
        for name, curve in self.label_curves.items():
            if name not in names:  # a label of an earlier run
                curve.setData([], [])
        base = next((h["val_dice"] for h in dice if h["epoch"] == 0), None)
        self.legend.setText(
            "  ".join(
                [_swatch(MEAN_COLOUR, "mean of labels")]
                + [_swatch(self._colours[n], n) for n in names]
                + ([_unbroken(f"dashed: base model {base:.3f}")] if base is not None else [])
            )
        )
        self.base_line.setVisible(base is not None)
        if base is not None:
            self.base_line.setValue(base)
        if history:
            epochs = max(h.get("epochs") or h["epoch"] for h in history)
            self.set_epochs(int(epochs))

    def show_times(self, ev: dict) -> None:
        self.times.setText(
            f"time per epoch {minutes(ev.get('seconds') or None)}, "
            f"time left {minutes(ev.get('eta_s'))}"
        )

    def log(self, text: str) -> None:
        self.log_view.appendPlainText(text)

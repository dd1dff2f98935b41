"""SegmentsPanel: the reader's labels of the open series — segments, tools, clean-up, undo,
and whether the study is done.

Top to bottom, the order of 3D Slicer's Segment Editor: the segment table (SegmentTable)
with Add / Remove; the tools and their settings (LabelToolBox); the whole-segment actions
(fill between slices, remove small islands, smooth); Undo / Redo naming the step they take
back or redo; and the study's label status, draft or done (ready for training) with who
marked it and when.

Every button is one call into the LabelEditor (viewer.label_editor), which is Qt-free and
tested headless; the panel listens to the editor's events and shows them. What lives
longer than one editor — choosing the tool for the views, the store, the status — goes
out as signals to the main window's Annotation, so the panel also works on its own in a
test. Voxel counts follow the edits step by step (core.history's `last`: the voxels a
stroke, action, undo or redo moved), so painting never recounts the volume."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from medview.io.labels.store import DONE, LabelStatus
from medview.ui.panels.label_tool_box import NAVIGATE, LabelToolBox
from medview.ui.panels.segment_table import SegmentTable
from medview.viewer.label_editor import LabelEditor
from medview.viewer.state import ViewerState

DEFAULT_SEGMENT = "Lesion"
UNREVIEWED_STYLE = "color: #f0b040;"
DONE_STYLE = "color: #60c080; font-weight: bold;"
DRAFT_STYLE = "color: #e0a030; font-weight: bold;"


class SegmentsPanel(QtWidgets.QWidget):
    tool_changed = QtCore.Signal(object)  # the tool box's settings (dict); name "wl" = off
    status_toggled = QtCore.Signal(bool)  # True: mark done, False: back to draft
    message = QtCore.Signal(str)  # one sentence for the status bar

    def __init__(self, state: ViewerState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.editor: LabelEditor | None = None
        self.counts: dict[int, int] = {}
        self._counted = None  # the history step last counted (history.last)
        self._build()
        self.attach(None)

    # -- building
    def _build(self) -> None:
        self.title = QtWidgets.QLabel(wordWrap=True)
        self.table = SegmentTable()
        self.table.edited.connect(self._on_edited)
        self.table.colour_clicked.connect(self.choose_colour)
        self.table.confirm_clicked.connect(self.confirm)
        self.table.chosen.connect(self._on_chosen)
        self.detail = QtWidgets.QLabel(wordWrap=True)
        self.add_button = QtWidgets.QPushButton(
            "Add segment", clicked=self.add_segment, toolTip="A new segment to paint (N)"
        )
        self.remove_button = QtWidgets.QPushButton(
            "Remove",
            clicked=self.remove_segment,
            toolTip="Remove the selected segment and its voxels (can be undone)",
        )
        self.tools = LabelToolBox(lambda: self.state.window)
        self.tools.changed.connect(self.tool_changed)

        self.interpolate_button = QtWidgets.QPushButton(
            "Fill between slices",
            clicked=self.interpolate,
            toolTip="Draw the segment every few slices, then fill the slices between "
            "(morphological contour interpolation)",
        )
        self.islands = QtWidgets.QSpinBox(
            suffix=" mm³", toolTip="Pieces smaller than this are removed"
        )
        self.islands.setRange(1, 100_000)
        self.islands.setValue(30)
        self.islands_button = QtWidgets.QPushButton("Remove islands <", clicked=self.remove_islands)
        self.smooth_mm = QtWidgets.QDoubleSpinBox(
            suffix=" mm",
            decimals=1,
            toolTip=("Bumps, spikes, holes and notches narrower than this go"),
        )
        self.smooth_mm.setRange(0.5, 20.0)
        self.smooth_mm.setValue(2.0)
        self.smooth_button = QtWidgets.QPushButton("Smooth", clicked=self.smooth)

        self.undo_button = QtWidgets.QPushButton("Undo", clicked=self.undo)
        self.redo_button = QtWidgets.QPushButton("Redo", clicked=self.redo)
        self.status_label = QtWidgets.QLabel(wordWrap=True)
        self.done_button = QtWidgets.QPushButton(checkable=True)
        self.done_button.clicked.connect(self.status_toggled)

        segments = QtWidgets.QHBoxLayout()
        segments.addWidget(self.add_button)
        segments.addWidget(self.remove_button)
        segments.addStretch(1)
        actions = QtWidgets.QGridLayout()
        actions.addWidget(self.interpolate_button, 0, 0, 1, 3)
        actions.addWidget(self.islands_button, 1, 0, 1, 2)
        actions.addWidget(self.islands, 1, 2)
        actions.addWidget(self.smooth_button, 2, 0, 1, 2)
        actions.addWidget(self.smooth_mm, 2, 2)
        undo = QtWidgets.QHBoxLayout()
        undo.addWidget(self.undo_button, 1)
        undo.addWidget(self.redo_button, 1)
        status = QtWidgets.QHBoxLayout()
        status.addWidget(self.status_label, 1)
        status.addWidget(self.done_button)

        inner = QtWidgets.QWidget()
        scroll = QtWidgets.QScrollArea(
            widgetResizable=True, frameShape=QtWidgets.QFrame.Shape.NoFrame
        )
        scroll.setWidget(inner)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        layout = QtWidgets.QVBoxLayout(inner)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addLayout(segments)
        layout.addWidget(_heading("Tools"))
        layout.addWidget(self.tools)
        layout.addWidget(_heading("Selected segment"))
        layout.addLayout(actions)
        layout.addLayout(undo)
        layout.addWidget(_heading("Study"))
        layout.addLayout(status)

    # -- the editor shown
    def attach(self, editor: LabelEditor | None, status: LabelStatus | None = None) -> None:
        """Show `editor`'s labels (None: no series open); `status` is the study's."""
        if self.editor is not None:
            self.editor.unsubscribe(self._on_editor)
        self.editor = editor
        if editor is not None:
            self._counted = editor.history.last
            editor.subscribe(self._on_editor)
            t = editor.tool
            self.tools.show_settings(
                {
                    "name": NAVIGATE,
                    "radius_mm": t.radius_mm,
                    "sphere": t.sphere,
                    "hu_range": t.hu_range,
                    "tolerance_hu": t.tolerance_hu,
                }
            )
            self.recount()
        else:
            self.counts = {}
            self.tools.show_settings({"name": NAVIGATE})
        v = self.state.volume if editor is not None else None
        self.title.setText(
            f"Labels of {v.metadata.series_description or 'this series'}"
            if v is not None
            else "Open a series to label it."
        )
        self.show_status(status)
        self._fill()

    def _on_editor(self, what: str) -> None:
        if what in ("segments", "active"):
            self._fill()
        elif what == "history":
            last = self.editor.history.last
            if last is not None and last is not self._counted:
                self._counted = last
                change, undone = last
                self._count_change(
                    change.new if undone else change.old, change.old if undone else change.new
                )
            self._update_enabled()
        elif what == "tool":
            self.tools.show_settings(
                {**_tool_dict(self.editor), "name": self.tools.settings()["name"]}
            )

    def _fill(self) -> None:
        ed = self.editor
        segments = sorted(ed.label_map.segments.values(), key=lambda s: s.value) if ed else []
        self.table.set_segments(
            segments,
            self.counts,
            self._voxel_ml(),
            ed.active if ed and ed.active is not None else 0,
        )
        self._show_detail()
        self._update_enabled()

    def _show_detail(self) -> None:
        """The selected segment in words: what it is, where it came from, how big."""
        ed = self.editor
        seg = ed.label_map.segments.get(ed.active) if ed and ed.active is not None else None
        if seg is None:
            self.detail.setText("Add a segment to start labelling." if ed else "")
            self.detail.setStyleSheet("")
            return
        n = self.counts.get(seg.value, 0)
        where = ""
        if seg.made_by:
            where = f" · AI {seg.made_by}, " + ("reviewed" if seg.reviewed else "not reviewed")
        self.detail.setText(
            f"{seg.name} ({seg.type.meaning}){where} · {n:,} voxels, {n * self._voxel_ml():.2f} mL"
        )
        self.detail.setStyleSheet(UNREVIEWED_STYLE if seg.made_by and not seg.reviewed else "")

    def _update_enabled(self) -> None:
        ed = self.editor
        has, chosen = ed is not None, ed is not None and ed.active is not None
        self.add_button.setEnabled(has)
        self.tools.setEnabled(has)
        for widget in (
            self.remove_button,
            self.interpolate_button,
            self.islands_button,
            self.smooth_button,
        ):
            widget.setEnabled(chosen)
        undo, redo = (ed.undo_name, ed.redo_name) if ed else ("", "")
        self.undo_button.setEnabled(bool(undo))
        self.redo_button.setEnabled(bool(redo))
        self.undo_button.setText(_short(f"Undo {undo}" if undo else "Undo"))
        self.redo_button.setText(_short(f"Redo {redo}" if redo else "Redo"))
        self.undo_button.setToolTip(f"Undo: {undo} (Ctrl+Z)" if undo else "Nothing to undo")
        self.redo_button.setToolTip(f"Redo: {redo} (Ctrl+Shift+Z)" if redo else "Nothing to redo")
        self.done_button.setEnabled(has)

    def show_status(self, status: LabelStatus | None) -> None:
        done = status is not None and status.state == DONE
        if status is None or not self.editor:
            self.status_label.setText("")
        elif done:
            self.status_label.setText(f"Done — {status.by or 'unknown'}, {when_text(status.at)}")
        else:
            self.status_label.setText(
                "Draft" + (f" — {status.by}, {when_text(status.at)}" if status.at else "")
            )
        self.status_label.setStyleSheet(DONE_STYLE if done else DRAFT_STYLE)
        self.status_label.setToolTip(
            "Done: ready for training (the fine-tuning list)"
            if done
            else "Draft: still being labelled"
        )
        self.done_button.setChecked(done)
        self.done_button.setText("Back to draft" if done else "Mark done")

    # -- counts
    def _voxel_ml(self) -> float:
        v = self.state.volume
        return float(np.prod(v.spacing_mm)) / 1000.0 if v is not None else 0.0

    def recount(self) -> None:
        """Count every segment's voxels: one pass for the labelled voxels, then a
        histogram of those only (np.bincount of the whole uint8 volume widens it to int64:
        seconds for 300 x 512 x 512, where this takes a tenth of one)."""
        ed = self.editor
        if ed is None:
            return
        flat = ed.label_map.array.reshape(-1)
        hist = np.bincount(flat[flat != 0], minlength=256)
        self.counts = {v: int(hist[v]) for v in ed.label_map.segments}
        self.table.set_counts(self.counts, self._voxel_ml())
        self._show_detail()

    def _count_change(self, old: np.ndarray, new: np.ndarray) -> None:
        """Counts moved by one step: its voxels leave their old values for the new."""
        for values, sign in ((old, -1), (new, 1)):
            found, n = np.unique(values, return_counts=True)
            for v, k in zip(found.tolist(), n.tolist(), strict=True):
                self.counts[v] = self.counts.get(v, 0) + sign * k
        self.table.set_counts(self.counts, self._voxel_ml())
        self._show_detail()

    # -- buttons -> editor
    def add_segment(self) -> None:
        if self.editor is not None:
            seg = self.editor.add_segment(_free_name(self.editor))
            self.counts[seg.value] = 0
            self.message.emit(f"Added segment {seg.name}; pick a tool and paint it.")

    def remove_segment(self) -> None:
        ed = self.editor
        if ed is not None and ed.active is not None:
            name = ed.segment(ed.active).name
            ed.remove_segment(ed.active)
            self.message.emit(f"Removed segment {name} (Undo brings it back).")

    def _on_edited(self, value: int, changes: dict) -> None:
        if self.editor is not None:
            self.editor.update_segment(value, **changes)

    def _on_chosen(self, value: int) -> None:
        if self.editor is not None and value:
            self.editor.set_active(value)

    def choose_colour(self, value: int) -> QtWidgets.QColorDialog | None:
        """A colour chooser for the segment, not blocking the views; returned for tests."""
        if self.editor is None:
            return None
        dialog = QtWidgets.QColorDialog(QtGui.QColor(*self.editor.segment(value).colour), self)
        dialog.setWindowTitle(f"Colour of {self.editor.segment(value).name}")
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.colorSelected.connect(
            lambda c, v=value: self._on_edited(v, {"colour": (c.red(), c.green(), c.blue())})
        )
        dialog.open()
        self.colour_dialog = dialog
        return dialog

    def confirm(self, value: int) -> None:
        if self.editor is not None:
            seg = self.editor.confirm(value)
            self.message.emit(f"{seg.name} from {seg.made_by} marked reviewed.")

    def interpolate(self) -> None:
        self._act("Fill between slices", lambda ed, v: ed.interpolate(v))

    def remove_islands(self) -> None:
        ml = self._voxel_ml()
        n = max(1, round(self.islands.value() / 1000 / ml)) if ml else 1
        self._act("Remove islands", lambda ed, v: ed.remove_islands(v, n))

    def smooth(self) -> None:
        self._act("Smooth", lambda ed, v: ed.smooth(v, self.smooth_mm.value() / 2))

    def _act(self, name: str, action) -> None:
        ed = self.editor
        if ed is None or ed.active is None:
            return
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            change = action(ed, ed.active)
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self.message.emit(
            f"{name}: {change.size:,} voxels changed."
            if change.size
            else f"{name}: nothing to change."
        )

    def undo(self) -> None:
        if self.editor is not None:
            self.editor.undo()

    def redo(self) -> None:
        if self.editor is not None:
            self.editor.redo()


def _heading(text: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def _short(text: str, limit: int = 22) -> str:
    """Button text that keeps the panel narrow; the tooltip has it whole."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tool_dict(editor: LabelEditor) -> dict:
    t = editor.tool
    return {
        "name": t.name,
        "radius_mm": t.radius_mm,
        "sphere": t.sphere,
        "hu_range": t.hu_range,
        "tolerance_hu": t.tolerance_hu,
    }


def _free_name(editor: LabelEditor) -> str:
    names = {s.name for s in editor.label_map.segments.values()}
    if DEFAULT_SEGMENT not in names:
        return DEFAULT_SEGMENT
    return next(
        f"{DEFAULT_SEGMENT} {n}" for n in range(2, 1000) if f"{DEFAULT_SEGMENT} {n}" not in names
    )


def when_text(iso: str) -> str:
    """'29 Nov 2026 14:05' in local time, from ISO 8601 UTC."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%d %b %Y %H:%M")
    except ValueError:
        return iso

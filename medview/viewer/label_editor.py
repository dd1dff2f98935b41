"""LabelEditor: the one object every label tool goes through — the views' brush, the segments
panel's buttons, accepting AI findings — Qt-free, so each tool runs headless in a test as it
does under the mouse (3D Slicer's rule: every button is one line into logic).

It holds one series' LabelMap, its undo History and the overlay layer that draws it.
Every edit is one History step: a brush stroke from press to release (its dabs merged), or
one action (fill, lasso, interpolate, remove islands, smooth, accept a finding, remove a
segment). A step that also changes the segment table (a segment added or removed, marked
reviewed) carries the table before and after, so undo puts both back. Listeners hear what
changed: "voxels", "segments", "history", "active", "tool"; `revision` counts every voxel
or segment change (autosave watches it).

AI segments (made_by = "model:version") stay reviewed=False until a person edits their
voxels or confirms them. Locked segments are never painted over nor erased (LabelMap.write);
painting with a locked segment does nothing. Hidden segments are transparent in the layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from medview.core.findings import Finding
from medview.core.history import Change, History, merge
from medview.core.labels import LabelMap, Segment
from medview.viewer import label_tools as lt
from medview.viewer.layers import OverlayLayer
from medview.viewer.oblique import ObliqueMap
from medview.viewer.planes import Plane, native_plane
from medview.viewer.state import ViewerState

TOOLS = ("brush", "eraser", "threshold", "fill", "lasso")
STEP_NAMES = {
    "brush": "Paint",
    "eraser": "Erase",
    "threshold": "Threshold paint",
    "fill": "Fill",
    "lasso": "Lasso fill",
}
LABEL_OPACITY = 0.5
# segment fields update_segment takes; visibility is a view setting, not an undo step
SEGMENT_FIELDS = ("name", "colour", "category", "type", "visible", "locked", "reviewed")
Listener = Callable[[str], None]


@dataclass
class ToolSettings:
    name: str = "brush"  # one of TOOLS
    radius_mm: float = 5.0
    sphere: bool = False  # 3D brush: a ball, not a disc in the plane
    hu_range: tuple[float, float] = (-100.0, 300.0)  # the threshold brush's
    tolerance_hu: float = 50.0  # fill: values within this of the clicked voxel's
    fill_3d: bool = False


class LabelEditor:
    def __init__(
        self, state: ViewerState, label_map: LabelMap, history: History | None = None
    ) -> None:
        if state.volume is None or label_map.array.shape != state.volume.shape:
            raise ValueError(
                f"a label map of shape {label_map.array.shape} does not fit the "
                f"image on screen ({state.volume.shape if state.volume else None})"
            )
        self.state, self.volume, self.label_map = state, state.volume, label_map
        self.history = history if history is not None else History()
        self.layer = OverlayLayer("Labels", label_map.array, kind="labels", opacity=LABEL_OPACITY)
        self._sync_colours()
        state.add_layer(self.layer)
        self.active: int | None = min(label_map.segments, default=None)
        self.tool = ToolSettings()
        self.revision = 0
        self._listeners: list[Listener] = []
        self._stroke: list[Change] | None = None
        self._stroke_name = ""
        self._stroke_table: dict[int, Segment] = {}
        self._last: tuple[Plane, int, np.ndarray] | None = None  # last dab's plane, slice, ijk
        self._dirty: tuple[np.ndarray, np.ndarray] | None = None  # box dabs changed, not drawn

    # -- listeners ----------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, *events: str) -> None:
        for what in events:
            for fn in list(self._listeners):
                fn(what)

    def detach(self) -> None:
        """Take the layer out of the views (another series or label map replaces this)."""
        self.state.remove_layer(self.layer)

    # -- settings -----------------------------------------------------------------------
    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return self.volume.spacing_mm

    def set_active(self, value: int | None) -> None:
        if value is not None and value not in self.label_map.segments:
            raise ValueError(f"no segment {value}")
        if value != self.active:
            self.active = value
            self._emit("active")

    def set_tool(self, **changes: Any) -> None:
        """Change the tool settings (name=, radius_mm=, sphere=, hu_range=, ...)."""
        if changes.get("name", self.tool.name) not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, not {changes['name']!r}")
        self.tool = replace(self.tool, **changes)
        self._emit("tool")

    # -- the segment table --------------------------------------------------------------
    def segment(self, value: int) -> Segment:
        return self.label_map.segments[value]

    def add_segment(self, name: str, made_by: str = "") -> Segment:
        """A new segment (an undo step), made the active one."""
        before = dict(self.label_map.segments)
        seg = self.label_map.add_segment(name, made_by)
        self._record("Add segment", _empty(), before)
        self.set_active(seg.value)
        return seg

    def update_segment(self, value: int, **changes: Any) -> Segment:
        """Rename, recolour, recode, lock or hide a segment; all but visibility are undo
        steps."""
        bad = set(changes) - set(SEGMENT_FIELDS)
        if bad:
            raise ValueError(f"segments have no field {sorted(bad)[0]!r}")
        before = dict(self.label_map.segments)
        seg = self.label_map.update_segment(value, **changes)
        if set(changes) == {"visible"}:
            self._table_changed()
        else:
            self._record("Edit segment", _empty(), before)
        return seg

    def confirm(self, value: int) -> Segment:
        """A person has checked an AI segment: it counts as reviewed from now on."""
        return self.update_segment(value, reviewed=True)

    def remove_segment(self, value: int) -> Change:
        """Delete a segment and its voxels, locked or not, as one undo step."""
        before = dict(self.label_map.segments)
        del self.label_map.segments[value]  # unlocked by leaving the table
        idx = np.flatnonzero(self.label_map.array.reshape(-1) == value)
        change = self._record("Remove segment", self.label_map.write(idx, 0), before)
        if self.active == value:
            self.set_active(min(self.label_map.segments, default=None))
        return change

    # -- strokes ------------------------------------------------------------------------
    def _can_paint(self) -> bool:
        if self.state.volume is not self.volume or self.active is None:
            return False
        seg = self.label_map.segments.get(self.active)
        return seg is not None and not seg.locked

    def begin_stroke(self, name: str = "") -> None:
        if self._stroke is not None:
            self.end_stroke()
        self._stroke = []
        self._stroke_name = name or STEP_NAMES.get(self.tool.name, "Paint")
        self._stroke_table = dict(self.label_map.segments)
        self._last = None

    def dab(self, plane: Plane, row: float, col: float) -> Change:
        """One brush, eraser or threshold-brush dab at a pixel of the plane's shown slice,
        joined to the stroke's previous dab on that slice so a fast drag leaves no gap. In a
        turned plane the disc is the voxels that plane cuts (label_tools.plane_brush_indices),
        so the oblique view shows every pixel of it painted and true mm in any tilt."""
        if self._stroke is None:
            self.begin_stroke()
        if not self._can_paint():
            return _empty()
        pm = self.state.view_map(plane)  # a turned plane's ObliqueMap too
        oblique = isinstance(pm, ObliqueMap)
        index = self.state.slice_index(plane)
        centre = pm.to_index(index, row, col)
        centres = centre[None]
        if self._last is not None and self._last[:2] == (plane, index):
            centres = lt.stroke_points(self._last[2], centre, self.spacing_mm, self.tool.radius_mm)
        self._last = (plane, index, centre)
        if oblique and not self.tool.sphere:  # a disc in the turned plane
            flat = lt.plane_brush_indices(
                centres,
                self.volume.shape,
                self.volume.affine[:3, :3],
                pm.normal,
                self.tool.radius_mm,
            )
        else:
            flat = lt.brush_indices(
                centres,
                self.volume.shape,
                self.spacing_mm,
                self.tool.radius_mm,
                None if self.tool.sphere or oblique else pm.normal_axis,
            )
        if self.tool.name == "threshold":
            if self.volume.is_colour:
                return _empty()  # no HU in a colour image (the tool box offers no range)
            flat = lt.in_range(self.volume.array, flat, *self.tool.hu_range)
        if self.tool.name == "eraser":
            change = self.label_map.write(flat, 0, only=self.active)
        else:
            change = self.label_map.write(flat, self.active)
        if change.size:
            self._stroke.append(change)
            self.revision += 1
            # an oblique disc reaches a voxel further: its rounding and the plane's thickness
            reach = self.tool.radius_mm / np.asarray(self.spacing_mm) + (2 if oblique else 1)
            if not (self.tool.sphere or oblique):
                reach[pm.normal_axis] = 1
            lo, hi = centres.min(axis=0) - reach, centres.max(axis=0) + reach
            if self._dirty is not None:
                lo, hi = np.minimum(lo, self._dirty[0]), np.maximum(hi, self._dirty[1])
            self._dirty = (lo, hi)
            self._emit("voxels")
        return change

    def take_dirty(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The (first, last) volume index box the dabs have changed since the last call,
        or None: a view whose shown slice misses it need not be redrawn."""
        box, self._dirty = self._dirty, None
        return box

    def end_stroke(self) -> Change:
        """Close the stroke: its dabs become one undo step."""
        if self._stroke is None:
            return _empty()
        changes, self._stroke, self._last = self._stroke, None, None
        change = merge(changes)
        if not change.size:
            return change
        self._mark_reviewed(change)
        return self._record(self._stroke_name, change, self._stroke_table, redraw=False)

    # -- one-shot tools -----------------------------------------------------------------
    def fill(self, plane: Plane, row: float, col: float) -> Change:
        """Flood fill / region grow from a click: the connected voxels within the tool's
        HU tolerance of the clicked one, on the shown slice or (fill_3d) in 3D."""
        if not self._can_paint() or self.volume.is_colour:
            return _empty()
        pm = self.state.maps[plane]
        seed = pm.to_index(self.state.slice_index(plane), row, col)
        flat = lt.region_grow(
            self.volume.array,
            seed,
            self.tool.tolerance_hu,
            None if self.tool.fill_3d else pm.normal_axis,
        )
        return self._action("Fill", [(flat, self.active, None)])

    def lasso(self, plane: Plane, points: Any, erase: bool = False) -> Change:
        """Fill (or erase) the polygon `points` ((row, col) pixels) on the shown slice."""
        if not self._can_paint():
            return _empty()
        pm = self.state.maps[plane]
        rows, cols = lt.polygon_pixels(points, pm.screen_shape)
        flat = lt.flat_indices(
            lt.screen_to_ijk(pm, self.state.slice_index(plane), rows, cols), self.volume.shape
        )
        write = (flat, 0, self.active) if erase else (flat, self.active, None)
        return self._action("Lasso erase" if erase else "Lasso fill", [write])

    def interpolate(self, value: int, axis: int | None = None) -> Change:
        """Fill segment `value` between its drawn slices along `axis` (default: the normal
        of the plane the series was acquired in), into background only."""
        if axis is None:
            axis = self.state.maps[native_plane(self.volume.affine)].normal_axis
        flat = lt.interpolated(self.label_map.array, value, axis, self.spacing_mm)
        return self._action("Fill between slices", [(flat, value, 0)])

    def remove_islands(self, value: int, min_voxels: int) -> Change:
        flat = lt.small_islands(self.label_map.array, value, min_voxels)
        return self._action("Remove islands", [(flat, 0, value)])

    def smooth(self, value: int, radius_mm: float) -> Change:
        add, remove = lt.smoothed(self.label_map.array, value, radius_mm, self.spacing_mm)
        return self._action("Smooth", [(add, value, 0), (remove, 0, value)])

    def accept_finding(self, finding: Finding, indices: np.ndarray) -> Segment:
        """Put an AI finding's voxels (`indices`, e.g. label_tools.finding_indices) into
        the segment for its label and model (made if new), over background only — a
        person's own labels win — as one undo step; the segment is not reviewed yet."""
        before = dict(self.label_map.segments)
        ref = finding.model_ref
        seg = next(
            (
                s
                for s in self.label_map.segments.values()
                if s.name == finding.label_name and s.made_by == ref
            ),
            None,
        )
        if seg is None:
            seg = self.label_map.add_segment(finding.label_name, made_by=ref)
        seg = self.label_map.update_segment(seg.value, reviewed=False)
        change = self.label_map.write(np.asarray(indices, np.int64), seg.value, only=0)
        self._record(f"Accept {finding.label_name} {finding.id}", change, before)
        return seg

    def add_labels(self, imported: LabelMap, name: str = "Import") -> list[Segment]:
        """Add a label map made elsewhere (an imported SEG or NIfTI) as new segments: each
        keeps its name, colour, codes and provenance under a free value here, and its voxels
        go into background only — the reader's labels win — all as one undo step."""
        if imported.array.shape != self.label_map.array.shape:
            raise ValueError(
                f"an imported label map of shape {imported.array.shape} does "
                f"not fit this one ({self.label_map.array.shape})"
            )
        if self._stroke is not None:
            self.end_stroke()
        before = dict(self.label_map.segments)
        source = imported.array.reshape(-1)
        added, changes = [], []
        for value in sorted(imported.segments):
            seg = replace(imported.segments[value], value=self.label_map.free_value())
            self.label_map.segments[seg.value] = seg
            added.append(seg)
            changes.append(self.label_map.write(np.flatnonzero(source == value), seg.value, only=0))
        self._record(name, merge(changes), before)
        if added:
            self.set_active(added[0].value)
        return added

    def _action(self, name: str, writes: list[tuple[np.ndarray, int, int | None]]) -> Change:
        if self._stroke is not None:
            self.end_stroke()
        before = dict(self.label_map.segments)
        change = merge([self.label_map.write(flat, value, only) for flat, value, only in writes])
        if not change.size:
            return change
        self._mark_reviewed(change)
        return self._record(name, change, before)

    def _mark_reviewed(self, change: Change) -> None:
        """Any segment whose voxels a person changed counts as reviewed."""
        values = np.union1d(np.unique(change.old), np.unique(change.new))
        for v in values[values > 0].tolist():
            seg = self.label_map.segments.get(int(v))
            if seg is not None and not seg.reviewed:
                self.label_map.update_segment(seg.value, reviewed=True)

    def _record(
        self, name: str, change: Change, table_before: dict[int, Segment], redraw: bool = True
    ) -> Change:
        """Push the step (with the table when it changed) and tell everyone."""
        after = dict(self.label_map.segments)
        table = table_before != after
        if table:
            change = replace(change, segments=(table_before, after))
        if not change.size and not table:
            return change
        self.history.push(name, change)
        self.revision += 1
        if table:
            self._sync_colours()
        if (change.size and redraw) or table:
            self.state.layers_changed()
        self._emit(
            *(["voxels"] if change.size else []), *(["segments"] if table else []), "history"
        )
        return change

    # -- undo / redo --------------------------------------------------------------------
    @property
    def undo_name(self) -> str:
        return self.history.undo_name()

    @property
    def redo_name(self) -> str:
        return self.history.redo_name()

    def undo(self) -> bool:
        return self._step(self.history.undo, 0)

    def redo(self) -> bool:
        return self._step(self.history.redo, 1)

    def _step(self, move: Callable[[np.ndarray], Change | None], side: int) -> bool:
        if self._stroke is not None:
            self.end_stroke()
        change = move(self.label_map.array)
        if change is None:
            return False
        if change.segments is not None:
            # visibility is the reader's view setting: it stays as it is now
            shown = {v: s.visible for v, s in self.label_map.segments.items()}
            table = {
                v: replace(s, visible=shown.get(v, s.visible))
                for v, s in change.segments[side].items()
            }
            self.label_map.segments.clear()
            self.label_map.segments.update(table)
            self._sync_colours()
            if self.active not in table:
                self.active = min(table, default=None)
                self._emit("active")
        self.revision += 1
        self.state.layers_changed()
        self._emit(
            *(["voxels"] if change.size else []),
            *(["segments"] if change.segments is not None else []),
            "history",
        )
        return True

    # -- drawing ------------------------------------------------------------------------
    def _table_changed(self) -> None:
        self.revision += 1
        self._sync_colours()
        self.state.layers_changed()
        self._emit("segments")

    def _sync_colours(self) -> None:
        """Segment colours into the layer; hidden segments transparent."""
        self.layer.label_colours = {
            v: tuple(s.colour) if s.visible else (*s.colour, 0)
            for v, s in self.label_map.segments.items()
        }


def _empty() -> Change:
    return merge([])

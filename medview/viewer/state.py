"""ViewerState: what the reader is looking at — the volume, the crosshair point, the window,
overlays — with plain listeners instead of Qt signals, so it is tested without a display and
every widget that shows it stays in step (napari's model/view split)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medview.core.volume import Volume
from medview.core.windowing import (
    CT_PRESETS,
    Window,
    auto_window,
    colour_window,
    default_window,
)
from medview.viewer.layers import OverlayLayer
from medview.viewer.oblique import ObliqueMap, plane_axes, rotation
from medview.viewer.planes import Plane, PlaneMap, plane_map
from medview.viewer.slab import MAX_SLAB_MM, Slab, SlabMode, SlabProjector

Listener = Callable[[str], None]
# what changed, passed to listeners
VOLUME, CURSOR, WINDOW, LAYERS, DISPLAY = "volume", "cursor", "window", "layers", "display"
SLAB = "slab"
OBLIQUE = "oblique"  # a plane turned: its geometry (size, pixel spacing, letters) changed


class ViewerState:
    def __init__(self) -> None:
        self.volume: Volume | None = None
        self.series_key = ""
        self.maps: dict[Plane, PlaneMap] = {}
        self.cursor_ijk = np.zeros(3)
        self.window = Window(40, 400)
        self.invert = False
        self.crosshair_linked = True
        self.show_overlays = True  # corner text, letters, scale bar, crosshair
        self.layers: list[OverlayLayer] = []
        # thick-slab projection, the same in every plane (medview.viewer.slab)
        self.slab = Slab()
        self.projector = SlabProjector()
        # oblique planes: each plane's rotation (LPS) from its orthogonal axes; identity for
        # all = the orthogonal planes of `maps`. Turned planes are cut through `_pivot`.
        self.rotations: dict[Plane, np.ndarray] = {p: np.eye(3) for p in Plane}
        self._oblique: dict[Plane, ObliqueMap] = {}
        self._listeners: list[Listener] = []

    # -- listeners
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self, what: str) -> None:
        for fn in list(self._listeners):
            fn(what)

    # -- volume
    def set_volume(self, volume: Volume, series_key: str = "") -> None:
        self.volume = volume
        self.series_key = series_key
        self.maps = {p: plane_map(volume.affine, volume.array.shape, p) for p in Plane}
        self.rotations = {p: np.eye(3) for p in Plane}
        self._oblique = {}
        self.cursor_ijk = (np.array(volume.shape, float) - 1) / 2
        self.cursor_ijk = np.round(self.cursor_ijk)
        self.layers = []
        self.projector = SlabProjector(volume.array)
        self.slab = Slab(SlabMode.OFF, self.slab.thickness_mm)  # a new series opens thin
        self.invert = volume.metadata.invert_display
        self.window = self.initial_window()
        self._changed(VOLUME)

    def initial_window(self) -> Window:
        v = self.volume
        if v is None:
            return self.window
        if v.is_colour:
            return colour_window(v.array)
        return default_window(v.metadata.modality, v.metadata.windows, v.array)

    # -- slices and crosshair
    def slice_index(self, plane: Plane) -> int:
        if plane in self._oblique:
            return int(np.rint(self._oblique[plane].from_index(self.cursor_ijk)[0]))
        return int(np.rint(self.cursor_ijk[self.maps[plane].normal_axis]))

    # -- oblique planes
    @property
    def oblique(self) -> bool:
        return bool(self._oblique)

    def view_map(self, plane: Plane) -> PlaneMap | ObliqueMap:
        """The map a view of `plane` draws with: its orthogonal PlaneMap, or its oblique one
        once a plane has been turned."""
        return self._oblique.get(plane) or self.maps[plane]

    def rotate(self, about: Plane, degrees: float) -> None:
        """Turn the other two planes about `about`'s normal, through the crosshair (the
        crosshair's axes dragged round in that view); their slices then cut obliquely."""
        if self.volume is None or not degrees:
            return
        normal = (
            self.view_map(about).normal
            if about in self._oblique
            else plane_axes(self.maps[about], self.volume.affine)[2]
        )
        turn = rotation(normal, degrees)
        for p in Plane:
            if p is not about:
                self.rotations[p] = turn @ self.rotations[p]
        self._rebuild_oblique()

    def reset_oblique(self) -> None:
        if self._oblique:
            self.rotations = {p: np.eye(3) for p in Plane}
            self._oblique = {}
            self.cursor_ijk = np.clip(
                np.round(self.cursor_ijk), 0, np.array(self.volume.shape, float) - 1
            )
            self._changed(OBLIQUE)

    def _rebuild_oblique(self) -> None:
        v = self.volume
        centre = v.index_to_lps(self.cursor_ijk)
        self._oblique = {}
        for p in Plane:
            if np.allclose(self.rotations[p], np.eye(3)):
                continue
            down, right, _n = plane_axes(self.maps[p], v.affine)
            r = self.rotations[p]
            self._oblique[p] = ObliqueMap.through(v.affine, v.shape, centre, r @ down, r @ right)
        self._changed(OBLIQUE)

    def set_slice(self, plane: Plane, index: int) -> None:
        if plane in self._oblique:
            om = self._oblique[plane]
            index = int(np.clip(index, 0, om.n_slices - 1))
            _k, row, col = om.from_index(self.cursor_ijk)
            ijk = om.to_index(index, row, col)
            if index != self.slice_index(plane) and self._inside(ijk):
                self.cursor_ijk = ijk
                self._changed(CURSOR)
            return
        pm = self.maps[plane]
        index = int(np.clip(index, 0, pm.n_slices - 1))
        if index != self.slice_index(plane):
            self.cursor_ijk[pm.normal_axis] = index
            self._changed(CURSOR)

    def step(self, plane: Plane, delta: int) -> None:
        self.set_slice(plane, self.slice_index(plane) + delta)

    def set_cursor_screen(self, plane: Plane, row: float, col: float) -> None:
        """Crosshair click on `plane`: keeps that plane's slice, moves the other planes."""
        ijk = self.view_map(plane).to_index(self.slice_index(plane), row, col)
        hi = np.array(self.volume.shape, float) - 1
        # oblique planes keep the exact point: rounded to a voxel it leaves their slice
        self.cursor_ijk = np.clip(ijk if self._oblique else np.round(ijk), 0, hi)
        self._changed(CURSOR)

    def _inside(self, ijk: np.ndarray) -> bool:
        return bool(np.all((ijk >= -0.5) & (ijk <= np.array(self.volume.shape) - 0.5)))

    def set_cursor_index(self, ijk: np.ndarray) -> None:
        """Crosshair to a volume index (rounded, clamped): how a linked view follows
        another one's cursor."""
        hi = np.array(self.volume.shape, float) - 1
        ijk = np.asarray(ijk, float)
        ijk = np.clip(ijk if self._oblique else np.round(ijk), 0, hi)
        if not np.array_equal(ijk, self.cursor_ijk):
            self.cursor_ijk = ijk
            self._changed(CURSOR)

    def cursor_lps(self) -> np.ndarray:
        return self.volume.index_to_lps(self.cursor_ijk)

    def value_at(self, ijk: np.ndarray) -> float | tuple | None:
        """Voxel value at a (fractional) index, None outside the volume."""
        idx = tuple(int(np.rint(x)) for x in ijk)
        if self.volume is None or any(
            not 0 <= i < n for i, n in zip(idx, self.volume.shape, strict=True)
        ):
            return None
        v = self.volume.array[idx]
        return tuple(int(x) for x in v) if np.ndim(v) else v.item()

    # -- window / level
    def set_window(self, center: float, width: float, name: str = "") -> None:
        """Width is kept at least 1 for integer volumes (DICOM's rule for stored values) and
        at least Window.MIN_WIDTH for float ones (normalised MR, PET SUV)."""
        floor = Window.MIN_WIDTH
        if self.volume is not None and self.volume.array.dtype.kind in "iu":
            floor = 1.0
        self.window = Window(float(center), max(float(width), floor), name)
        self._changed(WINDOW)

    def apply_preset(self, number: int) -> bool:
        """Number keys 1..9: the CT presets in order (1 = lung ...), or for other
        modalities 1 = the file's window, 2 = automatic."""
        v = self.volume
        if v is None:
            return False
        if v.metadata.modality == "CT" and 1 <= number <= len(CT_PRESETS):
            w = CT_PRESETS[number - 1]
        elif number == 1 and v.metadata.windows:
            w = Window(*v.metadata.windows[0], "File")
        elif number in (1, 2):
            w = auto_window(v.array)
        else:
            return False
        self.set_window(w.center, w.width, w.name)
        return True

    def toggle_invert(self) -> None:
        self.invert = not self.invert
        self._changed(WINDOW)

    def reset(self) -> None:
        """R: the window the series opened with, crosshair at the centre, invert as stored."""
        if self.volume is None:
            return
        self.window = self.initial_window()
        self.invert = self.volume.metadata.invert_display
        self.reset_oblique()
        self.cursor_ijk = np.round((np.array(self.volume.shape, float) - 1) / 2)
        self._changed(WINDOW)
        self._changed(CURSOR)

    # -- thick slabs
    def set_slab(self, mode: SlabMode | None = None, thickness_mm: float | None = None) -> None:
        """Slab mode and/or thickness (kept within 1..MAX_SLAB_MM mm); colour images have
        no slab (a maximum of RGB triplets means nothing)."""
        if mode is not None and self.volume is not None and self.volume.is_colour:
            mode = SlabMode.OFF
        mm = (
            self.slab.thickness_mm
            if thickness_mm is None
            else float(np.clip(thickness_mm, 1.0, MAX_SLAB_MM))
        )
        slab = Slab(self.slab.mode if mode is None else mode, mm)
        if slab != self.slab:
            self.slab = slab
            self._changed(SLAB)

    def cycle_slab_mode(self) -> None:
        """M: off, MIP, MinIP, average, off..."""
        modes = list(SlabMode)
        self.set_slab(modes[(modes.index(self.slab.mode) + 1) % len(modes)])

    def slab_spacing(self, plane: Plane) -> float:
        """Distance between the slices a slab in `plane` adds up, in mm."""
        return float(self.volume.spacing_mm[self.maps[plane].normal_axis])

    # -- overlays and layers
    def toggle_overlays(self) -> None:
        self.show_overlays = not self.show_overlays
        self._changed(DISPLAY)

    def set_crosshair_linked(self, linked: bool) -> None:
        self.crosshair_linked = linked
        self._changed(DISPLAY)

    def add_layer(self, layer: OverlayLayer) -> None:
        if self.volume is None or layer.array.shape[:3] != self.volume.shape:
            raise ValueError(
                f"layer {layer.name!r} has shape {layer.array.shape}, the image "
                f"has {self.volume.shape if self.volume else None}"
            )
        self.layers.append(layer)
        self._changed(LAYERS)

    def remove_layer(self, layer: OverlayLayer) -> None:
        # by identity: layers compare their arrays, so `==` between two of them is ambiguous
        kept = [x for x in self.layers if x is not layer]
        if len(kept) != len(self.layers):
            self.layers = kept
            self._changed(LAYERS)

    def layers_changed(self) -> None:
        self._changed(LAYERS)

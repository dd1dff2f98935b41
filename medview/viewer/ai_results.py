"""AIResults: the AI result held for the open series, and what the reader sees of it.

Made from one `jobs.inference.InferenceResult` (used through its attributes only: this
layer holds results, it never makes them) for the ViewerState's volume, it puts the model's
output into every plane as overlay layers, each named after the model and version that
made it and marked `made_by`, so the views and exports say it is not a diagnosis:

- probability: a heatmap of one label's probability or of the most probable label's; the
  result keeps one byte per voxel (label and level, ai.findings), decoded here only for
  the plane a view draws (`DecodedVolume`), so a heatmap adds no volume-sized array;
- findings mask: the label map at the threshold, in the card's label colours, filled or
  outlined (OverlayLayer.outline: the views draw the edge of the slice they show);
- uncertainty: the test-time-augmentation spread, when the model ran with TTA.

Moving the threshold recomputes the mask in place (one reused buffer, a fraction of a
second even for a 300-slice study) from the kept probabilities, never the model. The
findings at the new threshold (`InferenceResult.at_threshold`) are measured apart and
handed in with `show_findings`: usually milliseconds, but seconds for a model that lights
up hundreds of regions, so the viewer measures them off the GUI thread while the mask has
already moved. For a model whose card has a postprocess (false-positive stage, size
rules), that instant mask still shows the regions the postprocess drops; when the findings
at the mask's threshold arrive, the mask is pruned to their regions (`result.prune`), so
the settled mask and the list agree. Decisions on findings go to a FindingStore and come
back with the findings at any threshold."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from medview.core.findings import Finding
from medview.core.windowing import CT_PRESETS, Window
from medview.viewer.finding_store import FindingStore
from medview.viewer.layers import OverlayLayer
from medview.viewer.planes import Plane, PlaneMap
from medview.viewer.state import ViewerState

MASK_MODES = ("filled", "outline", "off")
MASK_OPACITY = {"filled": 0.45, "outline": 1.0}
THRESHOLD_RANGE = (0.05, 0.95)
# Going to a finding: it fills this share of the view, unless that needs more than
# MAX_FOCUS_ZOOM screen pixels per image pixel (see focus_rect_mm)
FOCUS_FRACTION = 1 / 3
MAX_FOCUS_ZOOM = 4.0
# The CT window a finding's label calls for, by words in its name: the first match wins
# (the preset names of core.windowing.CT_PRESETS)
LABEL_WINDOWS = (
    (("lung", "pulmonary"), "Lung"),
    (("liver", "hepatic"), "Liver"),
    (("bone", "osseous", "fracture", "vertebra", "rib", "skelet"), "Bone"),
    (("brain", "intracranial", "haemorrhage", "hemorrhage"), "Brain"),
    (("mediastin", "lymph", "aort"), "Mediastinum"),
    (("kidney", "renal", "pancrea", "spleen", "splenic", "adrenal", "bowel", "abdom"), "Abdomen"),
)


class DecodedVolume:
    """A (slice, row, col) uint8 volume made plane by plane: indexing it calls
    `decode(index)`, which decodes just that part of the kept codes (about a millisecond
    for a 512 x 512 plane). As much of an ndarray as the views and the state use: shape,
    ndim, dtype and indexing."""

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(self, shape: tuple[int, ...], decode: Callable[[Any], np.ndarray]) -> None:
        self.shape = tuple(int(n) for n in shape)
        self._decode = decode

    def __getitem__(self, index: Any) -> np.ndarray:
        return self._decode(index)


class AIResults:
    """One model's result on the volume the state shows; its layers are in the state."""

    def __init__(
        self,
        state: ViewerState,
        result: Any,
        store: FindingStore | None = None,
        partial: tuple[int, int] | None = None,
    ) -> None:
        """`partial`: the result holds study slices partial[0]..partial[1]-1 only, while the
        model runs on (jobs.inference.PartialSegmentation); its layers say so."""
        if state.volume is None or tuple(result.segmentation.shape) != state.volume.shape:
            raise ValueError("an AI result needs the volume it was made from on screen")
        self.state, self.volume = state, state.volume
        self.result = result  # the findings shown are this result's
        self.threshold = float(result.threshold)  # the mask's
        self.card = result.card
        self.partial = partial
        self.ref: str = result.card.ref
        part = "" if partial is None else f" (partial: slices {partial[0] + 1}–{partial[1]})"
        # without a store the decisions are kept in memory only
        self.store = store if store is not None else FindingStore(state.series_key)
        self.findings: list[Finding] = self.store.apply(result.findings)
        self.heat_label: int | None = None  # None: the most probable label's probability
        self._mask = np.zeros(self.volume.shape, np.uint8)
        result.label_map(out=self._mask)
        seg = result.segmentation
        self.heat_layer = OverlayLayer(
            f"AI {self.ref} — probability{part}",
            self._heat_array(),
            kind="heatmap",
            opacity=0.45,
            threshold=0.1,
            made_by=self.ref,
        )
        colours = {lab.value: tuple(lab.colour) for lab in self.card.labels}
        self.mask_layer = OverlayLayer(
            f"AI {self.ref} — findings{part}",
            self._mask,
            opacity=MASK_OPACITY["filled"],
            label_colours=colours,
            made_by=self.ref,
        )
        self.uncertainty_layer = (
            None
            if seg.uncertainty is None
            else OverlayLayer(
                f"AI {self.ref} — uncertainty{part}",
                seg.uncertainty,
                kind="heatmap",
                visible=False,
                opacity=0.6,
                colour_map="viridis",
                threshold=0.1,
                made_by=self.ref,
            )
        )
        for layer in (self.heat_layer, self.mask_layer):
            state.add_layer(layer)

    # -- what it is
    @property
    def tta(self) -> bool:
        return self.uncertainty_layer is not None

    @property
    def layers(self) -> list[OverlayLayer]:
        return [x for x in (self.heat_layer, self.mask_layer, self.uncertainty_layer) if x]

    def finding(self, finding_id: int) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    def summary(self) -> str:
        counts = {d: sum(f.decision == d for f in self.findings) for d in ("accepted", "rejected")}
        decided = ", ".join(f"{n} {d}" for d, n in counts.items() if n)
        return f"{len(self.findings)} finding(s) at p ≥ {self.result.threshold:.2f}" + (
            f" ({decided})" if decided else ""
        )

    # -- changes
    def set_threshold(self, threshold: float) -> float:
        """The mask at `threshold` (clamped to THRESHOLD_RANGE), drawn at once; returns the
        seconds it took. The findings follow with show_findings."""
        t0 = time.perf_counter()
        self.threshold = float(np.clip(threshold, *THRESHOLD_RANGE))
        if abs(float(self.result.threshold) - self.threshold) <= 1e-9:
            self.result.label_map(out=self._mask)  # back where the findings are: settled
        else:
            self.result.segmentation.label_map(self.threshold, out=self._mask)
        self.state.layers_changed()
        return time.perf_counter() - t0

    def show_findings(self, result: Any) -> bool:
        """Take the findings of `result` (this run's at another threshold) if they are at
        the mask's threshold, pruning the mask to their regions; False for findings the
        slider has already moved past."""
        if (
            result.segmentation is not self.result.segmentation
            or abs(float(result.threshold) - self.threshold) > 1e-9
        ):
            return False
        self.result = result
        self.findings = self.store.apply(result.findings)
        if result.prune(self._mask):
            self.state.layers_changed()
        return True

    def set_heat_label(self, label_value: int | None) -> None:
        """The probability heatmap of one label, or (None) the largest over the labels."""
        self.heat_label = label_value
        self.heat_layer.array = self._heat_array()
        self.state.layers_changed()

    def _heat_array(self) -> DecodedVolume:
        seg, value = self.result.segmentation, self.heat_label
        if value is None:
            return DecodedVolume(seg.shape, seg.max_probability)
        return DecodedVolume(seg.shape, lambda index: seg.probability(value, index))

    def set_mask_mode(self, mode: str) -> None:
        if mode not in MASK_MODES:
            raise ValueError(f"mask mode must be one of {MASK_MODES}, not {mode!r}")
        layer = self.mask_layer
        layer.visible = mode != "off"
        layer.outline = mode == "outline"
        layer.opacity = MASK_OPACITY.get(mode, layer.opacity)
        self.show(layer, layer.visible)

    def show(self, layer: OverlayLayer | None, visible: bool) -> None:
        """Show or hide one of this result's layers, putting it (back) into the state when
        it is not there (never added yet, or removed in the Layers panel)."""
        if layer is None:
            return
        layer.visible = visible
        if visible and not any(x is layer for x in self.state.layers):
            self.state.add_layer(layer)
        else:
            self.state.layers_changed()

    def decide(self, finding_id: int, decision: str) -> Finding | None:
        """Accept, reject or ("pending") undecide a finding; kept in the store at once."""
        found = self.finding(finding_id)
        if found is None:
            return None
        decided = self.store.decide(found, decision)
        self.findings = [decided if f.id == finding_id else f for f in self.findings]
        return decided

    def detach(self) -> None:
        """Take this result's layers out of the state (a new result replaces it)."""
        for layer in self.layers:
            self.state.remove_layer(layer)

    def reattach(self) -> None:
        """Put back the layers detach() took out (those shown), in one change, so the
        display's controls read them all as shown (a result back after a cancelled run)."""
        self.state.layers.extend(x for x in self.layers if x.visible)
        self.state.layers_changed()

    # -- going to a finding
    def go_to(self, finding: Finding) -> None:
        """Crosshair (and every plane's slice) to the voxel nearest the finding's centroid."""
        pm = self.state.maps[Plane.AXIAL]
        k, row, col = pm.from_index(np.asarray(finding.centroid_index))
        self.state.set_slice(Plane.AXIAL, round(k))
        self.state.set_cursor_screen(Plane.AXIAL, row, col)


def focus_rect_mm(
    finding: Finding, pm: PlaneMap, view_px: tuple[float, float] | None = None
) -> tuple[float, float, float, float]:
    """(x, y, width, height) in a view's scene millimetres, a square on the finding's box
    centre in which the finding's larger side fills FOCUS_FRACTION (a third): enough around
    it to see where it lies, the finding itself large enough to read.

    With the view's size in screen pixels (`view_px`), the zoom stays at most
    MAX_FOCUS_ZOOM screen pixels per image pixel, or the zoom that fits the whole image when
    that is larger (going to a finding never zooms out): past about 4 a pixel shows as a
    block, not anatomy (8x, the old zoom, made pixels the size of a fingertip), so a
    finding under about a twelfth of the view's width fills less than a third. A finding
    larger than a third of the image shows the whole image."""
    first, last = finding.bbox_index
    rows, cols = [], []
    for corner in itertools.product(*zip(first, last, strict=True)):
        _, r, c = pm.from_index(np.asarray(corner, float))
        rows.append(r)
        cols.append(c)
    row_mm, col_mm = pm.pixel_mm
    x0, x1 = min(cols) * col_mm, (max(cols) + 1) * col_mm
    y0, y1 = min(rows) * row_mm, (max(rows) + 1) * row_mm
    image_h, image_w = (n * mm for n, mm in zip(pm.screen_shape, pm.pixel_mm, strict=True))
    side = min(max(x1 - x0, y1 - y0) / FOCUS_FRACTION, max(image_w, image_h))
    if view_px is not None and min(view_px) > 0:
        # screen pixels per mm, at most: MAX_FOCUS_ZOOM on the finer pixel side, or the
        # whole image's fit when that is closer already
        fit = min(view_px[0] / image_w, view_px[1] / image_h)
        most = max(MAX_FOCUS_ZOOM / min(row_mm, col_mm), fit)
        side = max(side, min(view_px) / most)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - side / 2, cy - side / 2, side, side


def window_for_label(label_name: str, modality: str) -> Window | None:
    """The CT preset a finding's label calls for (Lung for 'lung nodule', Liver for 'liver
    lesion'), or None: not CT, or a label whose name says no organ (LABEL_WINDOWS)."""
    if modality.upper() != "CT":
        return None
    words = label_name.lower()
    name = next((preset for keys, preset in LABEL_WINDOWS if any(k in words for k in keys)), None)
    return next((w for w in CT_PRESETS if w.name == name), None)


def explanation_layer(
    shape: tuple[int, int, int], index: int, heatmap: np.ndarray, ref: str
) -> OverlayLayer:
    """A Grad-CAM heatmap (0..1, the slice's own size) on slice `index` of axis 0, every
    other slice empty. np.zeros leaves untouched pages unallocated, so the empty slices
    cost next to no memory."""
    array = np.zeros(shape, np.uint8)
    array[index] = np.clip(np.asarray(heatmap, np.float32) * 255 + 0.5, 0, 255)
    return OverlayLayer(
        f"AI {ref} — Grad-CAM, slice {index + 1}",
        array,
        kind="heatmap",
        opacity=0.5,
        threshold=0.2,
        made_by=ref,
    )

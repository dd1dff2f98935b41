"""Text drawn in the corners of a view, following the corner layout radiologists expect
(docs/development.md: top-left patient, top-right study, bottom-left W/L, zoom, thickness, location,
bottom-right image number and series)."""

from __future__ import annotations

import numpy as np

from medview.viewer.oblique import ObliqueMap
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState


def _age_sex(age: str, sex: str) -> str:
    return " ".join(x for x in (age, sex) if x)


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def corner_lines(state: ViewerState, plane: Plane, zoom: float) -> dict[str, list[str]]:
    """Lines per corner ("tl", "tr", "bl", "br") for one view."""
    v = state.volume
    if v is None:
        return {}
    md = v.metadata
    idx = state.slice_index(plane)
    shown = state.view_map(plane)
    position = float(v.index_to_lps(state.cursor_ijk)[_lps_axis(plane)])
    if isinstance(shown, ObliqueMap):  # resampled: its slices are a pixel apart
        spacing = thick = shown.pixel
        where = f"Oblique {_tilt_deg(shown, plane):.0f}°  {_LOCATION[plane]} {position:.1f} mm"
    else:
        pm = state.maps[plane]
        spacing = v.spacing_mm[pm.normal_axis]
        thick = md.slice_thickness_mm if pm.normal_axis == 0 and md.slice_thickness_mm else spacing
        where = f"{_LOCATION[plane]} {position:.1f} mm"
    w = state.window
    return {
        "tl": [
            x
            for x in (
                md.patient.name.replace("^", " ").strip(),
                md.patient.id,
                _age_sex(md.patient.age, md.patient.sex),
            )
            if x
        ],
        "tr": [
            x
            for x in (
                _date(md.study_date),
                md.study_description,
                f"{md.modality} {md.series_description}".strip(),
            )
            if x
        ],
        "bl": [
            f"W {w.width:.0f}  L {w.center:.0f}" + (" (inv)" if state.invert else ""),
            f"Zoom {zoom:.2f}x",
            *([state.slab.label()] if state.slab.on else []),
            f"Thk {thick:.2f} mm"
            + ("" if abs(thick - spacing) < 0.01 else f"  Sp {spacing:.2f} mm"),
            where,
        ],
        "br": [
            f"Im {idx + 1}/{shown.n_slices}  {plane.value}",
            f"Se {md.series_number}" if md.series_number is not None else "",
            *ai_notes(state),
        ],
    }


def ai_notes(state: ViewerState) -> list[str]:
    """Which models made the AI layers shown, and that their output is not a diagnosis
    (docs/architecture.md): the last lines of the bottom-right corner, so every view and
    every exported PNG showing a model's output says so; [] when no AI layer is visible.
    A short line per model, because corner lines are cut to fit a narrow view."""
    refs = dict.fromkeys(layer.made_by for layer in state.layers if layer.visible and layer.made_by)
    return [*(f"AI {ref}" for ref in refs), "not a diagnosis"] if refs else []


def _tilt_deg(shown: ObliqueMap, plane: Plane) -> float:
    """How far an oblique plane's normal is from its orthogonal plane's, in degrees."""
    axis = np.zeros(3)
    axis[_lps_axis(plane)] = 1.0
    return float(np.degrees(np.arccos(min(1.0, abs(float(shown.normal @ axis))))))


# the LPS axis whose coordinate a slice location names, per plane (z for axial, ...)
_LOCATION = {Plane.AXIAL: "Z", Plane.CORONAL: "Y", Plane.SAGITTAL: "X"}


def _lps_axis(plane: Plane) -> int:
    return {Plane.AXIAL: 2, Plane.CORONAL: 1, Plane.SAGITTAL: 0}[plane]


def scale_bar_mm(view_width_mm: float) -> float:
    """A round length about a fifth of the view's width, for the scale bar."""
    target = max(view_width_mm / 5, 1e-3)
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if step >= target:
            return float(step)
    return 1000.0

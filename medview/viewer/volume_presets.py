"""What the 3D view draws, as plain numbers: the transfer functions of its volume rendering
presets, and the matrix that places VTK's image grid in patient (LPS) space.

Kept free of VTK and Qt so the numbers are checked without a display, and so the 3D view's
module (`ui.volume_view`, which imports VTK) is only imported when the 3D layout is chosen.

The CT presets are in HU. Angiography is 3D Slicer's "CT-AAA" volume property preset
(contrast-filled vessels from about 150 HU, bone white). Bone has the colours of Slicer's
"CT-Bone", whose opacity ramp starts at -16 HU: on a whole body that fills the skin with
opaque red, so here it starts at 150 HU and shows the skeleton. Soft tissue shows fat
faintly and muscle and organs opaque (the skin, unless clipped). Lung is transparent but
for a faint haze of aerated parenchyma and the edges where it meets tissue (-500 HU):
vessels, airways and nodules inside the lungs, and a thin skin line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.core.windowing import Window

Point = tuple[float, float]  # (value, opacity 0..1)
ColourPoint = tuple[float, float, float, float]  # (value, r, g, b) with r, g, b in 0..1


@dataclass(frozen=True)
class VolumePreset:
    """A volume rendering transfer function: opacity and colour as piecewise-linear
    functions of the voxel value (VTK's vtkPiecewiseFunction / vtkColorTransferFunction)."""

    name: str
    opacity: tuple[Point, ...]
    colour: tuple[ColourPoint, ...]


CT_VOLUME_PRESETS: tuple[VolumePreset, ...] = (
    VolumePreset(
        "Bone",
        ((-3024, 0.0), (150, 0.0), (641, 0.72), (3071, 0.71)),
        (
            (-3024, 0.0, 0.0, 0.0),
            (150, 0.73, 0.25, 0.30),
            (641, 0.90, 0.82, 0.56),
            (3071, 1.0, 1.0, 1.0),
        ),
    ),
    VolumePreset(
        "Soft tissue",
        ((-3024, 0.0), (-200, 0.0), (-60, 0.05), (20, 0.35), (120, 0.6), (3071, 0.8)),
        (
            (-3024, 0.0, 0.0, 0.0),
            (-200, 0.55, 0.35, 0.20),
            (20, 0.80, 0.35, 0.30),
            (120, 0.95, 0.75, 0.65),
            (400, 1.0, 1.0, 0.95),
            (3071, 1.0, 1.0, 1.0),
        ),
    ),
    VolumePreset(
        "Lung",
        (
            (-3024, 0.0),
            (-950, 0.0),
            (-850, 0.003),
            (-650, 0.01),
            (-500, 0.25),
            (-350, 0.0),
            (3071, 0.0),
        ),
        (
            (-3024, 0.0, 0.0, 0.0),
            (-850, 0.55, 0.65, 1.0),
            (-650, 0.85, 0.75, 0.95),
            (-500, 1.0, 0.70, 0.65),
            (3071, 1.0, 1.0, 1.0),
        ),
    ),
    VolumePreset(
        "Angiography",
        ((-3024, 0.0), (143.6, 0.0), (166.2, 0.69), (214.4, 0.70), (419.7, 0.83), (3071, 0.80)),
        (
            (-3024, 0.0, 0.0, 0.0),
            (143.6, 0.62, 0.36, 0.18),
            (166.2, 0.88, 0.60, 0.29),
            (214.4, 1.0, 1.0, 1.0),
            (419.7, 1.0, 0.94, 0.95),
            (3071, 0.83, 0.66, 1.0),
        ),
    ),
)

WINDOW_PRESET = "Window"  # the name of window_preset's result in the preset list


def window_preset(window: Window) -> VolumePreset:
    """A preset for any modality from the reader's window: transparent below it, a grey ramp
    to opaque white across it (what a slice view shows, turned into a volume)."""
    low, high = window.bounds
    return VolumePreset(
        WINDOW_PRESET,
        ((low, 0.0), (high, 0.8)),
        ((low, 0.0, 0.0, 0.0), (high, 1.0, 1.0, 1.0)),
    )


def presets_for(modality: str) -> tuple[str, ...]:
    """The preset names offered for a modality: the CT presets for CT (HU), the window
    preset always."""
    ct = tuple(p.name for p in CT_VOLUME_PRESETS) if modality.upper() == "CT" else ()
    return (*ct, WINDOW_PRESET)


def preset(name: str, window: Window) -> VolumePreset:
    """The preset called `name` (window_preset for WINDOW_PRESET or an unknown name)."""
    return next((p for p in CT_VOLUME_PRESETS if p.name == name), None) or window_preset(window)


# VTK's image grid is (x, y, z) with x fastest: for MedView's C-ordered (slice, row, col)
# array that is x = col, y = row, z = slice.
_XYZ_TO_SRC = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


def grid_to_lps(affine: np.ndarray) -> np.ndarray:
    """4 x 4 matrix from VTK grid coordinates (col, row, slice) to patient LPS mm: the
    volume's affine (slice, row, col) -> LPS with the axes swapped. The 3D view puts it on
    every actor (vtkProp3D.SetUserMatrix), so VTK's world is LPS for any orientation,
    spacing or shear, and a picked world point converts back with the same affine."""
    return np.asarray(affine, float) @ _XYZ_TO_SRC

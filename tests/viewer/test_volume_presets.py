"""The 3D view's numbers without VTK: the grid-to-patient matrix and the presets offered."""

from __future__ import annotations

import numpy as np

from medview.core.windowing import Window
from medview.viewer.volume_presets import (
    CT_VOLUME_PRESETS,
    WINDOW_PRESET,
    grid_to_lps,
    preset,
    presets_for,
)


def test_grid_to_lps_takes_vtk_points_as_col_row_slice():
    affine = np.array(
        [[0.0, 0.0, 0.9, -27.0], [0.0, -0.8, 0.0, 25.0], [-2.5, 0.0, 0.0, 50.0], [0, 0, 0, 1]]
    )
    slice_, row, col = 7, 11, 13
    want = affine @ [slice_, row, col, 1.0]
    assert np.allclose(grid_to_lps(affine) @ [col, row, slice_, 1.0], want)


def test_ct_gets_the_ct_presets_and_every_modality_the_window():
    assert presets_for("CT") == ("Bone", "Soft tissue", "Lung", "Angiography", WINDOW_PRESET)
    assert presets_for("MR") == (WINDOW_PRESET,)
    window = Window(300, 200)
    ramp = preset(WINDOW_PRESET, window)
    assert [v for v, _ in ramp.opacity] == [200, 400]
    assert preset("Bone", window) is CT_VOLUME_PRESETS[0]


def test_presets_are_increasing_piecewise_functions_in_range():
    for p in CT_VOLUME_PRESETS:
        for points in (p.opacity, p.colour):
            values = [pt[0] for pt in points]
            assert values == sorted(values) and len(set(values)) == len(values), p.name
            assert all(0.0 <= x <= 1.0 for pt in points for x in pt[1:]), p.name

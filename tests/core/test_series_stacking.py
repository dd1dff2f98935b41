"""The stacking rules on synthetic frames, without any file: ordering, gaps, tilt, repeats."""

import numpy as np
import pytest

from medview.core.series import (
    FrameRef,
    PixelFormat,
    SourceRef,
    build_stack,
    dedupe_by_sop,
    plane_description,
    position_error_limit_mm,
    rescale_warning,
    split_by_shape,
    split_warning,
)

PF = PixelFormat("1.2.840.10008.1.2.1", 4, 5, 1, 16, 16, 1, "MONOCHROME2", 0, 1)


def frame(
    z,
    i=0,
    sop=None,
    orient=(1, 0, 0, 0, 1, 0),
    pos=None,
    rows=4,
    slope=1.0,
    intercept=0.0,
    temporal=(),
):
    pf = (
        PF
        if rows == 4
        else PixelFormat("1.2.840.10008.1.2.1", rows, 5, 1, 16, 16, 1, "MONOCHROME2", 0, 1)
    )
    return FrameRef(
        SourceRef(f"f{sop or z}-{i}"),
        0,
        pf,
        sop or f"1.2.{z}.{i}",
        instance_number=i,
        position_lps=pos or (0.0, 0.0, float(z)),
        orientation=orient,
        pixel_spacing_row_col_mm=(0.5, 0.7),
        rescale_slope=slope,
        rescale_intercept=intercept,
        temporal_key=temporal,
    )


def test_sorted_along_normal_not_instance_number():
    frames = [frame(z, i) for i, z in enumerate([5.0, 1.0, 3.0, 2.0, 4.0])]
    (stack,) = build_stack(frames)
    assert [f.position_lps[2] for f in stack.slices] == [1, 2, 3, 4, 5]
    assert stack.warnings == []
    assert np.allclose(stack.affine[:3, 0], [0, 0, 1])
    assert np.allclose(stack.affine[:3, 3], [0, 0, 1])


def test_missing_slice_is_filled_and_others_keep_their_position():
    frames = [frame(z) for z in [0, 2.5, 5, 10, 12.5]]
    (stack,) = build_stack(frames)
    assert len(stack.slices) == 6 and stack.slices[3] is None
    (w,) = stack.warnings
    assert w.code == "slice_gap" and "5 mm" in w.message and "2.5 mm" in w.message
    assert np.allclose(stack.affine[:3, 0], [0, 0, 2.5])


def test_irregular_spacing_is_reported_with_values():
    (stack,) = build_stack([frame(z) for z in [0, 1, 2, 3.4, 4.4]])
    codes = [w.code for w in stack.warnings]
    assert "unequal_spacing" in codes
    msg = next(w.message for w in stack.warnings if w.code == "unequal_spacing")
    assert "1.4" in msg


def test_tilt_is_kept_as_shear():
    t = np.radians(15)
    frames = [frame(k, pos=(0.0, k * 2 * np.sin(t), k * 2 * np.cos(t))) for k in range(6)]
    (stack,) = build_stack(frames)
    (w,) = stack.warnings
    assert w.code == "gantry_tilt" and "15" in w.message
    # every slice centre is exactly where its file says
    for k, f in enumerate(stack.slices):
        assert np.allclose(stack.affine[:3, 0] * k + stack.affine[:3, 3], f.position_lps)


def test_equal_repeats_split_into_stacks_and_unequal_repeats_dropped():
    echoes = [frame(z, i=e, temporal=(e,)) for z in range(4) for e in range(2)]
    stacks = build_stack(echoes)
    assert len(stacks) == 2 and all(len(s.slices) == 4 for s in stacks)
    assert stacks[0].warnings[0].code == "repeated_positions"
    dup = [frame(z, i=z) for z in range(4)] + [frame(2, i=9, sop="other")]
    (stack,) = build_stack(dup)
    assert len(stack.slices) == 4
    assert stack.warnings[0].code == "duplicate_position"


def test_dedupe_and_split_by_shape():
    a = frame(1)
    frames, warnings = dedupe_by_sop([a, a, frame(2)])
    assert len(frames) == 2 and warnings[0].code == "duplicate_sop_instance"
    groups = split_by_shape(
        [frame(z) for z in range(5)] + [frame(0, orient=(0, 1, 0, 0, 0, -1), sop="loc")]
    )
    assert [len(g) for g in groups] == [5, 1]


def test_missing_geometry_falls_back_to_instance_order_with_warning():
    frames = [
        FrameRef(SourceRef(f"x{i}"), 0, PF, f"1.{i}", instance_number=3 - i) for i in range(3)
    ]
    (stack,) = build_stack(frames)
    assert [f.instance_number for f in stack.slices] == [1, 2, 3]
    assert not stack.has_geometry and stack.warnings[0].code == "missing_geometry"


@pytest.mark.parametrize(
    ("pairs", "expect"), [([(1, 0), (1, 0)], None), ([(1, -1024), (2, -1000)], "rescale_varies")]
)
def test_rescale_warning(pairs, expect):
    w = rescale_warning([frame(k, slope=s, intercept=i) for k, (s, i) in enumerate(pairs)])
    assert (w.code if w else None) == expect


# --- what differs between the stacks of one series (issue 20, point 4) --------------------

AXIAL, SAGITTAL, CORONAL = (1, 0, 0, 0, 1, 0), (0, 1, 0, 0, 0, -1), (1, 0, 0, 0, 0, -1)


def test_plane_description_names_the_plane_and_its_tilt():
    assert plane_description(AXIAL) == "axial"
    assert plane_description(SAGITTAL) == "sagittal"
    assert plane_description(CORONAL) == "coronal"
    t = np.radians(20)
    assert plane_description((1, 0, 0, 0, np.cos(t), -np.sin(t))) == "axial tilted 20°"
    assert plane_description(None) == "no orientation"


def test_split_warning_says_what_differs_and_how_each_stack_differs():
    localizers = [
        frame(0, orient=AXIAL, sop="ax"),
        frame(0, orient=SAGITTAL, sop="sag"),
        frame(0, orient=CORONAL, sop="cor"),
    ]
    groups = split_by_shape(localizers)
    w = split_warning(groups, [1, 2, 3], 3)
    assert w.code == "split_series"
    assert "different orientation (" in w.message and "size" not in w.message
    for k, name in enumerate(plane_description(g[0].orientation) for g in groups):
        assert f"stack {k + 1}: {name}, 1 image" in w.message
    assert {"axial", "sagittal", "coronal"} <= set(w.message.replace(",", " ").split())
    assert w.message.endswith("shown as 3 stacks")

    mixed = [frame(z) for z in range(5)] + [frame(0, rows=8, orient=SAGITTAL, sop="loc")]
    w = split_warning(split_by_shape(mixed), [1, 2], 2)
    assert "different size and orientation" in w.message
    assert "stack 1: 5 x 4 pixels, axial, 5 images" in w.message
    assert "stack 2: 5 x 8 pixels, sagittal, 1 image" in w.message


def test_orientations_under_a_degree_apart_say_by_how_much():
    t = np.radians(0.3)
    groups = split_by_shape(
        [frame(0, sop="a"), frame(0, sop="b", orient=(1, 0, 0, 0, np.cos(t), np.sin(t)))]
    )
    w = split_warning(groups, [1, 2], 2)
    assert "stack 2: axial, 0.30° from stack 1" in w.message


# --- irregular gaps too large for one grid (issue 20, point 5) -----------------------------


@pytest.mark.parametrize(("step", "limit"), [(0.625, 1.0), (2.0, 1.0), (5.0, 2.5)])
def test_position_error_limit_is_half_a_step_but_at_least_1_mm(step, limit):
    assert position_error_limit_mm(step) == limit


def test_a_large_position_error_splits_the_series_into_stacks_at_true_positions():
    # pydicom-data's DICOMDIR "Routine Brain": one slice 202.5 mm away from three at 1.25 mm
    z = [-99.48, 103.02, 104.27, 105.52]
    stacks = build_stack([frame(v, i) for i, v in enumerate(z)])
    assert [len(s.slices) for s in stacks] == [3, 1]
    for s in stacks:
        (w,) = s.warnings
        assert w.code == "irregular_spacing_split"
        assert "134.17 mm" in w.message and "2 separate stacks" in w.message
        for k, f in enumerate(s.slices):  # every image drawn where its file puts it
            assert np.allclose(s.affine[:3, 0] * k + s.affine[:3, 3], f.position_lps)
    assert np.allclose(stacks[0].affine[:3, 0], [0, 0, 1.25])


def test_two_regular_parts_keep_their_own_spacing():
    z = [0, 1, 2, 3, 4, 7, 10, 13, 16]
    stacks = build_stack([frame(v, i) for i, v in enumerate(z)])
    assert sorted(len(s.slices) for s in stacks) == [4, 5]
    assert sorted(round(float(s.affine[2, 0]), 3) for s in stacks) == [1.0, 3.0]


def test_a_position_error_within_the_limit_stays_one_volume():
    # 5 mm slices, one 2 mm off: within half a step, drawn as one volume with the warning
    (stack,) = build_stack([frame(v, i) for i, v in enumerate([0, 5, 12, 15, 20])])
    assert [w.code for w in stack.warnings] == ["unequal_spacing"]
    # 1 mm slices with a 5.5 mm jump (no whole number of slices to fill): past the limit
    stacks = build_stack([frame(v, i) for i, v in enumerate([0, 1, 2, 7.5, 8.5, 9.5])])
    assert [len(s.slices) for s in stacks] == [3, 3]

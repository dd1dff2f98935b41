"""The stacking rules on synthetic frames, without any file: ordering, gaps, tilt, repeats."""

import numpy as np
import pytest

from medview.core.series import (
    FrameRef,
    PixelFormat,
    SourceRef,
    build_stack,
    dedupe_by_sop,
    rescale_warning,
    split_by_shape,
)

PF = PixelFormat("1.2.840.10008.1.2.1", 4, 5, 1, 16, 16, 1, "MONOCHROME2", 0, 1)


def frame(z, i=0, sop=None, orient=(1, 0, 0, 0, 1, 0), pos=None, rows=4, slope=1.0,
          intercept=0.0, temporal=()):
    pf = PF if rows == 4 else PixelFormat("1.2.840.10008.1.2.1", rows, 5, 1, 16, 16, 1,
                                          "MONOCHROME2", 0, 1)
    return FrameRef(SourceRef(f"f{sop or z}-{i}"), 0, pf, sop or f"1.2.{z}.{i}",
                    instance_number=i, position_lps=pos or (0.0, 0.0, float(z)),
                    orientation=orient, pixel_spacing_row_col_mm=(0.5, 0.7),
                    rescale_slope=slope, rescale_intercept=intercept, temporal_key=temporal)


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
    groups = split_by_shape([frame(z) for z in range(5)] +
                            [frame(0, orient=(0, 1, 0, 0, 0, -1), sop="loc")])
    assert [len(g) for g in groups] == [5, 1]


def test_missing_geometry_falls_back_to_instance_order_with_warning():
    frames = [FrameRef(SourceRef(f"x{i}"), 0, PF, f"1.{i}", instance_number=3 - i)
              for i in range(3)]
    (stack,) = build_stack(frames)
    assert [f.instance_number for f in stack.slices] == [1, 2, 3]
    assert not stack.has_geometry and stack.warnings[0].code == "missing_geometry"


@pytest.mark.parametrize(("pairs", "expect"), [([(1, 0), (1, 0)], None),
                                                ([(1, -1024), (2, -1000)], "rescale_varies")])
def test_rescale_warning(pairs, expect):
    w = rescale_warning([frame(k, slope=s, intercept=i) for k, (s, i) in enumerate(pairs)])
    assert (w.code if w else None) == expect

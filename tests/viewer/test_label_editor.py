"""LabelEditor headless: strokes and actions are single undo steps that restore exactly
(100+ steps), memory grows with the voxels changed, locked segments are never touched, the
threshold brush keeps to its HU range, AI findings become unreviewed segments that a
person's edit or confirmation marks reviewed, and listeners hear every change."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from medview.core.geometry import affine_from_plane
from medview.core.history import History
from medview.core.labels import LabelMap
from medview.core.volume import Volume, VolumeMetadata
from medview.viewer.label_editor import LabelEditor
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState

SHAPE = (24, 64, 72)
AFFINE = affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (0.8, 0.6), (0, 0, 2.0))


def make_editor(history: History | None = None) -> LabelEditor:
    array = np.full(SHAPE, 40, np.int16)
    array[:, :, 36:] = 400  # right half "bone"
    state = ViewerState()
    state.set_volume(Volume(array, AFFINE.copy(), VolumeMetadata(modality="CT")), "k")
    return LabelEditor(state, LabelMap.empty(SHAPE, "k"), history)


def stroke(ed: LabelEditor, plane: Plane, points) -> None:
    ed.begin_stroke()
    for row, col in points:
        ed.dab(plane, row, col)
    ed.end_stroke()


@pytest.fixture
def ed():
    e = make_editor()
    e.add_segment("Lesion")
    return e


def test_layer_is_in_the_state_until_detached(ed):
    assert any(x is ed.layer for x in ed.state.layers)
    assert ed.layer.array is ed.label_map.array
    ed.detach()
    assert not any(x is ed.layer for x in ed.state.layers)
    with pytest.raises(ValueError):
        LabelEditor(ed.state, LabelMap.empty((2, 2, 2)))


def test_sphere_brush_counts_its_volume_in_mm(ed):
    ed.set_tool(radius_mm=6.0, sphere=True)
    stroke(ed, Plane.AXIAL, [(32, 30)])
    expected = 4 / 3 * math.pi * 6**3 / (2.0 * 0.8 * 0.6)
    assert (ed.label_map.array == 1).sum() == pytest.approx(expected, rel=0.05)


def test_a_stroke_is_one_step_and_undo_redo_restore_exactly(ed):
    stroke(ed, Plane.AXIAL, [(10, 10), (10, 40), (30, 40)])
    after = ed.label_map.array.copy()
    assert after.any() and ed.undo_name == "Paint"
    assert ed.undo() and not ed.label_map.array.any()
    assert ed.redo_name == "Paint"
    assert ed.redo() and np.array_equal(ed.label_map.array, after)
    assert not ed.redo()


def test_150_random_steps_undo_and_redo_exactly_with_memory_per_voxel_changed():
    ed = make_editor(History(max_steps=200))
    for name in ("Lesion", "Liver", "Cyst"):
        ed.add_segment(name)
    rng = np.random.default_rng(3)
    snapshots = [ed.label_map.array.copy()]
    changed = 0
    for i in range(150):
        ed.set_active(int(rng.integers(1, 4)))
        ed.set_tool(
            name=("brush", "eraser", "brush")[i % 3],
            radius_mm=float(rng.uniform(0.5, 4)),
            sphere=bool(i % 5 == 0),
        )
        plane = (Plane.AXIAL, Plane.CORONAL, Plane.SAGITTAL)[i % 3]
        rows, cols = ed.state.maps[plane].screen_shape
        ed.state.set_slice(plane, int(rng.integers(0, ed.state.maps[plane].n_slices)))
        pts = list(zip(rng.uniform(0, rows, 3), rng.uniform(0, cols, 3), strict=True))
        before = ed.label_map.array.copy()
        stroke(ed, plane, pts)
        changed += int((before != ed.label_map.array).sum())
        if not np.array_equal(before, ed.label_map.array):
            snapshots.append(ed.label_map.array.copy())
    steps = len(snapshots) - 1
    assert steps >= 100
    # 8 bytes index + 1 old + 1 new per changed voxel, nothing per volume
    assert ed.history.nbytes <= 10 * changed + 1000
    for k in range(steps, 0, -1):
        assert np.array_equal(ed.label_map.array, snapshots[k])
        assert ed.undo()
    assert np.array_equal(ed.label_map.array, snapshots[0])
    for k in range(1, steps + 1):
        assert ed.redo()
        assert np.array_equal(ed.label_map.array, snapshots[k])


def test_locked_segments_are_never_touched(ed):
    liver = ed.add_segment("Liver")
    ed.label_map.array[12, 20:40, 20:40] = liver.value
    ed.update_segment(liver.value, locked=True)
    before = ed.label_map.array.copy()
    ed.set_active(1)
    ed.set_tool(radius_mm=8.0)
    stroke(ed, Plane.AXIAL, [(30, 30)])
    ed.set_tool(name="fill", tolerance_hu=10)
    ed.fill(Plane.AXIAL, 30, 30)
    ed.lasso(Plane.AXIAL, [(0, 0), (0, 70), (60, 70), (60, 0)])
    assert (ed.label_map.array[before == liver.value] == liver.value).all()
    # the locked segment itself paints nothing and its eraser erases nothing
    ed.set_active(liver.value)
    locked_before = ed.label_map.array.copy()
    for tool, where in (("eraser", (30, 30)), ("brush", (5, 5))):
        ed.set_tool(name=tool)
        stroke(ed, Plane.AXIAL, [where])
        assert np.array_equal(ed.label_map.array, locked_before)


def test_eraser_clears_only_the_active_segment(ed):
    other = ed.add_segment("Liver")
    k = ed.state.slice_index(Plane.AXIAL)
    ed.label_map.array[k, 30, 20:30] = 1
    ed.label_map.array[k, 31, 20:30] = other.value
    ed.set_active(1)
    ed.set_tool(name="eraser", radius_mm=3)
    stroke(ed, Plane.AXIAL, [(30, 25)])
    assert (ed.label_map.array[k, 30, 20:30] == 0).sum() >= 8
    assert (ed.label_map.array[k, 31, 20:30] == other.value).all()


def test_threshold_brush_paints_only_inside_the_hu_range(ed):
    ed.set_tool(name="threshold", radius_mm=6, hu_range=(300, 500))
    stroke(ed, Plane.AXIAL, [(32, 36)])
    k = ed.state.slice_index(Plane.AXIAL)
    painted = ed.label_map.array[k] == 1
    assert painted[:, 36:].any() and not painted[:, :36].any()


def test_fill_lasso_islands_smooth_interpolate_are_one_step_each(ed):
    k = ed.state.slice_index(Plane.AXIAL)
    ed.set_tool(tolerance_hu=5)
    ed.fill(Plane.AXIAL, 10, 50)
    assert (ed.label_map.array[k, :, 36:] == 1).all() and ed.undo_name == "Fill"
    ed.undo()
    ed.lasso(Plane.AXIAL, [(10, 10), (10, 20), (20, 20), (20, 10)])
    assert ed.undo_name == "Lasso fill" and (ed.label_map.array[k, 11:20, 11:20] == 1).all()
    ed.label_map.array[0, 0, 0] = 1
    ed.remove_islands(1, 10)
    assert ed.label_map.array[0, 0, 0] == 0 and ed.undo_name == "Remove islands"
    ed.label_map.array[2, 30:40, 30:40] = 1
    ed.label_map.array[8, 30:40, 30:40] = 1
    ed.interpolate(1, axis=0)
    assert (ed.label_map.array[3:8, 30:40, 30:40] == 1).all()
    assert ed.undo_name == "Fill between slices"
    ed.undo()
    assert not ed.label_map.array[3:8, 30:40, 30:40].any()
    ed.smooth(1, 2.0)
    assert ed.undo_name in ("Smooth", "Fill between slices")


def test_remove_segment_and_its_undo(ed):
    ed.update_segment(1, locked=True)
    ed.label_map.array[3, 3:6, 3:6] = 1
    ed.remove_segment(1)
    assert 1 not in ed.label_map.segments and not ed.label_map.array.any()
    assert ed.active is None
    ed.undo()
    assert ed.label_map.segments[1].locked and (ed.label_map.array[3, 3:6, 3:6] == 1).all()


def finding(label="Nodule", fid=1):
    return SimpleNamespace(label_name=label, model_ref="lesion-seg:1.0", id=fid, label_value=1)


def test_accepted_finding_is_an_unreviewed_segment_until_edited_or_confirmed():
    ed = make_editor()
    mine = ed.add_segment("Liver")
    ed.label_map.array[5, 5, 5] = mine.value
    idx = np.ravel_multi_index(np.array([[5, 5, 5], [5, 5, 6], [5, 6, 6]]).T, SHAPE)
    seg = ed.accept_finding(finding(), idx)
    assert seg.name == "Nodule" and seg.made_by == "lesion-seg:1.0" and not seg.reviewed
    assert ed.label_map.array[5, 5, 5] == mine.value  # the reader's own label wins
    assert ed.label_map.array[5, 5, 6] == seg.value
    # a second finding of the same label and model goes to the same segment
    seg2 = ed.accept_finding(finding(fid=2), [np.ravel_multi_index((9, 9, 9), SHAPE)])
    assert seg2.value == seg.value and len(ed.label_map.segments) == 2
    ed.undo()
    ed.undo()
    assert seg.value not in ed.label_map.segments and (ed.label_map.array != seg.value).all()
    ed.redo()
    assert not ed.label_map.segments[seg.value].reviewed
    # an edit of its voxels marks it reviewed; undo takes that back too
    ed.set_active(seg.value)
    stroke(ed, Plane.AXIAL, [(40, 40)])
    assert ed.label_map.segments[seg.value].reviewed
    ed.undo()
    assert not ed.label_map.segments[seg.value].reviewed
    assert ed.confirm(seg.value).reviewed


def test_hidden_segment_is_transparent_and_not_an_undo_step(ed):
    n = len(ed.history._undo)
    ed.update_segment(1, visible=False)
    assert len(ed.layer.label_colours[1]) == 4 and ed.layer.label_colours[1][3] == 0
    assert ed.layer.label_lut()[1, 3] == 0
    assert len(ed.history._undo) == n
    ed.update_segment(1, name="Mass")
    ed.undo()
    assert ed.label_map.segments[1].name == "Lesion"
    assert not ed.label_map.segments[1].visible  # visibility stays as the reader set it


def test_listeners_and_revision(ed):
    heard = []
    ed.subscribe(heard.append)
    r0 = ed.revision
    stroke(ed, Plane.AXIAL, [(20, 20)])
    assert "voxels" in heard and "history" in heard and ed.revision > r0
    heard.clear()
    ed.add_segment("Cyst")
    assert "segments" in heard and "active" in heard
    heard.clear()
    ed.set_tool(name="lasso")
    assert heard == ["tool"]
    with pytest.raises(ValueError):
        ed.set_tool(name="scalpel")
    ed.unsubscribe(heard.append)


def test_real_ai_findings_go_into_labels_voxel_for_voxel(tmp_path, monkeypatch):
    """The fake model's findings (ai.findings' own cut) -> finding_indices -> accept."""
    from medview.ai.runtime.inference import clear_kept
    from medview.viewer.ai_results import AIResults
    from medview.viewer.label_tools import finding_indices
    from tests.viewer.test_ai_results import KEY, blobs, run

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    clear_kept()
    state = ViewerState()
    state.set_volume(blobs(), KEY)
    ai = AIResults(state, run(state.volume, threshold=0.3))
    ed = LabelEditor(state, LabelMap.empty(state.volume.shape, KEY))
    assert len(ai.findings) >= 2
    total = 0
    for f in ai.findings:
        idx = finding_indices(ai.mask_layer.array, f)
        assert len(idx) == f.voxel_count
        assert (ai.mask_layer.array.reshape(-1)[idx] == f.label_value).all()
        seg = ed.accept_finding(f, idx)
        total += len(idx)
        assert seg.made_by == f.model_ref and not seg.reviewed
    assert (ed.label_map.array > 0).sum() == total
    clear_kept()


def test_colour_image_paints_but_has_no_hu_for_threshold_or_fill():
    state = ViewerState()
    state.set_volume(Volume(np.zeros((*SHAPE, 3), np.uint8), AFFINE.copy()), "rgb")
    ed = LabelEditor(state, LabelMap.empty(SHAPE))
    ed.add_segment("Lesion")
    stroke(ed, Plane.AXIAL, [(20, 20)])
    n = int(ed.label_map.array.sum())
    assert n > 0
    ed.set_tool(name="threshold")
    stroke(ed, Plane.AXIAL, [(40, 40)])
    assert ed.fill(Plane.AXIAL, 50, 50).size == 0
    assert int(ed.label_map.array.sum()) == n

"""LabelEditor.add_labels: an imported label map joins the reader's labels as new segments,
into background only, as one undo step that takes the segments and voxels back."""

import numpy as np
import pytest

from medview.core.labels import LabelMap
from medview.core.volume import Volume, VolumeMetadata
from medview.viewer.label_editor import LabelEditor
from medview.viewer.state import ViewerState

SHAPE = (4, 6, 8)


def editor() -> LabelEditor:
    state = ViewerState()
    state.set_volume(Volume(np.zeros(SHAPE, np.int16), np.eye(4), VolumeMetadata()), "k")
    return LabelEditor(state, LabelMap.empty(SHAPE, "k"))


def test_imported_segments_are_added_under_free_values_into_background_only():
    ed = editor()
    mine = ed.add_segment("Liver")
    ed.label_map.array[1, :3] = mine.value
    before = ed.label_map.array.copy()
    imported = LabelMap.empty(SHAPE, "k")
    nodule = imported.add_segment("Nodule")
    cyst = imported.add_segment("Cyst")
    imported.array[1, 2:5] = nodule.value  # overlaps the reader's row 2
    imported.array[3] = cyst.value
    added = ed.add_labels(imported, name="Import seg.dcm")
    assert [s.name for s in added] == ["Nodule", "Cyst"]
    assert [s.value for s in added] == [2, 3] and ed.active == 2
    assert added[0].type == nodule.type and added[0].colour == nodule.colour
    a = ed.label_map.array
    assert (a[1, :3] == mine.value).all()  # the reader's voxels win
    assert (a[1, 3:5] == 2).all() and (a[3] == 3).all()
    assert ed.undo_name == "Import seg.dcm"
    assert ed.undo()
    assert np.array_equal(ed.label_map.array, before)
    assert list(ed.label_map.segments) == [mine.value]
    assert ed.redo() and len(ed.label_map.segments) == 3


def test_another_grid_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        editor().add_labels(LabelMap.empty((1, 2, 3)))

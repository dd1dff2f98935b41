"""LabelMap writes and the sparse undo history: exact restore, locks, memory per edit."""

import numpy as np
import pytest

from medview.core.errors import InvalidInputError
from medview.core.history import Change, History, merge
from medview.core.labels import LabelMap, Segment, segment_for


def _map() -> LabelMap:
    lm = LabelMap.empty((4, 64, 64), "s1")
    lm.add_segment("Nodule")
    lm.add_segment("Liver")
    return lm


def test_write_records_only_changed_voxels_and_undo_restores_exactly():
    lm = _map()
    lm.array[1, 10:20, 10:20] = 2
    before = lm.array.copy()
    idx = np.arange(64 * 64, 64 * 64 + 64 * 30)  # rows 0..29 of slice 1
    change = lm.write(idx, 1)
    assert change.size == 64 * 30
    assert (lm.array[1, :30] == 1).all()
    change.undo(lm.array)
    assert np.array_equal(lm.array, before)
    change.redo(lm.array)
    assert (lm.array[1, :30] == 1).all()


def test_locked_segment_is_neither_painted_over_nor_erased():
    lm = _map()
    lm.array[0, :5, :5] = 2
    lm.update_segment(2, locked=True)
    ch = lm.write(np.arange(64 * 64), 1)
    assert (lm.array[0, :5, :5] == 2).all() and ch.size == 64 * 64 - 25
    ch0 = lm.write(np.arange(64 * 64), 0, only=2)
    assert ch0.size == 0 and (lm.array[0, :5, :5] == 2).all()


def test_eraser_of_one_segment_leaves_others():
    lm = _map()
    lm.array[0, 0, :10] = 1
    lm.array[0, 0, 10:20] = 2
    lm.write(np.arange(20), 0, only=1)
    assert (lm.array[0, 0, :10] == 0).all() and (lm.array[0, 0, 10:20] == 2).all()


def test_merge_keeps_first_old_and_last_new_and_drops_round_trips():
    lm = _map()
    a = lm.write(np.arange(10), 1)
    b = lm.write(np.arange(5, 15), 2)
    c = lm.write(np.arange(0, 3), 0)  # back to where it started
    stroke = merge([a, b, c])
    assert set(stroke.indices.tolist()) == set(range(3, 15))
    stroke.undo(lm.array)
    assert not lm.array.any()
    stroke.redo(lm.array)
    assert (lm.array.reshape(-1)[3:5] == 1).all() and (lm.array.reshape(-1)[5:15] == 2).all()


def test_history_memory_grows_with_voxels_changed_not_volume():
    big = LabelMap.empty((300, 512, 512))
    big.add_segment("Lesion")
    hist = History()
    for k in range(150):
        hist.push("dab", big.write(np.arange(k * 100, k * 100 + 20), 1))
    assert hist.nbytes == 150 * 20 * 10  # int64 index + old + new per voxel
    assert hist.can_undo()


def test_history_bound_undo_redo_order_and_redo_cleared_by_new_edit():
    lm = _map()
    hist = History(max_steps=100)
    for k in range(120):
        hist.push(f"s{k}", lm.write(np.array([k]), 1))
    assert len([1 for _ in range(200) if hist.undo(lm.array)]) == 100
    assert lm.array.reshape(-1)[:20].all() and not lm.array.reshape(-1)[20:120].any()
    hist.redo(lm.array)
    assert lm.array.reshape(-1)[20] == 1
    hist.push("new", lm.write(np.array([500]), 2))
    assert not hist.can_redo()
    hist.push("nothing", lm.write(np.array([500]), 2))
    assert hist.undo_name() == "new"


def test_segment_codes_round_trip_and_bad_entries_refused():
    seg = segment_for(3, "liver", made_by="lesion-seg:1.0")
    assert seg.type.value == "10200004" and not seg.reviewed
    assert Segment.from_dict(seg.to_dict(), "x") == seg
    bad = seg.to_dict() | {"value": 0}
    with pytest.raises(InvalidInputError, match=r"labels\.json"):
        Segment.from_dict(bad, "labels.json")
    with pytest.raises(InvalidInputError, match="malformed"):
        Segment.from_dict({"name": "x"}, "labels.json")


def test_label_map_refuses_wrong_dtype_and_too_many_segments():
    with pytest.raises(ValueError):
        LabelMap(np.zeros((2, 2, 2), np.int16))
    lm = LabelMap.empty((1, 2, 2))
    for k in range(255):
        lm.add_segment(f"s{k}")
    with pytest.raises(InvalidInputError, match="at most 255"):
        lm.add_segment("one more")


def test_a_segment_table_change_is_a_step_even_without_voxels():
    h = History()
    lm = _map()
    empty = merge([])
    h.push(
        "Rename",
        Change(
            empty.indices, empty.old, empty.new, segments=(dict(lm.segments), dict(lm.segments))
        ),
    )
    assert h.can_undo() and h.undo_name() == "Rename"
    h.push("Nothing", empty)
    assert h.undo_name() == "Rename"
    change = h.undo(lm.array)
    assert change.segments is not None and h.redo_name() == "Rename"


def test_write_takes_unsorted_indices_with_repeats():
    lm = _map()
    change = lm.write(np.array([70, 5, 70, 9, 5]), 1)
    assert change.indices.tolist() == [5, 9, 70] and change.old.tolist() == [0, 0, 0]
    change.undo(lm.array)
    assert not lm.array.any()


@pytest.mark.parametrize(
    ("name", "meaning"),
    [
        ("lung nodule", "Nodule"),
        ("Liver lesion", "Lesion"),
        ("liver", "Liver"),
        ("right_kidney", "Kidney"),
        ("Something else", "Lesion"),
        ("", "Lesion"),
    ],
)
def test_segment_names_are_coded_by_their_last_known_word(name, meaning):
    assert segment_for(1, name).type.meaning == meaning

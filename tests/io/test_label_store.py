"""io.label_store / label_autosave / label_catalog: what is saved comes back exactly (snapshot +
journal replay, undo included), a torn or damaged file is detected, kept aside and said in one
sentence, recovery is offered only after an unclean end, status and done studies round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medview.core.errors import MedviewError
from medview.core.labels import LabelMap
from medview.core.volume import Volume
from medview.io.labels import codec
from medview.io.labels.autosave import LabelAutosaver
from medview.io.labels.catalog import done_studies, load_done_labels, pending_recovery
from medview.io.labels.store import DONE, DRAFT, LabelSource, LabelStore
from medview.viewer.label_editor import LabelEditor
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState

SHAPE = (12, 40, 48)
KEY = "1.2.3.4#stack 1"
# axial: slices along z every 2.5 mm, rows along y (0.7 mm), columns along x (0.8 mm)
AFFINE = np.array([[0, 0, 0.8, -20], [0, 0.7, 0, -14], [2.5, 0, 0, 40], [0, 0, 0, 1.0]])


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def source(key: str = KEY) -> LabelSource:
    return LabelSource(
        key,
        SHAPE,
        tuple(map(tuple, AFFINE)),
        "1.2.3",
        "1.2.3.4",
        series_folder="/data/ct",
        source_files=tuple(f"/data/ct/{k}.dcm" for k in range(12)),
    )


def editor(key: str = KEY) -> LabelEditor:
    state = ViewerState()
    state.set_volume(Volume(np.zeros(SHAPE, np.int16), AFFINE), key)
    ed = LabelEditor(state, LabelMap.empty(SHAPE, key))
    ed.set_active(ed.add_segment("Liver").value)
    return ed


def paint(ed: LabelEditor, row: float, col: float, radius_mm: float = 3.0) -> None:
    ed.set_tool(radius_mm=radius_mm)
    ed.begin_stroke()
    ed.dab(Plane.AXIAL, row, col)
    ed.dab(Plane.AXIAL, row + 5, col + 8)
    ed.end_stroke()


def test_codec_round_trips_and_detects_damage():
    rng = np.random.default_rng(1)
    a = np.zeros((30, 64, 80), np.uint8)
    a[3:9, 10:40, 5:60] = 2
    a[20] = rng.integers(0, 4, (64, 80))  # noisy slice: many runs
    snap = codec.encode_snapshot(a, {"x": 1})
    head, back = codec.decode_snapshot(snap.data)
    np.testing.assert_array_equal(back, a)
    assert head["x"] == 1 and snap.counts[2] == int((a == 2).sum())
    for cut in (len(snap.data) - 3, 20, 5):
        with pytest.raises(codec.DamagedData):
            codec.decode_snapshot(snap.data[:cut])
    flipped = bytearray(snap.data)
    flipped[-10] ^= 0xFF
    with pytest.raises(codec.DamagedData, match="altered"):
        codec.decode_snapshot(bytes(flipped))


def test_autosave_replays_strokes_and_undo_exactly_after_no_close():
    ed = editor()
    saver = LabelAutosaver(LabelStore(KEY), ed, source(), interval_s=3600)
    paint(ed, 10, 10)
    paint(ed, 20, 30)
    ed.undo()
    paint(ed, 5, 40)
    ed.update_segment(ed.active, name="Liver left")
    expected = ed.label_map.array.copy()
    assert saver.message == ""
    # MedView "crashes": nothing closed; the next start offers it and replays it exactly
    (item,) = pending_recovery()
    assert item.series_key == KEY and item.edits >= 5
    loaded = LabelStore(KEY).load()
    np.testing.assert_array_equal(loaded.label_map.array, expected)
    assert loaded.label_map.segments[1].name == "Liver left" and loaded.messages == []


def test_snapshot_on_worker_then_more_strokes_then_clean_close():
    ed = editor()
    store = LabelStore(KEY)
    saver = LabelAutosaver(store, ed, source(), interval_s=0)
    paint(ed, 10, 10)
    task = saver.tick()
    assert task is not None and saver.tick() is None  # one at a time
    paint(ed, 25, 25)  # painted while the worker writes: the journal covers it
    counts = task.run()
    saver.finish(task)
    assert counts[1] > 0
    paint(ed, 30, 5)
    np.testing.assert_array_equal(LabelStore(KEY).load().label_map.array, ed.label_map.array)
    saver.close()
    assert pending_recovery() == []
    names = sorted(p.name for p in store.folder.iterdir())
    assert names[0] == "label.json" and len(names) == 2 and names[1].startswith("snapshot-")
    np.testing.assert_array_equal(LabelStore(KEY).load().label_map.array, ed.label_map.array)


def test_a_torn_last_record_is_dropped_and_said():
    ed = editor()
    saver = LabelAutosaver(LabelStore(KEY), ed, source(), interval_s=3600)
    paint(ed, 10, 10)
    before = ed.label_map.array.copy()
    paint(ed, 30, 30)
    (journal,) = saver.store.pending_journals()
    journal.write_bytes(journal.read_bytes()[:-7])  # a kill in the middle of the write
    loaded = LabelStore(KEY).load()
    np.testing.assert_array_equal(loaded.label_map.array, before)
    assert len(loaded.messages) == 1 and "cut off" in loaded.messages[0]
    assert journal.name in loaded.messages[0]


def test_a_damaged_record_in_the_middle_is_kept_aside():
    ed = editor()
    saver = LabelAutosaver(LabelStore(KEY), ed, source(), interval_s=3600)
    paint(ed, 10, 10)
    paint(ed, 30, 30)
    (journal,) = saver.store.pending_journals()
    data = bytearray(journal.read_bytes())
    data[len(data) // 2] ^= 0x55
    journal.write_bytes(bytes(data))
    loaded = LabelStore(KEY).load()
    (message,) = loaded.messages
    assert f"{journal.name} of this series is damaged" in message and "kept as" in message
    assert journal.with_name(journal.name + ".damaged-1").read_bytes() == bytes(data)


def test_a_damaged_snapshot_is_kept_aside_and_the_clean_one_used():
    ed = editor()
    store = LabelStore(KEY)
    saver = LabelAutosaver(store, ed, source(), interval_s=0)
    paint(ed, 10, 10)
    saver.close()  # clean save
    clean = ed.label_map.array.copy()
    store2 = LabelStore(KEY)
    saver2 = LabelAutosaver(store2, ed, source(), interval_s=0)
    paint(ed, 30, 30)
    saver2.run_now()
    current = store2.snapshot_path(store2._meta["snapshot"])
    current.write_bytes(current.read_bytes()[:-5])
    loaded = LabelStore(KEY).load()
    assert any(f"{current.name} of this series is damaged" in m for m in loaded.messages)
    assert any("restored from" in m for m in loaded.messages)
    np.testing.assert_array_equal(loaded.label_map.array, clean)
    assert current.with_name(current.name + ".damaged-1").exists() and not current.exists()


@pytest.mark.parametrize(
    "content, reason",
    [(b"{not json", "not valid JSON"), (b'{"format": "x"}', "not a MedView labels file")],
)
def test_a_damaged_label_json_is_kept_aside_in_one_sentence(content, reason):
    store = LabelStore(KEY)
    store.folder.mkdir(parents=True)
    store.meta_path.write_bytes(content)
    again = LabelStore(KEY)
    (message,) = again.messages
    assert (
        "label.json" in message and reason in message and "kept as label.json.damaged-1" in message
    )
    assert (store.folder / "label.json.damaged-1").read_bytes() == content


def test_a_newer_label_json_is_left_alone():
    store = LabelStore(KEY)
    store.folder.mkdir(parents=True)
    text = json.dumps({"format": "medview-labels", "version": 99, "series_key": KEY})
    store.meta_path.write_text(text)
    with pytest.raises(MedviewError, match="newer MedView"):
        LabelStore(KEY)
    assert store.meta_path.read_text() == text


def test_discard_goes_back_to_the_clean_save_and_keeps_the_rest_aside():
    ed = editor()
    saver = LabelAutosaver(LabelStore(KEY), ed, source(), interval_s=0)
    paint(ed, 10, 10)
    saver.close()
    clean = ed.label_map.array.copy()
    store = LabelStore(KEY)
    LabelAutosaver(store, ed, source(), interval_s=0)
    paint(ed, 30, 30)
    assert [r.series_key for r in pending_recovery()] == [KEY]
    aside = store.discard_unsaved()
    assert aside is not None and any(aside.iterdir())
    assert pending_recovery() == []
    np.testing.assert_array_equal(LabelStore(KEY).load().label_map.array, clean)


def test_status_and_done_studies_round_trip():
    ed = editor()
    store = LabelStore(KEY)
    saver = LabelAutosaver(store, ed, source(), interval_s=0)
    paint(ed, 10, 10)
    saver.close()
    assert store.status.state == DRAFT and done_studies() == []
    store.set_status(DONE, "reader")
    again = LabelStore(KEY)
    assert again.status.state == DONE and again.status.by == "reader" and again.status.at
    (study,) = done_studies()
    assert study.series_key == KEY and study.segments == {1: "Liver"}
    assert study.counts == {1: int((ed.label_map.array == 1).sum())}
    assert study.source.series_instance_uid == "1.2.3.4" and study.source.shape == SHAPE
    assert study.source.source_files[0] == "/data/ct/0.dcm" and not study.unsaved_edits
    np.testing.assert_array_equal(load_done_labels(study), ed.label_map.array)
    store.set_status(DRAFT, "reader")
    assert done_studies() == []


def test_nothing_names_the_patient():
    from medview.core.series import PatientInfo, SeriesInfo

    series = SeriesInfo(
        "1.2", "1.2.3", patient=PatientInfo(name="Doe^Jane", id="PID123"), rows=4, cols=4
    )
    src = LabelSource.from_series(series)
    text = json.dumps(src.to_dict())
    assert "Doe" not in text and "PID123" not in text and len(src.patient_key) == 16


def test_opening_without_editing_offers_no_recovery():
    ed = editor()
    saver = LabelAutosaver(LabelStore(KEY), ed, source(), interval_s=0)
    assert saver.tick() is None
    assert pending_recovery() == []


def test_history_records_saves_status_and_discards_by_whom_and_when(monkeypatch):
    monkeypatch.setattr("medview.io.labels.store.reader_name", lambda: "dr-test")
    ed = editor()
    saver = LabelAutosaver(LabelStore(KEY), ed, source(), interval_s=0)
    paint(ed, 10, 10)
    saver.close()
    first = int((ed.label_map.array == 1).sum())
    store = LabelStore(KEY)
    store.set_status(DONE, "reader")
    LabelAutosaver(store, ed, source(), interval_s=0)
    paint(ed, 30, 30)
    store.discard_unsaved()
    events = LabelStore(KEY).history
    assert [e["event"] for e in events] == ["saved", "marked done", "discarded unsaved edits"]
    assert events[0]["voxels"] == {"1": first} and first > 0
    assert events[0]["by"] == "dr-test" and events[1]["by"] == "reader"
    assert all(e["at"] for e in events) and events[2]["kept_in"].startswith("discarded-")

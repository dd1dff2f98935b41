"""MeasurementStore without Qt: measurements kept per series across sessions in one JSON file
each, saved on every committed change, and every damaged or foreign file met with one
sentence, the file kept, and no crash."""

import json
import os

import numpy as np
import pytest

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.io import series_files
from medview.io.saved import measurements_file as measurements_path
from medview.viewer.measurement_store import (
    ADDED,
    CHANGED,
    MESSAGE,
    REMOVED,
    RESET,
    SELECTED,
    VERSION,
    MeasurementStore,
)
from medview.viewer.measurements import ELLIPSE, RULER, Measurement, screen_to_lps
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.viewer.memory_store_file import MemoryStoreFile

SHAPE = (12, 24, 32)
AFFINE = affine_from_plane((-10, 20, -30), (1, 0, 0), (0, 1, 0), (0.6, 0.9), (0, 0, 2.5))
KEY = "1.2.826.0.1.3680043.99.7"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def volume() -> Volume:
    array = np.random.default_rng(5).integers(-1000, 2000, SHAPE).astype(np.int16)
    return Volume(array, AFFINE.copy(), VolumeMetadata(modality="CT", units="HU"))


def open_series(key=KEY):
    state = ViewerState()
    store = MeasurementStore(state, series_files.measurements_file)
    events = []
    store.subscribe(lambda event, mid: events.append((event, mid)))
    state.set_volume(volume(), key)
    return state, store, events


def new(state, kind=RULER, plane=Plane.AXIAL, rows_cols=((2, 3), (10, 20))):
    index = state.slice_index(plane)
    pts = screen_to_lps(state.volume, state.maps[plane], index, np.array(rows_cols, float))
    return Measurement(kind, plane, index, pts)


def test_measurements_come_back_in_the_next_session(data_dir):
    state, store, _ = open_series()
    ruler = store.add(new(state))
    roi = store.add(new(state, ELLIPSE, Plane.CORONAL, ((1, 2), (8, 20))))
    store.rename(roi.id, "  liver  ")
    before = {mid: store.values(mid) for mid in store.measurements}
    path = measurements_path(KEY)
    assert path.parent == data_dir / "measurements"
    doc = json.loads(path.read_text())
    assert doc["version"] == VERSION and doc["series_key"] == KEY
    assert [d["kind"] for d in doc["measurements"]] == [RULER, ELLIPSE]

    _, store2, events = open_series()
    assert list(store2.measurements) == [ruler.id, roi.id]
    assert store2.measurements[roi.id].name == "liver"
    assert {mid: store2.values(mid) for mid in store2.measurements} == pytest.approx(before)
    assert events == [(RESET, "")] and store2.message == ""


def test_every_committed_change_is_saved_and_drawing_positions_are_not():
    state, store, _ = open_series()
    path = measurements_path(KEY)
    m = store.add(new(state), save=False)  # the mouse is still down
    assert not path.exists()
    store.move(m.id, m.points_lps + 1.0, save=False)
    assert not path.exists()
    store.move(m.id, m.points_lps, save=True)  # released
    saved = json.loads(path.read_text())["measurements"][0]["points_lps"]
    assert np.allclose(saved, m.points_lps, atol=1e-6)
    store.remove(m.id)
    assert json.loads(path.read_text())["measurements"] == []
    slip = store.add(new(state), save=False)
    mtime = os.stat(path).st_mtime_ns
    store.remove(slip.id, save=False)  # a slip of the hand never touches the file
    assert os.stat(path).st_mtime_ns == mtime


def test_listeners_hear_each_change():
    state, store, events = open_series()
    events.clear()
    m = store.add(new(state))
    store.move(m.id, m.points_lps * 1.01)
    store.rename(m.id, "a")
    store.select("")
    store.remove(m.id)
    assert events == [
        (ADDED, m.id),
        (SELECTED, m.id),
        (CHANGED, m.id),
        (CHANGED, m.id),
        (SELECTED, ""),
        (REMOVED, m.id),
    ]


def test_values_follow_moved_points_and_numbers_count_per_kind():
    state, store, _ = open_series()
    m = store.add(new(state, rows_cols=((0, 0), (0, 10))))
    assert store.values(m.id).length_mm == pytest.approx(9.0)
    store.move(
        m.id,
        screen_to_lps(
            state.volume, state.maps[Plane.AXIAL], m.slice_index, np.array([(0, 0), (10, 0)], float)
        ),
    )
    assert store.values(m.id).length_mm == pytest.approx(6.0)
    assert [store.add(new(state)).name for _ in range(2)] == ["Ruler 2", "Ruler 3"]
    assert store.add(new(state, ELLIPSE)).name == "Ellipse 1"
    assert [x.kind for x in store.on_plane(Plane.AXIAL)] == [RULER, RULER, RULER, ELLIPSE]


def test_another_series_has_its_own_file_and_no_key_means_memory_only(data_dir):
    state, store, _ = open_series()
    store.add(new(state))
    state.set_volume(volume(), "1.2.3.other")
    assert store.measurements == {}
    state.set_volume(volume(), "")
    store.add(new(state))
    assert sorted(p.name for p in (data_dir / "measurements").iterdir()) == [f"{KEY}.json"]
    state.set_volume(volume(), KEY)
    assert len(store.measurements) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"format": "medview-measurements", "version": 1, "measu', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        (b"[1, 2, 3]", "not a MedView measurements file"),
        (b'{"format": "medview-measurements", "version": "one"}', "version 'one' is not valid"),
        (
            b'{"format": "medview-measurements", "version": 1, "series_key": "x"}',
            "belongs to another series",
        ),
        (
            json.dumps(
                {
                    "format": "medview-measurements",
                    "version": 1,
                    "series_key": KEY,
                    "measurements": {},
                }
            ).encode(),
            "no list of measurements",
        ),
    ],
)
def test_a_damaged_file_is_kept_aside_with_one_message(content, reason):
    path = measurements_path(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    state, store, events = open_series()
    assert store.measurements == {}
    assert events == [(RESET, ""), (MESSAGE, "")]
    assert reason in store.message and "kept as" in store.message
    assert "\n" not in store.message and "Traceback" not in store.message
    aside = path.with_name(path.name + ".damaged-1")
    assert aside.read_bytes() == content and not path.exists()
    store.add(new(state))  # the series works on, into a fresh file
    assert len(json.loads(path.read_text())["measurements"]) == 1
    path.write_text("{")
    state.set_volume(volume(), KEY)
    assert path.with_name(path.name + ".damaged-2").read_text() == "{"  # never overwritten


def test_bad_entries_are_skipped_and_the_file_copied_aside():
    state, store, _ = open_series()
    good = store.add(new(state))
    path = measurements_path(KEY)
    doc = json.loads(path.read_text())
    doc["measurements"] += [{"kind": "ruler"}, dict(doc["measurements"][0], slice_index=999)]
    path.write_text(json.dumps(doc))
    _, store2, _ = open_series()
    assert list(store2.measurements) == [good.id]
    assert "2 of the 3 measurements" in store2.message
    assert "(unknown plane None)" in store2.message
    assert json.loads(path.with_name(path.name + ".damaged-1").read_text()) == doc


def test_a_newer_file_is_left_alone():
    path = measurements_path(KEY)
    path.parent.mkdir(parents=True)
    content = json.dumps(
        {
            "format": "medview-measurements",
            "version": VERSION + 1,
            "series_key": KEY,
            "measurements": [{"shape": "spline"}],
        }
    )
    path.write_text(content)
    state, store, _ = open_series()
    assert "newer MedView" in store.message and "will not be saved" in store.message
    store.add(new(state))
    assert path.read_text() == content
    assert not list(path.parent.glob("*.damaged-*"))


def test_a_failed_save_is_one_message_not_a_crash(data_dir):
    state, store, events = open_series()
    data_dir.mkdir()
    (data_dir / "measurements").write_text("a file where the folder should be")
    events.clear()
    m = store.add(new(state))
    assert m.id in store.measurements  # still on screen
    assert events[-1] == (MESSAGE, "")
    assert "could not be saved" in store.message and "\n" not in store.message


def test_an_unreadable_file_is_not_overwritten():
    path = measurements_path(KEY)
    path.mkdir(parents=True)  # a folder where the file should be: reading fails
    state, store, _ = open_series()
    assert "could not be read" in store.message
    store.add(new(state))
    assert path.is_dir()


def test_the_store_needs_no_disk_only_the_file_it_is_handed(data_dir):
    """The viewer's store asks whoever made it for each series' file: here one in memory,
    which gets every committed change; a store made without one keeps them in memory."""
    files: dict[str, MemoryStoreFile] = {}
    state = ViewerState()
    store = MeasurementStore(state, lambda key: files.setdefault(key, MemoryStoreFile()))
    state.set_volume(volume(), KEY)
    ruler = store.add(new(state))
    assert [m["id"] for m in files[KEY].doc["measurements"]] == [ruler.id]
    state.set_volume(volume(), KEY)  # the series again: read back from its file
    assert list(store.measurements) == [ruler.id] and files[KEY].writes == 1

    alone = ViewerState()
    kept = MeasurementStore(alone)
    alone.set_volume(volume(), KEY)
    kept.add(new(alone))
    assert len(kept.measurements) == 1 and kept.file is None and not data_dir.exists()

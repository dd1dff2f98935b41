"""FindingStore without Qt: accept / reject decisions on AI findings kept per series in one
JSON file, matched to findings again at any threshold, with every damaged or foreign file
met by one sentence, the file kept, and no crash."""

import json
from datetime import datetime

import pytest

from medview.core.errors import StoreFileProblem
from medview.core.findings import Finding
from medview.io import series_files
from medview.io.saved import findings_file as findings_path
from medview.io.workspace import reader_name
from medview.viewer.finding_store import FORMAT, VERSION, same_finding
from medview.viewer.finding_store import FindingStore as InMemory
from tests.viewer.memory_store_file import MemoryStoreFile

KEY = "1.2.826.0.1.3680043.99.7"


def FindingStore(key: str) -> InMemory:
    """The store on its file in the data folder, as the AI panel makes it."""
    return InMemory(key, series_files.findings_file(key), reader_name())


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def finding(
    fid=1,
    centre=(5.0, 20.0, 20.0),
    half=(2, 5, 5),
    label=1,
    model="seg",
    version="1.0",
    threshold=0.5,
) -> Finding:
    lo = tuple(int(c - h) for c, h in zip(centre, half, strict=True))
    hi = tuple(int(c + h) for c, h in zip(centre, half, strict=True))
    return Finding(
        id=fid,
        label_value=label,
        label_name=f"label {label}",
        voxel_count=100,
        volume_ml=0.1,
        longest_axial_diameter_mm=8.0,
        centroid_lps=(centre[2] * 0.8, centre[1] * 0.8, centre[0] * 2.0),
        centroid_index=centre,
        bbox_index=(lo, hi),
        slice_range=(lo[0], hi[0]),
        mean_hu=40.0,
        peak_probability=0.9,
        mean_probability=0.7,
        uncertainty=None,
        model_name=model,
        model_version=version,
        threshold=threshold,
    )


def test_decisions_are_saved_with_what_later_issues_need_and_read_back():
    store = FindingStore(KEY)
    a, b = finding(1), finding(2, centre=(9.0, 40.0, 44.0))
    assert store.decide(a, "accepted").decision == "accepted"
    store.decide(b, "rejected")
    doc = json.loads(findings_path(KEY).read_text("utf-8"))
    assert doc["format"] == FORMAT and doc["version"] == VERSION and doc["series_key"] == KEY
    first = doc["decisions"][0]
    assert first["id"] == 1 and first["label_value"] == 1 and first["label_name"] == "label 1"
    assert first["centroid_lps"] == list(a.centroid_lps)
    assert first["bbox_index"] == [list(a.bbox_index[0]), list(a.bbox_index[1])]
    assert first["model"] == "seg:1.0" and first["threshold"] == 0.5
    assert first["decision"] == "accepted" and first["by"] == reader_name()
    assert datetime.fromisoformat(first["decided_at"]).tzinfo is not None
    again = FindingStore(KEY)
    assert again.message == ""
    assert [f.decision for f in again.apply([b, a, finding(3, centre=(2.0, 60.0, 5.0))])] == [
        "rejected",
        "accepted",
        "pending",
    ]


def test_a_decision_follows_its_finding_across_thresholds_but_not_other_models():
    store = FindingStore(KEY)
    store.decide(finding(1), "accepted")
    grown = finding(4, centre=(5.2, 20.5, 19.6), half=(3, 7, 7), threshold=0.3)
    elsewhere = finding(1, centre=(5.0, 40.0, 40.0))
    other_label = finding(1, label=2)
    other_model = finding(1, version="2.0")
    assert [f.decision for f in store.apply([grown, elsewhere, other_label, other_model])] == [
        "accepted",
        "pending",
        "pending",
        "pending",
    ]
    assert same_finding(finding(1), grown) and not same_finding(finding(1), elsewhere)


def test_latest_decision_wins_and_undecide_removes_it():
    store = FindingStore(KEY)
    store.decide(finding(1), "accepted")
    store.decide(finding(7, threshold=0.4), "rejected")  # the same lesion, decided again
    assert len(store.decisions) == 1 and store.apply([finding(1)])[0].decision == "rejected"
    store.decide(finding(1), "pending")
    assert FindingStore(KEY).decisions == []
    with pytest.raises(ValueError):
        store.decide(finding(1), "maybe")


def test_damaged_file_is_kept_aside_with_one_sentence():
    path = findings_path(KEY)
    path.parent.mkdir(parents=True)
    path.write_text("{not json", "utf-8")
    store = FindingStore(KEY)
    assert store.decisions == [] and "damaged" in store.message
    assert "kept as" in store.message and "\n" not in store.message
    assert path.with_name(path.name + ".damaged-1").read_text("utf-8") == "{not json"
    store.decide(finding(1), "accepted")  # a fresh file; the damaged one stays aside
    assert FindingStore(KEY).apply([finding(1)])[0].decision == "accepted"


def test_bad_entries_are_skipped_and_the_file_copied_aside():
    store = FindingStore(KEY)
    store.decide(finding(1), "accepted")
    path = findings_path(KEY)
    doc = json.loads(path.read_text("utf-8"))
    doc["decisions"].append({"id": "x"})
    path.write_text(json.dumps(doc), "utf-8")
    again = FindingStore(KEY)
    assert len(again.decisions) == 1 and "1 of the 2 decisions" in again.message
    assert json.loads(path.with_name(path.name + ".damaged-1").read_text("utf-8")) == doc


@pytest.mark.parametrize(
    "change, words",
    [({"version": VERSION + 1}, "newer MedView"), ({"series_key": "another"}, "another series")],
)
def test_foreign_files_are_left_alone_and_never_overwritten(change, words):
    path = findings_path(KEY)
    path.parent.mkdir(parents=True)
    text = json.dumps(
        {"format": FORMAT, "version": VERSION, "series_key": KEY, "decisions": [], **change}
    )
    path.write_text(text, "utf-8")
    store = FindingStore(KEY)
    assert words in store.message and "not saved" in store.message
    store.decide(finding(1), "accepted")  # kept in memory only
    assert store.apply([finding(1)])[0].decision == "accepted"
    assert path.read_text("utf-8") == text


def test_a_failed_save_gives_one_sentence_and_keeps_the_decision(monkeypatch):
    def full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(series_files, "atomic_write_text", full)
    store = FindingStore(KEY)
    store.decide(finding(1), "accepted")
    assert "could not be saved" in store.message and "No space left" in store.message
    assert store.apply([finding(1)])[0].decision == "accepted"


def test_without_a_series_key_decisions_stay_in_memory(data_dir):
    store = FindingStore("")
    store.decide(finding(1), "rejected")
    assert store.apply([finding(1)])[0].decision == "rejected"
    assert not (data_dir / "findings").exists()


def test_odd_series_keys_stay_inside_the_store(data_dir):
    store = FindingStore("../../etc/passwd")
    store.decide(finding(1), "accepted")
    assert store.file.path.parent == data_dir / "findings" and store.file.path.is_file()


def test_the_store_needs_no_disk_and_decides_about_its_file_itself():
    """The viewer's store on a file in memory: its decisions go to the file given, a damaged
    file is kept aside (moved) and a foreign one left alone with nothing written over it."""
    kept = MemoryStoreFile()
    store = InMemory(KEY, kept, "dr. who")
    store.decide(finding(1), "accepted")
    assert kept.doc["decisions"][0]["by"] == "dr. who" and kept.doc["series_key"] == KEY
    assert InMemory(KEY, kept).apply([finding(1)])[0].decision == "accepted"

    damaged = MemoryStoreFile({"x": 1}, StoreFileProblem("it is not valid JSON", True))
    assert InMemory(KEY, damaged).decisions == [] and damaged.aside == [({"x": 1}, True)]
    newer = MemoryStoreFile({"x": 1}, StoreFileProblem("it was saved by a newer MedView", False))
    left = InMemory(KEY, newer)
    left.decide(finding(1), "rejected")
    assert "left as it is" in left.message and newer.writes == 0 and newer.aside == []

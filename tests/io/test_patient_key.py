"""The patient key is salted per installation: the salt is made once in the data folder,
readable by its owner only, and the key of a numeric record number is no longer the plain
SHA-256 anyone can tabulate. Label maps saved with the old unsalted key stay readable, and
training counts a patient's old and new label maps as one patient."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from medview.ai.training.data import find_studies
from medview.core.errors import InvalidInputError
from medview.core.labels import LabelMap
from medview.io import saved
from medview.io.dicom.index import scan
from medview.io.labels.catalog import done_studies
from medview.io.labels.source import LabelSource
from medview.io.labels.store import DONE, LabelStore
from medview.io.patient_key import current_key, installation_salt, legacy_key, patient_key
from tests.dicom_factory import write_ct_series


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _unsalted(patient_id: str) -> str:
    return hashlib.sha256(patient_id.encode()).hexdigest()[:16]


def test_the_salt_is_made_once_and_only_its_owner_reads_it(data_dir: Path) -> None:
    assert not saved.patient_salt_file().exists()
    key = patient_key("00123456")
    salt_file = saved.patient_salt_file()
    assert salt_file.parent == data_dir
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert len(salt_file.read_text().strip()) == 64
    assert patient_key("00123456") == key and installation_salt() == installation_salt()
    assert key != _unsalted("00123456") and len(key) == 16
    assert patient_key("") == ""


def test_each_installation_has_its_own_keys(tmp_path: Path, monkeypatch) -> None:
    first = patient_key("00123456")
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "other"))
    assert patient_key("00123456") != first


def test_a_damaged_salt_is_one_sentence(data_dir: Path) -> None:
    data_dir.mkdir()
    saved.patient_salt_file().write_text("not hex\n")
    with pytest.raises(
        InvalidInputError,
        match=r"patient_salt: is not a MedView salt \(64 hex "
        r"digits\); restore it from a backup",
    ):
        patient_key("00123456")


def test_a_label_source_carries_the_salted_key(tmp_path: Path) -> None:
    w = write_ct_series(tmp_path / "ct", n=3, extra={"PatientID": "00123456"})
    (series,) = scan([w.paths[0].parent]).series
    src = LabelSource.from_series(series)
    assert src.patient_key == patient_key("00123456") != legacy_key("00123456")
    assert legacy_key("00123456") == _unsalted("00123456")


def _labelled(folder: Path, patient_id: str, legacy: bool, uid: str) -> str:
    """A series labelled and marked done in the workspace; `legacy`: saved as MedView did
    before the salt, with the unsalted key."""
    w = write_ct_series(
        folder, n=4, rows=16, cols=16, series_uid=uid, extra={"PatientID": patient_id}
    )
    (series,) = scan([w.paths[0].parent]).series
    src = LabelSource.from_series(series)
    if legacy:
        src = LabelSource.from_dict({**src.to_dict(), "patient_key": legacy_key(patient_id)})
    store = LabelStore(series.key)
    store.start(src)
    lm = LabelMap.empty((4, 16, 16), series.key)
    lm.add_segment("liver lesion")
    lm.array[1:3, 4:8, 4:8] = 1
    store.save(lm, clean=True)
    store.set_status(DONE, "reader")
    return series.key


def test_old_label_maps_stay_and_count_as_the_same_patient(tmp_path: Path) -> None:
    old = _labelled(tmp_path / "old", "00123456", True, "1.2.826.0.1.1")
    new = _labelled(tmp_path / "new", "00123456", False, "1.2.826.0.1.2")
    other = _labelled(tmp_path / "other", "00999999", True, "1.2.826.0.1.3")
    stored = {d.series_key: d.source.patient_key for d in done_studies()}
    assert stored[old] == legacy_key("00123456")  # read as saved, nothing vanished
    assert stored[new] == patient_key("00123456")
    studies = {s.series_key: s for s in find_studies("workspace")}
    assert set(studies) == {old, new, other}
    assert studies[old].patient == studies[new].patient == patient_key("00123456")
    assert studies[other].patient == patient_key("00999999")


def test_a_legacy_key_whose_images_are_gone_is_kept(tmp_path: Path) -> None:
    assert current_key("abc", (str(tmp_path / "gone.dcm"),)) == "abc"
    assert current_key("", ()) == ""
    w = write_ct_series(tmp_path / "ct", n=2, extra={"PatientID": "77"})
    salted = patient_key("77")
    assert current_key(salted, (str(w.paths[0]),)) == salted  # already salted: as it is
    assert current_key(legacy_key("77"), (str(tmp_path / "gone.dcm"), str(w.paths[0]))) == salted

"""Hanging protocol rules, the reader's file and its bad forms."""

import json

import pytest

from medview.core.volume import VolumeMetadata
from medview.io.series_files import JsonStoreFile
from medview.viewer import protocols as hp

HEAD = '{"format": "medview-hanging-protocols", "version": 1, '


def md(modality="CT", study="", series=""):
    return VolumeMetadata(modality=modality, study_description=study, series_description=series)


def test_defaults_chest_lung_window_abdomen_window():
    chest = hp.choose([], md(series="Chest 1 mm"))
    assert (chest.name, chest.layout, chest.plane, chest.window) == (
        "CT chest",
        "1x3",
        "axial",
        "Lung",
    )
    assert hp.choose([], md(study="ABDOMEN routine")).window == "Abdomen"
    assert hp.choose([], md("MR", series="Chest")) is None
    assert hp.choose([], md(series="Knee")) is None


def test_more_specific_and_own_protocols_win():
    own = hp.HangingProtocol("CT chest", "CT", "chest", layout="2x2", window="Mediastinum")
    lung = hp.HangingProtocol("CT chest lung", "CT", "chest", "lung", layout="1")
    assert hp.choose([own], md(series="Chest 1 mm")) is own  # the reader's over the default
    assert hp.choose([own, lung], md(series="Chest lung 1 mm")) is lung
    assert hp.choose([own, lung], md(series="Chest soft 1 mm")) is own


def test_save_then_load_is_the_same(tmp_path):
    path = JsonStoreFile(tmp_path / "p" / "protocols.json")
    p = hp.HangingProtocol(
        "CT chest",
        "CT",
        "chest",
        layout="1",
        plane="coronal",
        window="Bone",
        tool="ruler",
        panels=("Measure", "AI"),
        slab_mode="MIP",
        slab_mm=20.0,
    )
    kept = hp.save(path, [], p)
    again = hp.save(path, kept, hp.HangingProtocol("CT chest", "CT", "chest", layout="2x2"))
    assert len(again) == 1 and again[0].layout == "2x2"  # same name: replaced
    hp.save(path, again, p)
    assert hp.load(path) == [p]
    assert [f.name for f in (tmp_path / "p").iterdir()] == ["protocols.json"]  # no leftovers


@pytest.mark.parametrize(
    "text, words",
    [
        ("{not json", "it is not valid JSON"),
        (HEAD + '"protocols": [{"name": "x", "layout": "5x5"}]}', "layout must be one of"),
        (HEAD + '"protocols": [{"name": "x", "window": "Disco"}]}', "is not a preset"),
        (HEAD + '"protocols": 3}', "not a list of hanging protocols"),
        ("[]", "it is not a MedView hanging protocols file"),
        ('{"format": "medview-hanging-protocols", "version": 9}', "newer MedView"),
    ],
)
def test_bad_files_are_one_sentence_naming_the_file(tmp_path, text, words):
    path = tmp_path / "protocols.json"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        hp.load(JsonStoreFile(path))
    msg = str(info.value)
    assert msg.startswith("protocols.json") and words in msg and "\n" not in msg


def test_missing_file_is_no_protocols(tmp_path):
    assert hp.load(JsonStoreFile(tmp_path / "none.json")) == []


def test_saving_a_bad_protocol_is_refused(tmp_path):
    with pytest.raises(ValueError, match="plane must be"):
        hp.save(JsonStoreFile(tmp_path / "p.json"), [], hp.HangingProtocol("x", plane="oblique"))
    assert not (tmp_path / "p.json").exists()


def test_protocol_name_offers_the_region():
    assert hp.protocol_name(md(study="Synthetic demo CT chest and abdomen")) == "CT chest"
    assert hp.protocol_name(md("MR", series="T2 FLAIR")) == "MR T2 FLAIR"
    assert json.dumps(hp.body_part_of("CT chest", md(series="chest"))) == '"chest"'

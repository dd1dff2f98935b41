"""`medview models` as a user meets it: one line per version with its validation numbers,
--json for scripts, activate NAME:VERSION, import FILE --card, and one-line errors."""

from __future__ import annotations

import json

import pytest

from medview.ai.models import registry
from medview.cli import main
from tests.ai.tiny_models import card_dict, export_onnx, tiny_unet

METRICS = {
    "n_studies": 10,
    "dice": 0.8312,
    "lesion_sensitivity_6mm": 0.95,
    "false_positives_per_study": 0.4,
    "seeds": [1001, 1010],
    "note": "demo seeds",
}


@pytest.fixture
def models(tmp_path, monkeypatch):
    bundled, data = tmp_path / "bundled", tmp_path / "data"
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: bundled)
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(data))
    for root, name, version, extra in (
        (bundled, "lesion-seg", "1.0", {"validation": METRICS}),
        (
            bundled,
            "slice-classifier",
            "1.0",
            {"task": "classification", "validation": {"auc": 0.97, "n": 10}},
        ),
        (data / "models", "lesion-seg", "1.1", {"parent_version": "1.0"}),
    ):
        folder = root / name / version
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_text(json.dumps(card_dict(name, version, **extra)))
    return tmp_path


def run(capsys, tmp_path, *args):
    code = main(["--log-file", str(tmp_path / "log.txt"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_line_per_version_with_its_metrics(models, capsys):
    code, out, err = run(capsys, models, "models")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "lesion-seg:1.0        segmentation    bundled  active  dice 0.831, "
        "lesion_sensitivity_6mm 0.95, false_positives_per_study 0.4",
        "lesion-seg:1.1        segmentation    user             no validation results",
        "slice-classifier:1.0  classification  bundled  active  auc 0.97",
    ]


def test_json_carries_every_version_and_the_full_validation(models, capsys):
    code, out, _ = run(capsys, models, "models", "--json")
    data = json.loads(out)
    assert code == 0 and data["problems"] == []
    first = data["models"][0]
    assert (first["ref"], first["source"], first["active"]) == ("lesion-seg:1.0", "bundled", True)
    assert first["validation"] == METRICS and first["labels"] == ["lung nodule", "liver lesion"]
    assert first["main_metrics"] == {
        "dice": 0.8312,
        "lesion_sensitivity_6mm": 0.95,
        "false_positives_per_study": 0.4,
    }
    assert data["models"][1]["parent_version"] == "1.0"


def test_activate_then_list(models, capsys):
    code, out, _ = run(capsys, models, "models", "activate", "lesion-seg:1.1")
    assert code == 0
    assert out == "lesion-seg:1.1 now runs for lesion-seg and is the default segmentation model\n"
    _, out, _ = run(capsys, models, "models")
    assert [line.split()[0] for line in out.splitlines() if " active " in line] == [
        "lesion-seg:1.1",
        "slice-classifier:1.0",
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["lesion-seg"],
            2,
            "medview: lesion-seg: name the version too, NAME:VERSION (see medview models)\n",
        ),
        (
            ["lesion-seg:3"],
            1,
            "medview: model 'lesion-seg' has no version 3 (versions: 1.0, 1.1)\n",
        ),
        (
            ["ghost:1"],
            1,
            "medview: no model named 'ghost' is installed (installed: lesion-seg, "
            "slice-classifier); see medview models\n",
        ),
    ],
)
def test_activate_errors_are_one_line(models, capsys, args, code, message):
    assert run(capsys, models, "models", "activate", *args)[::2] == (code, message)


def test_a_damaged_card_is_reported_beside_the_rest(models, capsys):
    broken = models / "data" / "models" / "lesion-seg" / "2.0"
    broken.mkdir()
    (broken / "metadata.json").write_text("[]")
    code, out, err = run(capsys, models, "models")
    assert code == 0 and len(out.splitlines()) == 3
    assert err == f"medview: {broken}/metadata.json: is not a JSON object\n"


def test_import_from_the_command_line(models, capsys):
    model = export_onnx(tiny_unet(), models / "mine.onnx")
    card = models / "card.json"
    card.write_text(json.dumps(card_dict("lesion-seg", "2.0", architecture="onnx")))
    code, out, err = run(capsys, models, "models", "import", str(model), "--card", str(card))
    assert (code, err) == (0, "")
    assert out == f"imported lesion-seg:2.0 into {models}/data/models/lesion-seg/2.0\n"
    code, _, err = run(
        capsys, models, "models", "import", str(model), "--card", str(card), "--version", "1.1"
    )
    assert code == 1
    assert err == (
        f"medview: {model}: cannot be imported as lesion-seg:1.1: that version "
        f"exists, and versions are never overwritten; choose a new version "
        f"number\n"
    )


def test_no_models(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "none")
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path))
    assert run(capsys, tmp_path, "models") == (0, "no models installed\n", "")


def test_development_numbers_are_labelled_in_the_listing(models, capsys):
    """A card's numbers from seeds that shaped the model are shown on a line of their own
    that says so, never as the version's validation."""
    path = models / "bundled" / "lesion-seg" / "1.0" / "metadata.json"
    card = json.loads(path.read_text())
    card["validation"]["development"] = {
        "note": "Development numbers: ...",
        "seeds": list(range(1001, 1011)),
        "dice": 0.9,
    }
    path.write_text(json.dumps(card))
    code, out, _ = run(capsys, models, "models")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("lesion-seg:1.0") and "dice 0.831" in lines[0]
    assert lines[1] == " " * 22 + (
        "Development numbers (not held out; demo seeds 1001-1010): dice 0.9"
    )
    code, out, _ = run(capsys, models, "models", "--json")
    assert json.loads(out)["models"][0]["development_metrics"] == {"dice": 0.9}

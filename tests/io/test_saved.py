"""Where each thing the reader saves lives: one module (io.saved) says it, the layout is the
one earlier MedView versions wrote (so a reader's labels, measurements, decisions, models,
runs and settings are found where they are), and every layer asks it."""

import ast
import json
import re
import time
from pathlib import Path

import pytest

from medview.ai.models import registry
from medview.ai.training import runs
from medview.commands.demo import default_demo_dir
from medview.io import saved, series_files
from medview.io.labels.store import LabelStore

PACKAGE = Path(__file__).resolve().parents[2] / "medview"
KEY = "1.2.840.113619.2.55"


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_the_layout_is_the_one_earlier_versions_wrote(data):
    """The paths as MedView wrote them before io.saved existed, spelled out by hand."""
    assert saved.root() == data
    assert saved.labels_dir() == data / "labels"
    assert LabelStore(KEY).folder == data / "labels" / KEY
    assert saved.measurements_file(KEY) == data / "measurements" / f"{KEY}.json"
    assert series_files.measurements_file(KEY).path == data / "measurements" / f"{KEY}.json"
    assert saved.findings_file(KEY) == data / "findings" / f"{KEY}.json"
    assert series_files.findings_file(KEY).path == data / "findings" / f"{KEY}.json"
    assert saved.models_dir() == registry.user_models_dir() == data / "models"
    assert saved.active_models_file() == data / "models" / "active.json"
    assert saved.training_dir() == data / "training"
    assert saved.training_cache_dir() == data / "training" / "cache"
    assert saved.replay_dir() == data / "training" / "replay"
    assert saved.settings_file() == data / "settings.ini"
    assert saved.pacs_dir() == data / "pacs"
    assert default_demo_dir(7, "B") == saved.demo_dir(7, "B") == data / "demo" / "seed7-siteB"
    before = time.strftime("%Y%m%d-%H%M%S")
    run = saved.new_run_dir("lesion-seg:1.2")
    assert run.parent == data / "training"
    assert re.fullmatch(r"lesion-seg-1\.2-\d{8}-\d{6}", run.name) and run.name[-15:] >= before


def test_odd_series_keys_stay_inside_their_folder(data):
    for path in (
        saved.measurements_file("../../etc/passwd"),
        saved.findings_file("../../etc/passwd"),
    ):
        assert path.resolve().parent.parent == data.resolve()


def test_the_saved_things_are_found_where_an_earlier_version_left_them(data):
    """Files put where the old code wrote them are read by the new: active models, a run."""
    (data / "models").mkdir(parents=True)
    (data / "models" / "active.json").write_text('{"tiny": "1.0"}', "utf-8")
    assert saved.active_models_file().read_text("utf-8") == '{"tiny": "1.0"}'
    run = data / "training" / "tiny-1.0-20260101-120000"
    run.mkdir(parents=True)
    (run / runs.CHECKPOINT_FILE).write_bytes(b"")
    (run / runs.RUN_FILE).write_text(
        json.dumps({"format": runs.FORMAT, "status": "stopped"}), "utf-8"
    )
    (run / "job.json").write_text('{"data": "d", "base": "tiny:1.0"}', "utf-8")
    assert [r.folder for r in runs.unfinished_runs()] == [run]


def _calls_data_dir(path: Path) -> bool:
    tree = ast.parse(path.read_text("utf-8"))
    return any(
        (isinstance(node, ast.Name) and node.id == "data_dir")
        or (isinstance(node, ast.Attribute) and node.attr == "data_dir")
        or (isinstance(node, ast.alias) and node.name == "data_dir")
        for node in ast.walk(tree)
    )


def test_only_io_saved_joins_paths_onto_the_data_folder():
    """io.workspace defines data_dir(); io.saved alone uses it and everything else asks
    io.saved, so the layout cannot drift apart again (it was computed in six places in four
    layers)."""
    users = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if _calls_data_dir(p))
    assert users == ["io/saved.py"]

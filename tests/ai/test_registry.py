"""The registry: bundled and user models listed from their cards alone (torch never
imported), the active version chosen and kept, versions never overwritten, and one damaged
folder reported without hiding the others."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medview.ai.models import registry
from medview.core.errors import InvalidInputError
from tests.ai.tiny_models import card_dict


def put(root: Path, name: str, version: str, **changes) -> Path:
    folder = root / name / version
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(card_dict(name, version, **changes)))
    return folder


@pytest.fixture
def roots(tmp_path, monkeypatch):
    bundled, data = tmp_path / "bundled", tmp_path / "data"
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: bundled)
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(data))
    put(bundled, "seg", "1.0", validation={"dice": 0.8})
    put(bundled, "cls", "1", task="classification")
    put(data / "models", "seg", "1.2")
    put(data / "models", "seg", "1.10")
    return bundled, data / "models"


def refs(entries):
    return [(e.ref, e.bundled, e.active) for e in entries]


def test_bundled_and_user_models_listed_newest_bundled_active(roots):
    """Until the reader activates one, the newest bundled version runs: a fine-tune (user
    version) never starts running because it is newer."""
    assert refs(registry.list_models()) == [
        ("cls:1", True, True),
        ("seg:1.0", True, True),
        ("seg:1.2", False, False),
        ("seg:1.10", False, False),
    ]
    assert registry.resolve("seg").ref == "seg:1.0"
    registry.activate("seg", "1.10")
    assert registry.resolve("seg").ref == "seg:1.10"
    assert registry.resolve("seg:1.2").folder == roots[1] / "seg" / "1.2"
    assert registry.resolve("cls:1.0").ref == "cls:1"  # '1' and '1.0' are one version


def test_a_damaged_folder_is_a_problem_not_a_failure(roots):
    user = roots[1]
    (user / "seg" / "2").mkdir()
    (user / "seg" / "2" / "metadata.json").write_text("{broken")
    put(user, "other", "1", task="detection")
    put(user, "seg", "1.0")  # repeats the bundled version
    (user / "seg" / "3").mkdir()
    (user / "seg" / "3" / "metadata.json").write_text(json.dumps(card_dict("wrong", "3")))
    (user / ".import-x1").mkdir()  # an import in progress is not listed
    listing = registry.scan_models()
    assert [e.ref for e in listing.models] == ["cls:1", "seg:1.0", "seg:1.2", "seg:1.10"]
    assert sorted(listing.problems) == sorted(
        [
            f"{user}/other/1/metadata.json: has task 'detection'; expected one of "
            f"segmentation, classification",
            f"{user}/seg/1.0: repeats the bundled seg:1.0; skipped",
            f"{user}/seg/2/metadata.json: is not valid JSON (line 1: Expecting property name "
            f"enclosed in double quotes)",
            f"{user}/seg/3: holds the card of wrong:3, which belongs in wrong/3; skipped",
        ]
    )


def test_activate_is_kept_and_moves_the_active_mark(roots):
    entry = registry.activate("seg", "1.0")
    assert entry.active and entry.bundled
    saved = json.loads((roots[1] / "active.json").read_text())
    assert saved == {"models": {"seg": "1.0"}, "tasks": {"segmentation": "seg"}}
    assert registry.resolve("seg").ref == "seg:1.0"
    assert [e.ref for e in registry.list_models() if e.active] == ["cls:1", "seg:1.0"]
    assert registry.active_model("segmentation").ref == "seg:1.0"
    assert registry.active_model("classification").ref == "cls:1"
    assert not list(roots[1].glob(".active.json*"))  # atomic write left no temp file


def test_active_file_problems_fall_back_to_the_newest_bundled(roots):
    (roots[1] / "active.json").write_text(json.dumps({"models": {"seg": "9"}}))
    listing = registry.scan_models()
    assert [e.ref for e in listing.models if e.active] == ["cls:1", "seg:1.0"]
    assert listing.problems == [
        f"{roots[1]}/active.json: names seg:9, which is not installed; seg:1.0 runs"
    ]
    (roots[1] / "active.json").write_text("{nope")  # a crash, a hand edit
    listing = registry.scan_models()
    assert "active.json: cannot be read" in listing.problems[0]
    assert "newest bundled" in listing.problems[0]
    assert registry.resolve("seg").ref == "seg:1.0"  # not the unactivated fine-tune 1.10


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope", "no model named 'nope' is installed (installed: cls, seg); see medview models"),
        ("seg:7", "model 'seg' has no version 7 (versions: 1.0, 1.2, 1.10)"),
        (
            "bad name",
            "'bad name' is not a model reference; write NAME or NAME:VERSION, e.g. lesion-seg:1.0",
        ),
        ("seg:latest", "'seg:latest' is not a model reference"),
    ],
)
def test_unknown_references_are_refused_in_one_sentence(roots, ref, message):
    with pytest.raises(InvalidInputError) as err:
        registry.resolve(ref)
    assert str(err.value).startswith(message)
    with pytest.raises(InvalidInputError):
        registry.activate(*[*ref.split(":"), "1"][:2])


def test_versions_are_never_overwritten(roots):
    bundled, user = roots
    folder = registry.new_version_folder("seg", "2.0")
    assert folder == user / "seg" / "2.0" and folder.is_dir()
    for version, where in (("2", user / "seg"), ("1.10", user / "seg"), ("1", bundled / "seg")):
        with pytest.raises(
            InvalidInputError,
            match=f"already holds version {version} of seg; versions are never overwritten",
        ) as err:
            registry.new_version_folder("seg", version)
        assert str(err.value).startswith(str(where))
    with pytest.raises(InvalidInputError, match="not a model reference"):
        registry.new_version_folder("../evil", "1")


def test_the_real_bundled_models_have_valid_cards(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path))
    assert registry.bundled_models_dir() == (
        Path(registry.__file__).parents[2] / "resources" / "models"
    )
    listing = registry.scan_models()
    assert listing.problems == []
    assert all(e.bundled for e in listing.models)


TORCH_FREE = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'monai', 'onnxruntime', 'safetensors', 'numpy'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from medview.ai.models import registry
print(json.dumps([e.ref for e in registry.list_models()]))
from medview.cli import main
main(['--log-file', sys.argv[1], 'models'])
"""


def test_listing_models_never_imports_torch(tmp_path):
    put(tmp_path / "data" / "models", "mine", "1")
    env = {**__import__("os").environ, "MEDVIEW_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(tmp_path / "log")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "mine:1" in json.loads(r.stdout.splitlines()[0])
    assert re.search(r"^mine:1 +segmentation", r.stdout, re.M)  # columns fit the longest

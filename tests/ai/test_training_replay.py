"""Rehearsal: a fine-tune of a bundled model (or of a version descending from one) mixes in
demo studies of the bundled model's own training data; other models get none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medview.ai.models import registry
from medview.ai.training.replay import REPLAY_SEEDS, bundled_ancestor, replay_studies
from tests.ai.train_fixtures import install_base, make_study


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_lineage_reaches_the_bundled_model_or_nothing(data_dir: Path) -> None:
    bundled = registry.resolve("lesion-seg:1.0")
    card = json.loads((bundled.folder / "metadata.json").read_text())
    for version, parent in (("1.0.1", "1.0"), ("1.0.2", "1.0.1")):
        folder = data_dir / "models" / "lesion-seg" / version
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_text(
            json.dumps({**card, "version": version, "parent_version": parent})
        )
    found = bundled_ancestor(registry.resolve("lesion-seg:1.0.2"))
    assert found is not None and found.ref == "lesion-seg:1.0" and found.bundled
    install_base(data_dir)
    assert bundled_ancestor(registry.resolve("tiny")) is None


def test_replay_studies_are_generated_once(tmp_path: Path, monkeypatch) -> None:
    made = []

    def fake_demo(folder: Path, seed: int, site: str) -> None:
        made.append((seed, site))
        make_study(Path(folder), seed)

    monkeypatch.setattr("medview.demo.generate_demo_study", fake_demo)
    first = replay_studies(2, tmp_path / "replay")
    again = replay_studies(2, tmp_path / "replay")
    assert made == [(REPLAY_SEEDS[0], "a"), (REPLAY_SEEDS[1], "a")]
    assert [s.key for s in first] == [s.key for s in again] and len(first) == 2

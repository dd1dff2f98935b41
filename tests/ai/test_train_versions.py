"""A fine-tuned version of a model with a second stage keeps that stage: the new folder holds
the same false-positive classifier its copied card names, so it loads and lists findings by
the same rules; the parent's folder is left as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from medview.ai.models.cards import load_card
from medview.ai.runtime.loading import load_model
from medview.ai.training import versions as tv
from tests.ai.seg_models import BRIGHT_NAME, bright_unet, write_bright_model
from tests.ai.test_fp_reduction import write_fp_model


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)
    return tmp_path / "data"


def _digest(folder: Path) -> str:
    return hashlib.sha256(
        b"".join(p.name.encode() + p.read_bytes() for p in sorted(folder.iterdir()))
    ).hexdigest()


def test_new_version_carries_the_parents_false_positive_stage(data_dir: Path) -> None:
    parent_dir = write_fp_model(data_dir / "models" / BRIGHT_NAME / "1.0")
    before = _digest(parent_dir)
    parent = load_card(parent_dir)
    folder = tv.write_version(parent, "1.0.1", bright_unet(), "test run", {"dice": 0.5})
    card = load_card(folder)  # refused if the classifier were missing or different
    assert card.postprocess == parent.postprocess and card.parent_version == "1.0"
    assert (folder / "fp.json").read_bytes() == (parent_dir / "fp.json").read_bytes()
    assert load_model(folder, "cpu", reuse=False).card.version == "1.0.1"
    assert _digest(parent_dir) == before


def test_a_version_without_a_second_stage_copies_nothing_more(data_dir: Path) -> None:
    parent = load_card(write_bright_model(data_dir / "models" / BRIGHT_NAME / "1.0"))
    folder = tv.write_version(parent, "1.0.1", bright_unet(), "test run", {"dice": 0.5})
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "weights.safetensors"]


def test_studies_from_a_pacs_are_on_the_card_and_not_inherited(data_dir: Path) -> None:
    """The pacs.json net.training_source writes beside fetched studies (node, query, each
    study's hashes) goes on the new card; its own fine-tune on local studies drops it."""
    import json

    parent = load_card(write_bright_model(data_dir / "models" / BRIGHT_NAME / "1.0"))
    studies = data_dir / "pacs-studies"
    studies.mkdir(parents=True)
    record = {
        "node": "dicom://ORTHANC@127.0.0.1:4343",
        "query": "pacs://orthanc",
        "studies": {
            "ab12": {
                "seg_sha256": "0" * 64,
                "images_sha256": "1" * 64,
                "segments": {"1": "lung nodule"},
            }
        },
    }
    (studies / "pacs.json").write_text(json.dumps(record), encoding="utf-8")
    folder = tv.write_version(
        parent, "1.0.1", bright_unet(), "test run", {"dice": 0.5}, data=studies
    )
    child = load_card(folder)
    assert child.provenance["training_source"] == record
    local = data_dir / "local-studies"
    local.mkdir()
    grandchild = load_card(
        tv.write_version(child, "1.0.2", bright_unet(), "test run", {"dice": 0.5}, data=local)
    )
    assert "training_source" not in grandchild.provenance

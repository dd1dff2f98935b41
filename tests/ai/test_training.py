"""The fine-tuning engine on tiny studies: a run makes a new version that loads and leaves the
parent and the active choice alone; stop and resume repeat the uninterrupted run exactly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from medview.ai.models import registry
from medview.ai.models.cards import load_card
from medview.ai.runtime.loading import load_model
from medview.ai.training.engine import Job, Settings, Trainer
from medview.core.errors import InvalidInputError
from tests.ai.train_fixtures import install_base, make_studies


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)


def tiny_job(tmp_path: Path, epochs: int = 2, work: str = "work", **settings: object) -> Job:
    if not (tmp_path / "studies").exists():
        make_studies(tmp_path / "studies", 4)
    if not (tmp_path / "data" / "models" / "tiny").exists():
        install_base(tmp_path / "data")
    # one held-out split unless a test asks for folds: cross-validation (the default, tested
    # in test_training_crossval) trains once per fold, which these tests do not need
    settings = {"folds": 1, **settings}
    s = Settings(
        epochs=epochs,
        batch_size=4,
        patch_size=32,
        patches_per_study=8,
        threads=1,
        patience=50,
        **settings,
    )
    return Job(data=str(tmp_path / "studies"), base="tiny", settings=s, work=str(tmp_path / work))


def _files_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def run(
    job: Job, stop_after_steps: int | None = None, resume: bool = False
) -> tuple[dict | None, list[dict]]:
    events: list[dict] = []
    calls = {"n": 0}

    def should_stop() -> bool:  # counts the training steps (asked between others too)
        if not any(e["event"] == "start" for e in events):
            return False
        calls["n"] += 1
        return stop_after_steps is not None and calls["n"] > stop_after_steps

    return Trainer(job, events.append, should_stop, resume=resume).run(), events


def test_fine_tune_writes_a_new_version_that_loads(tmp_path: Path) -> None:
    job = tiny_job(tmp_path)
    parent = tmp_path / "data" / "models" / "tiny" / "1.0"
    before = _files_digest(parent)
    done, events = run(job)
    assert done is not None and done["version"] == "tiny:1.0.1"
    kinds = [e["event"] for e in events]
    assert kinds.count("epoch") == 3 and kinds.count("checkpoint") == 2  # epoch 0 = parent
    card = load_card(done["folder"])
    assert card.parent_version == "1.0" and card.version == "1.0.1"
    ft = card.validation["fine_tune"]
    assert ft["parent"] == "tiny:1.0" and len(ft["train_studies"]) == 3
    assert len(ft["val_studies"]) == 1 and len(ft["val_hash"]) == 16
    for metrics in (card.validation, ft["parent_metrics"]):
        for key in (
            "dice_lung_nodule",
            "dice_liver_lesion",
            "sensitivity_ge_6mm",
            "false_positives_per_study",
        ):
            assert key in metrics
    assert "study-0" not in card.to_json()  # studies by hash only
    model = load_model(done["folder"], "cpu", reuse=False)
    assert model.predict(torch.rand(1, 3, 48, 48).numpy()).shape == (1, 3, 48, 48)
    assert _files_digest(parent) == before
    assert registry.resolve("tiny").card.version == "1.0"  # not activated behind our back
    # a second run numbers on
    done2, _ = run(tiny_job(tmp_path, epochs=1, work="work2"))
    assert done2["version"] == "tiny:1.0.2"


def test_stop_mid_epoch_then_resume_repeats_the_uninterrupted_run(tmp_path: Path) -> None:
    whole, whole_events = run(tiny_job(tmp_path, work="whole"))
    losses = [e["loss"] for e in whole_events if e["event"] == "epoch"][1:]
    job = tiny_job(tmp_path, work="stopped")
    parent = tmp_path / "data" / "models" / "tiny" / "1.0"
    digest = _files_digest(parent)
    versions = {e.card.version for e in registry.list_models() if e.card.name == "tiny"}
    stopped, events = run(job, stop_after_steps=8)  # 6 steps an epoch: mid epoch 2
    assert stopped is None
    stop = next(e for e in events if e["event"] == "stopped")
    assert (stop["epoch"], stop["step"]) == (1, 2)
    assert "--resume" in stop["resume"]
    assert {e.card.version for e in registry.list_models() if e.card.name == "tiny"} == versions
    assert registry.resolve("tiny").card.version == "1.0"  # pinned by the first run
    assert _files_digest(parent) == digest
    resumed, events = run(Job.load(Path(job.work) / "job.json"), resume=True)
    assert resumed is not None
    again = [e["loss"] for e in events if e["event"] == "epoch"]
    assert again == losses[1:]
    assert resumed["metrics"]["dice_mean"] == whole["metrics"]["dice_mean"]
    # every epoch's per-label Dice, also those before the stop (the checkpoint keeps them):
    # the card's history, and the panel's curves after a resume, draw each label's line
    card = registry.resolve(resumed["version"]).card
    history = card.validation["fine_tune"]["history"]
    assert [h["epoch"] for h in history] == list(range(job.settings.epochs + 1))
    names = {lab.name for lab in card.labels}
    assert all(set(h["val_dice_per_label"]) == names for h in history), history


def test_a_resume_after_relabelling_says_so_and_a_lost_study_is_named(tmp_path: Path) -> None:
    """The labels a run validated on were not remembered: a resume after a relabel went on
    silently, its best epoch chosen by comparing Dice across old and new labels; a study gone
    from the data was named by its hash key alone."""
    import numpy as np

    from medview.core.volume import Volume
    from medview.io.image_files import read_image, write_volume

    job = tiny_job(tmp_path, epochs=3, work="relabelled")
    stopped, _ = run(job, stop_after_steps=8)
    assert stopped is None
    saved = Job.load(Path(job.work) / "job.json")
    moved = saved.names[saved.split["val"][0]]
    path = tmp_path / "studies" / moved / "labels.nii.gz"
    labels = read_image(path)
    grown = np.asarray(labels.array).copy()
    grown[np.roll(grown, 1, axis=2) == 1] = 1  # the reader widened a lesion
    write_volume(Volume(grown, labels.affine), path)
    done, events = run(saved, resume=True)
    (warning,) = [e for e in events if e["event"] == "warning"]
    assert (
        f"the labels of 1 study ({moved}) changed since this run began: epochs 0-1 "
        f"were validated on the old labels" in warning["message"]
    )
    fine_tune = registry.resolve(done["version"]).card.validation["fine_tune"]
    assert fine_tune["labels_changed_at_epoch"] == 1
    assert fine_tune["improved_on_quick_validation"] is None
    assert fine_tune["best_epoch"] >= 2  # chosen among the epochs on the new labels
    # a study of the split gone from the data: named, not only by its key
    job2 = tiny_job(tmp_path, epochs=3, work="lost")
    run(job2, stop_after_steps=8)
    saved = Job.load(Path(job2.work) / "job.json")
    gone = saved.names[saved.split["train"][0]]
    (tmp_path / "studies" / gone).rename(tmp_path / f"away-{gone}")
    with pytest.raises(InvalidInputError, match=rf"no longer holds study '{gone}' \(key "):
        run(saved, resume=True)


def test_slice_classifier_trains_through_the_same_engine(tmp_path: Path) -> None:
    from tests.ai.tiny_models import write_folder

    card = {
        "name": "tiny-cls",
        "version": "1.0",
        "task": "classification",
        "modality": "CT",
        "labels": [{"value": 1, "name": "slice with a lesion"}],
        "intensity": {"low": -1000, "high": 400},
        "architecture": "medview.SliceClassifier",
        "architecture_args": {
            "features": [4, 8],
            "embed": 8,
            "hidden": 4,
            "input_size": 16,
            "dropout": 0.0,
        },
        "context_slices": 1,
    }
    from medview.ai.runtime.slice_classifier import SliceClassifier

    torch.manual_seed(0)
    net = SliceClassifier(
        in_channels=1,
        out_channels=2,
        features=[4, 8],
        embed=8,
        hidden=4,
        input_size=16,
        dropout=0.0,
    )
    write_folder(tmp_path / "data" / "models" / "tiny-cls" / "1.0", net, card=card)
    job = tiny_job(tmp_path, epochs=1)
    job.base = "tiny-cls"
    job.mapping = {"1": "slice with a lesion", "2": "slice with a lesion"}
    done, events = run(job)
    assert done["version"] == "tiny-cls:1.0.1"
    assert {"accuracy", "auc"} <= set(done["metrics"])
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [0, 1]


def test_freeze_norm_keeps_the_base_batch_norm_statistics(tmp_path: Path) -> None:
    from medview.ai.models.cards import load_card as card_of
    from tests.ai.tiny_models import UNET_ARGS

    base = tmp_path / "data" / "models" / "tiny" / "1.0"
    job = tiny_job(tmp_path, epochs=1, freeze_norm=True)
    args = {**UNET_ARGS, "norm": "batch"}
    from tests.ai.tiny_models import write_folder

    write_folder(
        base,
        _bn_unet(args),
        card={**json.loads((base / "metadata.json").read_text()), "architecture_args": args},
    )
    done, _ = run(job)
    before = load_model(base, "cpu", reuse=False).module.state_dict()
    after = load_model(done["folder"], "cpu", reuse=False).module.state_dict()
    stats = [k for k in before if k.endswith("running_mean")]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert card_of(done["folder"]).validation["fine_tune"]["settings"]["freeze_norm"]


def _bn_unet(args: dict) -> torch.nn.Module:
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    return UNet(in_channels=3, out_channels=3, **args)

"""What a fine-tune refuses before it spends any time (ai/train_checks): settings no run can
use, a taken version number, a work folder it must not write into, a job file of the wrong
shape, a damaged or planted checkpoint (read with weights only, never run); and a loss that
diverges ends the run with nothing written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from medview.ai.training import engine as training
from medview.ai.training import job as train_job
from medview.ai.training.checkpoint import torch_bytes
from medview.commands.setting_words import sentence
from medview.core.errors import InvalidInputError, SettingError
from tests.ai.test_training import run, tiny_job
from tests.ai.test_training_inputs import _job
from tests.ai.train_fixtures import install_base, make_studies


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)
    install_base(tmp_path / "data")


def test_settings_no_run_can_use_are_refused_before_any_work(tmp_path: Path) -> None:
    """--epochs 0 wrote a copy of the parent as a 'new' version, --batch-size 0 and --lr -1
    ended in internal errors, --batch-size 100000 was killed by the kernel for memory."""
    for change, says in (
        (dict(epochs=0), "epochs 0: train at least 1"),
        (dict(batch_size=0), "batch_size 0: use 1 to"),
        (dict(lr=-1.0), "lr -1: use a learning rate above 0"),
        (dict(lr=float("nan")), "lr nan"),
        (dict(val_fraction=1.5), "val_fraction 1.5: use a fraction above 0"),
        (dict(seed=-1), "seed -1"),
        (dict(threads=-1), "threads -1"),
        (dict(patience=0), "patience 0"),
        (dict(device="gpu"), "one of auto"),
        (dict(epochs="ten"), f"epochs 'ten': takes a value like {train_job.Settings().epochs}"),
        (dict(augment=1), "augment 1: takes a value like True"),
        (dict(batch_size=4096, patch_size=128), "million pixels a step"),
    ):
        with pytest.raises(ValueError, match=says):
            training.Settings(**change).check()
    training.Settings(lr=1, distill=0).check()  # an int is a float
    job = _job(tmp_path, make_studies(tmp_path / "s", 3))
    job.settings.epochs = 0
    events: list[dict] = []
    with pytest.raises(SettingError, match="epochs 0: train at least 1") as err:
        training.Trainer(job, events.append, lambda: False).run()
    assert (err.value.setting, err.value.value, err.value.kind) == ("epochs", 0, "range")
    assert events == [] and not (tmp_path / "data" / "models" / "tiny" / "1.0.1").exists()


def test_a_taken_or_malformed_new_version_is_refused_before_training(tmp_path: Path) -> None:
    job = _job(tmp_path, make_studies(tmp_path / "s", 3))
    for version, says in (
        ("1.0", "--new-version 1.0: tiny already has version 1.0"),
        ("abc", "--new-version abc: write a version number"),
    ):
        job.version = version
        events: list[dict] = []
        with pytest.raises(SettingError) as err:
            training.Trainer(job, events.append, lambda: False).run()
        assert says in sentence(err.value) and err.value.setting == "version"
        assert events == []  # nothing prepared, nothing trained


def test_a_diverging_loss_ends_the_run_with_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--lr 1e12 trained on NaN and wrote a version of NaN weights (and 'NaN' into the
    JSON events): now the run stops before the step, the last checkpoint intact."""
    from medview.ai.training.tasks import SegmentationTask

    real, calls = SegmentationTask.batch_loss, {"n": 0}

    def nan_from_epoch_2(self: SegmentationTask, *args: object) -> torch.Tensor:
        calls["n"] += 1
        loss = real(self, *args)
        return loss * float("nan") if calls["n"] > 7 else loss

    monkeypatch.setattr(SegmentationTask, "batch_loss", nan_from_epoch_2)
    job = tiny_job(tmp_path, epochs=3)
    with pytest.raises(
        SettingError,
        match=r"loss became nan in epoch 2, step 2, so "
        r"training stopped",
    ) as err:
        run(job)
    assert (err.value.setting, err.value.kind) == ("lr", "diverged")
    assert sentence(err.value).endswith(
        f"; start again with a smaller --lr than {job.settings.lr:g}"
    )
    ck = torch.load(Path(job.work) / training.CHECKPOINT, weights_only=True)
    assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not (tmp_path / "data" / "models" / "tiny" / "1.0.1").exists()


class _Planted:
    """A pickle that runs code when loaded without weights_only (it creates a file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return open, (str(self.marker), "w")


def test_a_damaged_or_planted_checkpoint_is_one_sentence_and_never_runs(tmp_path: Path) -> None:
    job = tiny_job(tmp_path, epochs=1)
    run(job)
    ck_path = Path(job.work) / training.CHECKPOINT
    good = ck_path.read_bytes()
    marker = tmp_path / "planted-code-ran"
    planted = torch_bytes({**torch.load(ck_path, weights_only=True), "epoch": _Planted(marker)})
    for bad in (
        good[: len(good) // 2],
        os.urandom(5000),
        b"",
        planted,
        torch_bytes({"a": 1}),
        torch_bytes([1, 2]),
    ):
        ck_path.write_bytes(bad)
        job.settings.epochs = 2
        with pytest.raises(InvalidInputError) as err:
            run(job, resume=True)
        message = str(err.value)
        assert "cannot be read as this run's checkpoint" in message, message
        assert "\n" not in message and "weights_only" not in message
    assert not marker.exists()


def test_the_work_folder_must_be_a_new_empty_or_run_folder(tmp_path: Path) -> None:
    from medview.ai.training.checks import claim_work

    (tmp_path / "a-file").write_text("x")
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "letter.txt").write_text("x")
    for folder, says in (
        (tmp_path / "a-file", "is a file; --out needs a folder"),
        (
            mine,
            r"holds 1 other file\(s\) \(letter.txt\) and is not a "
            r"training work folder",
        ),
        (tmp_path / "data" / "models" / "tiny" / "7.0", "is inside MedView's models folder"),
    ):
        with pytest.raises(SettingError) as err:
            claim_work(folder, resume=False)
        assert err.value.setting == "work" and err.value.kind == "folder"
        assert re.search(says, sentence(err.value)), sentence(err.value)
    assert sorted(p.name for p in mine.iterdir()) == ["letter.txt"]
    assert not (tmp_path / "data" / "models" / "tiny" / "7.0").exists()
    run_folder = tmp_path / "failed-run"
    run_folder.mkdir()
    (run_folder / "run.json").write_text("{}")
    claim_work(run_folder, resume=False)  # a run that failed before its checkpoint
    claim_work(tmp_path / "new" / "work", resume=False)
    assert (tmp_path / "new" / "work").is_dir()


def test_a_job_file_of_the_wrong_shape_is_one_sentence(tmp_path: Path) -> None:
    for text in (
        "[1, 2]",
        '{"data": 5}',
        '{"data": "d"}',
        '{"data": "d", "base": "tiny", "settings": 5}',
        '{"data": "d", "base": "tiny", "mapping": [1]}',
        '{"data": "d", "base": "tiny", "names": "study-01"}',
        '{"data": "d", "base": "tiny", "split": {"train": "abc"}}',  # internal error
        '{"data": "d", "base": "tiny", "split": {"training": ["k"]}}',
    ):
        (tmp_path / "job.json").write_text(text)
        with pytest.raises(InvalidInputError, match=r"job.json: is not a job file: "):
            train_job.Job.load(tmp_path / "job.json")


def test_label_maps_without_a_lesion_on_either_side_are_refused(tmp_path: Path) -> None:
    """Empty label maps everywhere trained and wrote a version with Dice null."""
    from medview.core.volume import Volume
    from medview.io.image_files import read_image, write_volume

    job = _job(tmp_path, make_studies(tmp_path / "s", 4))
    job.mapping = {"1": "ignore", "2": "ignore"}
    with pytest.raises(
        InvalidInputError,
        match=r"none of the 3 training studies has a "
        r"labelled lesion \(after the label mapping\)",
    ):
        run(job)
    job.mapping = {}
    empty = tmp_path / "s" / "study-04" / "labels.nii.gz"
    labels = read_image(empty)
    write_volume(Volume(np.zeros(labels.shape, np.uint8), labels.affine), empty)
    from medview.ai.training.data import find_studies

    keys = {s.name: s.key for s in find_studies(tmp_path / "s")}
    job.split = {
        "train": [keys["study-01"], keys["study-02"], keys["study-03"]],
        "val": [keys["study-04"]],
    }
    with pytest.raises(
        InvalidInputError, match="none of the 1 validation studies has a labelled lesion"
    ):
        run(job)
    assert not (tmp_path / "data" / "models" / "tiny" / "1.0.1").exists()


@pytest.mark.parametrize("at", ["prepare", "mining", "evaluate"])
def test_stop_while_preparing_or_evaluating_ends_at_once(tmp_path: Path, at: str) -> None:
    """Stop was read only between training steps: a first run spent minutes generating,
    caching and mining (and the final evaluation) before it noticed, and the panel killed
    it. Now it ends at the next study; the checkpoint there, if any, resumes the run."""
    job = tiny_job(tmp_path, epochs=1)
    events: list[dict] = []
    asked = lambda: at in [e["event"] for e in events]  # noqa: E731
    assert training.Trainer(job, events.append, asked).run() is None
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "stopped" and kinds.count(at) == 1, kinds
    ck = Path(job.work) / training.CHECKPOINT
    if at != "evaluate":
        assert "start" not in kinds and events[-1]["resume"] is None and not ck.exists()
        return
    assert events[-1]["epoch"] == 1 and "--resume" in events[-1]["resume"]
    assert not (tmp_path / "data" / "models" / "tiny" / "1.0.1").exists()
    done, _ = run(job, resume=True)
    assert done is not None and done["version"] == "tiny:1.0.1"


def test_a_stop_ends_mining_inside_a_study(tmp_path: Path) -> None:
    """Stop was read between studies only: mining (and evaluating) a large study outlasted
    the panel's 10 s grace, and the run was killed. Now it is read between batches, so the
    study under way is left unmined."""
    job = tiny_job(tmp_path, epochs=1)
    events: list[dict] = []
    calls = {"n": 0}

    def asked() -> bool:  # False where the event itself asks, True at the next question
        if not any(e["event"] == "mining" and e.get("index") == 1 for e in events):
            return False
        calls["n"] += 1
        return calls["n"] > 1

    assert training.Trainer(job, events.append, asked).run() is None
    assert events[-1]["event"] == "stopped" and events[-1]["resume"] is None
    assert not list((tmp_path / "data" / "training" / "cache").glob("*/mined-*.npy"))


def test_a_resume_keeps_the_base_it_started_from(tmp_path: Path) -> None:
    """Resumed after another version became the active one, a run named that version its
    parent (and compared with it), though its weights came from the first."""
    job = tiny_job(tmp_path, epochs=1)
    run(job)
    saved = train_job.Job.load(Path(job.work) / train_job.JOB_FILE)
    assert saved.base == "tiny:1.0"  # pinned when the run started
    from medview.ai.models.registry import activate

    install_base(tmp_path / "data", version="2.0")
    activate("tiny", "2.0")  # "tiny" now means 2.0
    job.base, job.settings.epochs = "tiny", 2
    with pytest.raises(SettingError) as err:
        run(job, resume=True)
    assert sentence(err.value).endswith(
        "was trained from tiny:1.0, not tiny:2.0; resume it with --base tiny:1.0"
    )
    saved.settings.epochs = 2
    done, _ = run(saved, resume=True)
    assert done is not None and done["parent"] == "tiny:1.0"


def test_a_full_disk_while_writing_the_version_is_one_sentence_then_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """safetensors' own error (no errno) ended the finished run as an internal error."""
    import safetensors.torch
    from safetensors import SafetensorError

    from medview.core.errors import ResourceLimitError

    def full(*args: object, **kwargs: object) -> None:
        raise SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    job = tiny_job(tmp_path, epochs=1)
    with monkeypatch.context() as m:
        m.setattr(safetensors.torch, "save_file", full)
        with pytest.raises(
            ResourceLimitError,
            match=r"tiny/1\.0\.1: could not be written: "
            r"the disk is full.*--resume",
        ):
            run(job)
    assert not (tmp_path / "data" / "models" / "tiny" / "1.0.1").exists()
    done, _ = run(job, resume=True)
    assert done is not None and done["version"] == "tiny:1.0.1"

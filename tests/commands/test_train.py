"""`medview train` as the panel runs it: a child process printing one JSON object per line;
SIGTERM stops it within seconds and leaves every model version as it was; bad input is one
error event and one line on stderr; under torchrun two gloo processes report the same
events; `medview models` lists the new version with metrics and activates / rolls back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ai.train_fixtures import install_base, make_studies

PROGRESS = ("prepare", "mining", "step", "evaluate")
# 2 cross-validation folds (the default): each fold trains, then the version on all
ARGS = [
    "--base",
    "tiny",
    "--batch-size",
    "4",
    "--patch-size",
    "32",
    "--patches-per-study",
    "8",
    "--threads",
    "1",
    "--device",
    "cpu",
    "--set",
    "folds=2",
]
# a fold: epoch 0 (the parent), 2 epochs each with its checkpoint, the next phase's checkpoint
FOLD = ["start", "epoch", "epoch", "checkpoint", "epoch", "checkpoint", "checkpoint"]


@pytest.fixture
def env(tmp_path: Path) -> dict:
    install_base(tmp_path / "data")
    make_studies(tmp_path / "studies", 4)
    return {**os.environ, "MEDVIEW_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}


def medview(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medview", "--log-file", str(tmp_path / "log.txt"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_train_prints_json_lines_and_models_lists_activates_rolls_back(
    tmp_path: Path, env: dict
) -> None:
    r = medview(
        tmp_path,
        env,
        "train",
        "--data",
        str(tmp_path / "studies"),
        *ARGS,
        "--epochs",
        "2",
        "--out",
        str(tmp_path / "work"),
    )
    assert r.returncode == 0, r.stderr
    got = events(r.stdout)
    assert [e["event"] for e in got if e["event"] not in PROGRESS] == FOLD + FOLD + [
        "start",
        "epoch",
        "checkpoint",
        "epoch",
        "checkpoint",
        "done",
    ]
    assert [e.get("fold") for e in got if e["event"] == "start"] == [1, 2, None]
    epoch = [e for e in got if e["event"] == "epoch"][-1]
    assert {"loss", "val_dice", "seconds", "eta_s", "epochs"} <= set(epoch)
    assert got[-1]["version"] == "tiny:1.0.1"
    listing = medview(tmp_path, env, "models")
    line = next(x for x in listing.stdout.splitlines() if x.startswith("tiny:1.0.1"))
    assert "dice" in line and "active" not in line
    assert "active" in next(x for x in listing.stdout.splitlines() if x.startswith("tiny:1.0 "))
    assert medview(tmp_path, env, "models", "activate", "tiny:1.0.1").returncode == 0
    assert "active" in next(
        x
        for x in medview(tmp_path, env, "models").stdout.splitlines()
        if x.startswith("tiny:1.0.1")
    )
    assert medview(tmp_path, env, "models", "activate", "tiny:1.0").returncode == 0  # back
    assert "active" in next(
        x for x in medview(tmp_path, env, "models").stdout.splitlines() if x.startswith("tiny:1.0 ")
    )


def test_sigterm_stops_within_seconds_and_touches_no_version(tmp_path: Path, env: dict) -> None:
    models = tmp_path / "data" / "models"
    before = sorted(p.relative_to(models) for p in models.rglob("*"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medview",
            "--log-file",
            str(tmp_path / "log.txt"),
            "train",
            "--data",
            str(tmp_path / "studies"),
            *ARGS,
            "--epochs",
            "500",
            "--out",
            str(tmp_path / "work"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "epoch" and seen[-1]["epoch"] >= 2:
            break
    t = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    assert time.perf_counter() - t < 10
    assert proc.returncode == 0
    last = events(rest)[-1]
    assert last["event"] == "stopped" and "--resume" in last["resume"]
    assert sorted(p.relative_to(models) for p in models.rglob("*")) == before
    # and it resumes from where it stopped
    r = medview(
        tmp_path,
        env,
        "train",
        "--job",
        str(tmp_path / "work" / "job.json"),
        "--resume",
        "--epochs",
        str(last["epoch"] + 1),
    )
    assert r.returncode == 0, r.stderr
    got = events(r.stdout)
    start = next(e for e in got if e["event"] == "start")
    assert start["resumed_epoch"] == last["epoch"]
    assert got[-1]["event"] == "done"


def test_bad_input_is_one_error_event_and_one_line(tmp_path: Path, env: dict) -> None:
    (tmp_path / "nothing").mkdir()
    r = medview(tmp_path, env, "train", "--data", str(tmp_path / "nothing"), *ARGS)
    assert r.returncode == 1
    got = events(r.stdout)
    assert got[-1]["event"] == "error" and "no labelled studies" in got[-1]["message"]
    assert got[-1]["try"] and got[-1]["kind"] == "input"
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    usage = medview(tmp_path, env, "train", "--base", "tiny")
    assert usage.returncode == 2 and "--data" in usage.stderr


def test_bad_flags_out_folders_and_job_files_are_one_sentence_and_an_error_event(
    tmp_path: Path, env: dict
) -> None:
    """Each was an internal error, a silent clamp, or a run writing into the wrong place."""
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "letter.txt").write_text("x")
    (tmp_path / "list.json").write_text("[1, 2]")
    data = ["--data", str(tmp_path / "studies"), *ARGS]
    for args, code, says in (
        ([*data, "--epochs", "0"], 2, "--epochs 0: train at least 1 epoch"),
        ([*data, "--batch-size", "0"], 2, "--batch-size 0: use 1 to 4096"),
        ([*data, "--lr", "-1"], 2, "--lr -1: use a learning rate above 0"),
        ([*data, "--val-fraction", "1.5"], 2, "--val-fraction 1.5: use a fraction"),
        ([*data, "--set", "epochs=-3"], 2, "--epochs -3: train at least 1 epoch"),
        ([*data, "--set", "distill=-1"], 2, "--set distill -1: use a weight from 0"),
        ([*data, "--out", str(tmp_path / "a-file")], 1, "is a file; --out needs a folder"),
        ([*data, "--out", str(tmp_path / "mine")], 1, "letter.txt) and is not a training"),
        (["--job", str(tmp_path / "list.json")], 1, "list.json: is not a job file: it"),
    ):
        r = medview(tmp_path, env, "train", *args)
        assert r.returncode == code and says in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        (last,) = events(r.stdout)
        assert last["event"] == "error" and says in last["message"]
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["letter.txt"]
    assert not (tmp_path / "data" / "models" / "tiny" / "1.0.1").exists()


def test_a_reader_gone_stops_the_run_saved_and_resumable(tmp_path: Path, env: dict) -> None:
    """The app that read the events closed (or crashed): the child ended at its next line
    as an 'internal error (BrokenPipeError)', exit 0, without saving where it was."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medview",
            "--log-file",
            str(tmp_path / "log.txt"),
            "train",
            "--data",
            str(tmp_path / "studies"),
            *ARGS,
            "--epochs",
            "500",
            "--out",
            str(tmp_path / "work"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["event"] == "checkpoint":
            break
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    run = json.loads((tmp_path / "work" / "run.json").read_text())
    assert run["status"] == "stopped" and not run["error"] and run["epoch"] >= 1
    r = medview(
        tmp_path,
        env,
        "train",
        "--job",
        str(tmp_path / "work" / "job.json"),
        "--resume",
        "--epochs",
        str(run["epoch"] + 1),
    )
    assert r.returncode == 0 and events(r.stdout)[-1]["event"] == "done", r.stderr


def test_torchrun_two_gloo_processes_report_the_same_events(tmp_path: Path, env: dict) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "medview",
            "--log-file",
            str(tmp_path / "log.txt"),
            "train",
            "--data",
            str(tmp_path / "studies"),
            *ARGS,
            "--epochs",
            "1",
            "--set",
            "l2sp=5",
            "--out",
            str(tmp_path / "work"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = events(r.stdout)
    start = next(e for e in got if e["event"] == "start")
    # fold 1 trains on the other fold's 2 studies: 2 x 8 patches over 2 processes of 4
    assert start["processes"] == 2 and start["samples_per_epoch"] == 16
    kinds = [e["event"] for e in got if e["event"] not in PROGRESS]
    one = ["start", "epoch", "epoch", "checkpoint", "checkpoint"]  # a fold, then the next's
    assert kinds == one + one + ["start", "epoch", "checkpoint", "done"]  # rank 0 only
    assert {"dice_mean", "sensitivity_ge_6mm", "false_positives_per_study"} <= set(
        got[-1]["metrics"]
    )
    # both ways of keeping the parent's knowledge ran under DDP (the teacher on each rank)
    card = json.loads((Path(got[-1]["folder"]) / "metadata.json").read_text())
    settings = card["validation"]["fine_tune"]["settings"]
    assert settings["distill"] == 2.0 and settings["l2sp"] == 5.0
    assert "distillation" in card["training_data"] and "L2-SP 5.0" in card["training_data"]


def test_set_reaches_any_setting_and_a_wrong_one_is_one_line(tmp_path: Path, env: dict) -> None:
    from argparse import Namespace

    from medview.commands.train import build_job

    flags = dict(
        job=None,
        data="d",
        base="tiny",
        out=None,
        new_version=None,
        no_augment=False,
        no_amp=False,
        map=[],
        **{
            k: None
            for k in (
                "epochs",
                "device",
                "lr",
                "batch_size",
                "patch_size",
                "patches_per_study",
                "patience",
                "val_fraction",
                "seed",
                "threads",
            )
        },
    )
    job = build_job(
        Namespace(
            **flags, set=["distill=0", "distill-on=rehearsal", "freeze_norm=no", "replay_studies=3"]
        )
    )
    assert (
        job.settings.distill,
        job.settings.distill_on,
        job.settings.freeze_norm,
        job.settings.replay_studies,
    ) == (0.0, "rehearsal", False, 3)
    for wrong, says in (
        ("colour=red", "FIELD one of"),
        ("l2sp=lots", "takes a number"),
        ("augment=maybe", "true or false"),
        ("distill", "FIELD=VALUE"),
    ):
        r = medview(
            tmp_path, env, "train", "--data", str(tmp_path / "studies"), *ARGS, "--set", wrong
        )
        assert r.returncode == 2 and says in r.stderr, (wrong, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_a_full_disk_is_an_error_of_kind_disk() -> None:
    import errno

    from medview.commands.train import _kind, _what_to_try
    from medview.core.errors import InvalidInputError, ResourceLimitError

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise ResourceLimitError("/w/checkpoint.pt", "the disk is full") from exc
    except ResourceLimitError as full:
        assert _kind(full) == "disk"
        assert _what_to_try(full) == "free disk space, then run again with --resume"
        # full before the first checkpoint (while caching studies): nothing to resume
        assert _what_to_try(full, resumable=False) == "free disk space, then run again"
    assert _kind(InvalidInputError("/s", "holds no labelled studies")) == "input"


def test_a_run_ended_before_its_first_checkpoint_leaves_no_folder(
    tmp_path: Path, env: dict
) -> None:
    """Nothing resumes a run stopped while preparing or refused for its data, and no list
    shows it: each one used to leave a folder (job.json, run.json, run.lock) in training/.
    A folder chosen with --out stays, emptied of the run's files only."""
    training = tmp_path / "data" / "training"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medview",
            "--log-file",
            str(tmp_path / "log.txt"),
            "train",
            "--data",
            str(tmp_path / "studies"),
            *ARGS,
            "--epochs",
            "50",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if json.loads(line)["event"] == "prepare":
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert events(rest)[-1]["event"] == "stopped" and events(rest)[-1]["resume"] is None
    runs = [p.name for p in training.iterdir() if p.name.startswith("tiny-")]
    assert runs == [], runs  # (the study cache beside them stays)
    (tmp_path / "empty").mkdir()
    r = medview(tmp_path, env, "train", "--data", str(tmp_path / "empty"), *ARGS)
    assert r.returncode == 1 and "no labelled studies" in r.stderr
    assert not [p for p in training.iterdir() if p.name.startswith("tiny-")]
    (tmp_path / "mine").mkdir()
    r = medview(
        tmp_path,
        env,
        "train",
        "--data",
        str(tmp_path / "empty"),
        *ARGS,
        "--out",
        str(tmp_path / "mine"),
    )
    assert r.returncode == 1 and list((tmp_path / "mine").iterdir()) == []


def test_two_threads_prepare_in_worker_processes_of_the_command(tmp_path: Path, env: dict) -> None:
    """`python -m medview train`, as the panel runs it, with two threads: the studies are
    cached by spawned workers of the command (the other tests run one thread, here)."""
    args = [a for a in ARGS if a not in ("--threads", "1")]
    r = medview(
        tmp_path,
        env,
        "train",
        "--data",
        str(tmp_path / "studies"),
        *args,
        "--threads",
        "2",
        "--epochs",
        "1",
    )
    assert r.returncode == 0, r.stderr
    got = events(r.stdout)
    assert [(e["index"], e["of"]) for e in got if e["event"] == "prepare"] == [
        (1, 4),
        (2, 4),
        (3, 4),
        (4, 4),
    ]
    assert got[-1]["event"] == "done" and "Traceback" not in r.stderr

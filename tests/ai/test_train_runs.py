"""A run's work folder remembers it: RunRecord keeps run.json as the events pass and holds
run.lock while the run lives; unfinished_runs lists the stopped, failed and interrupted runs
(not the finished ones, not those without a checkpoint), tells a live run from a dead one by
the lock, and discard_run moves a folder aside, never deleting it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medview.ai.training import runs as tr
from medview.ai.training.engine import CHECKPOINT
from medview.core.errors import InvalidInputError


def make_run(
    root: Path, name: str, events: list[dict], checkpoint: bool = True, close: bool = True
) -> tr.RunRecord:
    work = root / name
    work.mkdir(parents=True)
    (work / "job.json").write_text(
        json.dumps(
            {"data": "d", "base": "tiny:1.0", "split": {"train": ["a", "b", "c"], "val": ["d"]}}
        )
    )
    if checkpoint:
        (work / CHECKPOINT).write_bytes(b"x")
    record = tr.RunRecord(work)
    record.open()
    for ev in events:
        record.event(ev)
    if close:
        record.close()
    return record


START = {"event": "start", "base": "tiny:1.0", "epochs": 10, "steps_per_epoch": 6}


def epoch(n: int) -> list[dict]:
    return [
        {
            "event": "epoch",
            "epoch": n,
            "loss": 1.0 / (n + 1),
            "val_dice": 0.1 * n,
            "seconds": 1.0,
            "epochs": 10,
            "val_dice_per_label": {"lesion": 0.1 * n},
        },
        {"event": "checkpoint", "epoch": n, "step": 0, "path": "p"},
    ]


def test_the_engines_checkpoint_name_is_the_one_looked_for() -> None:
    assert tr.CHECKPOINT_FILE == CHECKPOINT


def test_unfinished_runs_are_listed_with_where_they_stand(tmp_path: Path) -> None:
    make_run(
        tmp_path,
        "stopped",
        [START, *epoch(0), *epoch(1), *epoch(2), {"event": "stopped", "epoch": 2, "step": 3}],
    )
    make_run(tmp_path, "done", [START, *epoch(0), {"event": "done", "version": "tiny:1.0.1"}])
    make_run(tmp_path, "no-checkpoint", [START], checkpoint=False)
    make_run(
        tmp_path,
        "failed",
        [START, *epoch(0), {"event": "error", "kind": "disk", "message": "the disk is full"}],
    )
    make_run(tmp_path, "killed", [START, *epoch(0), *epoch(1)])  # never said it ended
    live = make_run(tmp_path, "live", [START, *epoch(0)], close=False)
    try:
        runs = {r.folder.name: r for r in tr.unfinished_runs(tmp_path)}
    finally:
        live.close()
    assert set(runs) == {"stopped", "failed", "killed", "live"}
    s = runs["stopped"]
    assert (s.status, s.epoch, s.step, s.epochs, s.steps_per_epoch) == ("stopped", 2, 3, 10, 6)
    assert [h["epoch"] for h in s.history] == [0, 1, 2] and (s.train, s.val) == (3, 1)
    assert s.history[2]["val_dice_per_label"] == {"lesion": 0.2}  # Resume draws its line
    assert runs["failed"].status == "failed" and runs["failed"].error == "the disk is full"
    assert runs["killed"].status == "interrupted" and runs["killed"].epoch == 1
    assert runs["live"].status == "running"
    assert {r.folder.name: r for r in tr.unfinished_runs(tmp_path)}[
        "live"
    ].status == "interrupted"  # its process let go of the lock


def test_an_error_before_the_run_starts_leaves_its_record_alone(tmp_path: Path) -> None:
    make_run(tmp_path, "run", [START, *epoch(0), {"event": "stopped", "epoch": 1, "step": 0}])
    again = tr.RunRecord(tmp_path / "run")
    again.open()
    again.event({"event": "error", "message": "already holds a training run"})
    again.close()
    (run,) = tr.unfinished_runs(tmp_path)
    assert run.status == "stopped" and run.error == ""


def test_a_running_run_cannot_be_taken_twice_or_discarded(tmp_path: Path) -> None:
    live = make_run(tmp_path, "live", [START], close=False)
    try:
        with pytest.raises(InvalidInputError, match="being trained by another process"):
            tr.RunRecord(tmp_path / "live").open()
        with pytest.raises(InvalidInputError, match="stop that run first"):
            tr.discard_run(tmp_path / "live")
    finally:
        live.close()


def test_discard_moves_the_folder_aside_under_a_free_name(tmp_path: Path) -> None:
    for _ in range(2):
        make_run(tmp_path, "run", [START, *epoch(0)])
        where = tr.discard_run(tmp_path / "run")
        assert (where / CHECKPOINT).exists() and not (tmp_path / "run").exists()
    assert sorted(p.name for p in (tmp_path / tr.DISCARDED).iterdir()) == ["run", "run-2"]
    assert tr.unfinished_runs(tmp_path) == []  # discarded runs are not offered

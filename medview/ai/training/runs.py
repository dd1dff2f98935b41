"""Training runs as their work folders remember them, so a run that was stopped, crashed or
cut short by a closed app or a reboot is never forgotten.

`medview train` keeps run.json beside the job file and the checkpoint (RunRecord): its
state (running, stopped, failed, done), the epoch and step the checkpoint holds, the curves
so far and the last error; and it holds run.lock for as long as it runs, so a run whose
process died is told apart from one still running elsewhere without trusting process ids,
which a reboot reuses (the operating system drops the lock with the process). The training
panel lists the unfinished runs after a restart (unfinished_runs) and resumes them
(`medview train --job FILE --resume`) or discards them: moved into training/discarded,
never deleted. A run that ends before its first checkpoint (stopped while preparing, or
refused) leaves nothing to resume, so its own files go with it (forget_unsaved). Torch-free:
the panel lists runs without loading torch."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from medview.ai.training.job import JOB_FILE
from medview.core.errors import InvalidInputError
from medview.io import saved
from medview.io.workspace import atomic_write_text

RUN_FILE, LOCK_FILE = "run.json", "run.lock"
CHECKPOINT_FILE = "checkpoint.pt"  # training.CHECKPOINT (that module is not imported here)
DISCARDED = "discarded"
FORMAT, VERSION = "medview-train-run", 1


def _lock(handle: IO[bytes]) -> bool:
    """Take the run's lock without waiting; False when another process holds it."""
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def is_running(folder: Path) -> bool:
    """Whether a `medview train` process holds this work folder now."""
    path = Path(folder) / LOCK_FILE
    if not path.exists():
        return False
    try:
        with open(path, "a+b") as handle:
            return not _lock(handle)  # closing the handle releases a lock taken here
    except OSError:
        return False


@dataclass
class RunInfo:
    """One run's work folder as the panel shows it."""

    folder: Path
    base: str
    status: str  # running | stopped | failed | interrupted (its process died while running)
    epoch: int  # epochs the checkpoint holds
    step: int  # steps of the next epoch it holds
    epochs: int
    steps_per_epoch: int
    started: str
    error: str = ""
    history: list[dict] = field(default_factory=list)
    train: int = 0  # studies
    val: int = 0
    error_setting: dict | None = None  # a refused setting's data, for the panel's words

    @property
    def job_file(self) -> Path:
        return self.folder / JOB_FILE


def _read(folder: Path) -> RunInfo | None:
    try:
        run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        job = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(run, dict) or run.get("format") != FORMAT or run.get("status") == "done":
        return None
    status = run.get("status", "running")
    if is_running(folder):
        status = "running"
    elif status == "running":
        status = "interrupted"
    split = job.get("split") or {}
    epoch = int(run.get("epoch", 0))
    return RunInfo(
        folder,
        str(job.get("base", run.get("base", ""))),
        status,
        epoch,
        int(run.get("step", 0)),
        int(run.get("epochs", 0)),
        int(run.get("steps_per_epoch", 0)),
        str(run.get("started", "")),
        str(run.get("error", "")),
        [h for h in run.get("history", []) if h.get("epoch", 0) <= epoch],
        len(split.get("train", [])),
        len(split.get("val", [])),
        run.get("error_setting") if isinstance(run.get("error_setting"), dict) else None,
    )


def unfinished_runs(root: Path | None = None) -> list[RunInfo]:
    """Runs under the data folder's training/ that have a checkpoint but no new version yet, the
    latest first."""
    root = Path(root) if root is not None else saved.training_dir()
    if not root.is_dir():
        return []
    found = [
        info
        for sub in root.iterdir()
        if sub.is_dir()
        and sub.name != DISCARDED
        and (sub / CHECKPOINT_FILE).exists()
        and (info := _read(sub)) is not None
    ]
    return sorted(found, key=lambda r: (r.started, r.folder.name), reverse=True)


def forget_unsaved(folder: Path) -> bool:
    """Remove a run's own files when it ended with no checkpoint, and its folder when that
    is one of MedView's (under the data folder's training/) and now empty; True when the folder is
    gone. No list shows such a run (nothing resumes it), so every stop while preparing used
    to leave one more folder behind. Anything but a run's files stays, and so does a folder
    the reader chose with --out."""
    from medview.ai.training.checks import RUN_FILES, SAVED_FILES

    folder = Path(folder)
    if not folder.is_dir() or any((folder / name).exists() for name in SAVED_FILES):
        return False
    for name in RUN_FILES:  # (atomic writes remove their temporary files themselves)
        with contextlib.suppress(OSError):
            (folder / name).unlink(missing_ok=True)
    if folder.resolve().parent == saved.training_dir().resolve():
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
    return not folder.exists()


def discard_run(folder: Path) -> Path:
    """Move a run's work folder into training/discarded (a free name); returns where."""
    folder = Path(folder)
    if is_running(folder):
        raise InvalidInputError(
            str(folder), "is still being trained by another process; stop that run first"
        )
    target_root = folder.parent / DISCARDED
    target_root.mkdir(parents=True, exist_ok=True)
    target, n = target_root / folder.name, 1
    while target.exists():
        n += 1
        target = target_root / f"{folder.name}-{n}"
    try:
        shutil.move(str(folder), str(target))
    except OSError as exc:
        raise InvalidInputError(
            str(folder), f"could not be moved aside ({exc.strerror or exc})"
        ) from exc
    return target


class RunRecord:
    """The child's side: holds the run's lock and keeps run.json as its events pass.

    Only the events that change what a restarted panel shows are written (start, epoch,
    checkpoint, stopped, error, done); a record that cannot be written never ends the run
    (the checkpoint is what resumes it)."""

    def __init__(self, work: Path) -> None:
        self.work = Path(work)
        self._handle: IO[bytes] | None = None
        self._started = False
        self.state: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "status": "running",
            "epoch": 0,
            "step": 0,
            "history": [],
        }

    def open(self) -> None:
        """Lock the work folder; a run another process holds is one sentence."""
        self.work.mkdir(parents=True, exist_ok=True)
        handle = open(self.work / LOCK_FILE, "a+b")  # noqa: SIM115 - held while it runs
        if not _lock(handle):
            handle.close()
            raise InvalidInputError(
                str(self.work), "is being trained by another process; wait for it or stop it first"
            )
        self._handle = handle
        try:
            old = json.loads((self.work / RUN_FILE).read_text(encoding="utf-8"))
            if isinstance(old, dict) and old.get("format") == FORMAT:
                self.state.update(old)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def event(self, ev: dict) -> None:
        kind, s = ev.get("event"), self.state
        if kind == "start":
            self._started = True
            s.update(
                status="running",
                base=ev.get("base", ""),
                epochs=ev.get("epochs", 0),
                steps_per_epoch=ev.get("steps_per_epoch", 0),
                error="",
                error_setting=None,
                started=s.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S"),
            )
        elif kind == "epoch":
            s["history"] = [h for h in s["history"] if h["epoch"] < ev["epoch"]] + [
                {
                    k: ev.get(k)
                    for k in ("epoch", "loss", "val_dice", "seconds", "val_dice_per_label")
                }
            ]
        elif kind in ("checkpoint", "stopped"):
            s.update(epoch=ev["epoch"], step=ev["step"])
            if kind == "stopped":
                s["status"] = "stopped"
        elif kind == "done":
            s.update(status="done", version=ev.get("version", ""))
        elif kind == "error" and (self._started or not (self.work / RUN_FILE).exists()):
            s.update(
                status="failed", error=f"{ev.get('message', '')}", error_setting=ev.get("setting")
            )
        else:
            return
        s["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        with contextlib.suppress(OSError):  # a full disk: the checkpoint's error tells
            atomic_write_text(self.work / RUN_FILE, json.dumps(s, indent=1) + "\n")

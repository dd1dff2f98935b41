"""A training run's files in its work folder: the checkpoint written after every epoch and on
stop (model, optimiser, scaler, the epoch's random state and curves) and the best epoch's
weights, each written atomically (train_job.write_file: a full disk or a kill leaves the
previous one whole).

A checkpoint is read with weights_only=True and nothing else: it holds tensors and plain
values, never code, whoever wrote the file; a damaged or foreign one is one sentence (torch's
own words run to pages and advise loading it unsafely)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

from medview.ai.training.job import write_file
from medview.core.errors import SettingError

CHECKPOINT, BEST = "checkpoint.pt", "best.safetensors"
log = logging.getLogger(__name__)


def torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_checkpoint(work: Path, model: Any, opt: Any, scaler: Any, st: dict) -> Path:
    """The run state `st` (epoch, step, rng, curves, best) with the weights and optimiser."""
    state = {
        **st,
        "history": json.dumps(st["history"]),
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
    }
    path = work / CHECKPOINT
    write_file(path, torch_bytes(state), "checkpoint")
    return path


def save_state(work: Path, model: Any, st: dict) -> Path:
    """A checkpoint at the start of a phase of cross-validation: the parent's weights and
    no optimiser state, so a resume begins the next fold and never trains a finished one
    again."""
    state = {
        **st,
        "history": json.dumps(st["history"]),
        "model": model.state_dict(),
        "opt": {},
        "scaler": {},
    }
    path = work / CHECKPOINT
    write_file(path, torch_bytes(state), "checkpoint")
    return path


def save_best(work: Path, model: Any) -> None:
    from safetensors.torch import save

    # copies: safetensors refuses tensors that share memory (nnU-Net's decoder holds its
    # encoder, and each conv block lists its layers twice)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    write_file(work / BEST, save(state), "best weights")


def _read(path: Path) -> dict:
    import torch

    ck = torch.load(path, weights_only=True, map_location="cpu")
    ck["epoch"], ck["step"] = int(ck["epoch"]), int(ck["step"])
    return ck


def check_base(work: Path, base: str) -> None:
    """Refuse to resume a checkpoint of another base model (the exact NAME:VERSION): the new
    card would name the wrong parent and compare with it (resumed after activating another
    version, it did). An unreadable checkpoint is load_checkpoint's to report."""
    path = work / CHECKPOINT
    try:
        started = _read(path).get("base", base)
    except Exception:
        return
    if started != base:
        raise SettingError("base", base, "base_mismatch", str(path), trained_from=started)


def load_checkpoint(work: Path, model: Any, opt: Any, scaler: Any) -> dict:
    """Restore model, optimiser and scaler; returns the run state."""
    path = work / CHECKPOINT
    try:
        ck = _read(path)
        model.load_state_dict(ck.pop("model"))
        opt_state = ck.pop("opt")
        if opt_state:  # (none at the start of a cross-validation phase: a fresh optimiser)
            opt.load_state_dict(opt_state)
        scaler_state = ck.pop("scaler", {})
        if scaler is not None and scaler_state:
            scaler.load_state_dict(scaler_state)
        ck["history"] = json.loads(ck["history"])
    except Exception as exc:
        log.debug("checkpoint %s unreadable", path, exc_info=True)
        raise SettingError("work", str(path.parent), "checkpoint_unreadable", str(path)) from exc
    return ck


def checkpoint_phase(work: Path) -> int:
    """The cross-validation phase (fold index; the number of folds = the version itself)
    the checkpoint in `work` is in; 0 without one or for a run of one split."""
    try:
        return int(_read(work / CHECKPOINT).get("phase", 0))
    except Exception:
        return 0


def checkpoint_at(work: Path) -> tuple[int, int] | None:
    """(epoch, step) of the checkpoint in `work`, None without a readable one."""
    try:
        ck = _read(work / CHECKPOINT)
    except Exception:
        return None
    return ck["epoch"], ck["step"]

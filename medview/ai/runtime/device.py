"""Where a model runs, and how: the device (CUDA, then Apple MPS, then CPU, unless the user
says otherwise), mixed precision on CUDA only, torch's thread count, and how to tell a GPU
out-of-memory failure from any other (the inference job falls back on it).

Nothing here hard-codes a device: every function takes the device it is about, so the same
code is right on a CPU laptop, an Apple machine and a CUDA workstation."""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractContextManager

import torch

from medview.core.errors import MedviewError, SettingError, UnsupportedInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
_NAMES = {"cuda": "CUDA", "mps": "Apple MPS"}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return _mps_available()
    return kind == "cpu"


def choose_device(preference: str = "auto") -> torch.device:
    """The device to run on: "auto" takes CUDA if present, else MPS, else the CPU. An
    explicit choice that this machine cannot honour is refused rather than quietly replaced,
    so the reader knows where the model actually ran."""
    kind = (preference or "auto").strip().lower()
    if kind not in DEVICE_CHOICES:
        raise UnsupportedInputError(
            None, f"unknown device {preference!r}; use one of {', '.join(DEVICE_CHOICES)}"
        )
    if kind == "auto":
        kind = next(k for k in ("cuda", "mps", "cpu") if _available(k))
    elif not _available(kind):
        raise SettingError("device", kind, "unavailable", device_name=_NAMES[kind])
    return torch.device(kind)


def autocast_context(device: torch.device | str) -> AbstractContextManager:
    """Mixed precision where it pays: bfloat16 on CUDA when the GPU has it (no overflow in
    logits), else float16; full precision elsewhere (CPU bf16 gave nothing here, NOTES)."""
    device = torch.device(device)
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def cpu_cores() -> int:
    """Cores this process may use (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def set_threads_for_ui(live: bool) -> int:
    """One torch thread while the viewer is on screen, every core headless; returns the
    count it replaced. Two torch threads collapse to a third of one thread's speed when the
    UI thread busies the other core (NOTES, 'Models and torch'), and a scrolling reader
    matters more than a faster model."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1 if live else cpu_cores())
    return previous


_OOM_WORDS = ("out of memory", "failed to allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a GPU running out of memory: torch's CUDA OutOfMemoryError, the MPS
    backend's RuntimeError ('MPS backend out of memory') and onnxruntime's allocation
    failures. Our own refusals never count, even when their text mentions memory."""
    if isinstance(exc, MedviewError):
        return False
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, Exception) and any(w in str(exc).lower() for w in _OOM_WORDS)

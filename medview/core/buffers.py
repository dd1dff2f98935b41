"""Allocating large volume buffers fast.

Memory a process touches for the first time costs about 1 ms per MiB on these machines
(docs/development.md): a fresh 150 MiB np.empty took 0.32 s just to fault its pages in, more than
reading 300 CT slices into it. An anonymous mapping with MAP_POPULATE has the kernel fill
every page in one call (0.05 s for the same 150 MiB). Elsewhere (macOS, Windows) it falls
back to numpy."""

from __future__ import annotations

import mmap

import numpy as np

# below this, np.empty reuses freed memory and populating buys nothing
POPULATE_MIN_BYTES = 8 * 1024 * 1024


def empty_populated(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-ordered array whose pages are already resident."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    flag = getattr(mmap, "MAP_POPULATE", 0)
    if nbytes < POPULATE_MIN_BYTES or not flag:
        return np.empty(shape, dt)
    try:
        buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flag)
    except (OSError, ValueError):
        return np.empty(shape, dt)
    return np.frombuffer(buf, dt).reshape(shape)

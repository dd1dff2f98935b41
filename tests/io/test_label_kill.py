"""A child process that paints and autosaves (journal after every stroke, snapshots written
on a worker thread from the live array, as the app does) is killed with SIGKILL at random
moments, again and again: every stroke it had saved comes back, replay gives the exact array,
and no file is ever half-written (nothing damaged, no temp file outlives the next start)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medview.io.labels.store import LabelStore

SHAPE = (48, 192, 192)
KEY = "1.2.826.0.1.kill"

CHILD = r"""
import sys, threading
import numpy as np
from medview.core.labels import LabelMap
from medview.io.labels.store import LabelSource, LabelStore
sys.path.insert(0, sys.argv[2])
from tests.io.test_label_kill import KEY, SHAPE, stroke

start = int(sys.argv[1])
store = LabelStore(KEY)
loaded = store.load()
lm = loaded.label_map if loaded else LabelMap.empty(SHAPE, KEY)
if not lm.segments:
    lm.add_segment("Liver"); lm.add_segment("Lesion"); lm.add_segment("Cyst")
store.start(LabelSource(KEY, SHAPE, tuple(map(tuple, np.eye(4)))))
flat = lm.array.reshape(-1)
worker = None
print("ready", flush=True)
k = start
while True:
    idx, value = stroke(k)
    changed = idx[flat[idx] != value]
    flat[changed] = value
    store.append_voxels(changed, np.full(changed.size, value, np.uint8))
    print(f"J {k}", flush=True)
    if k % 3 == 0 and (worker is None or not worker.is_alive()):
        n = store.begin_snapshot()
        worker = threading.Thread(target=store.write_snapshot,
                                  args=(n, lm.array, dict(lm.segments)))
        worker.start()
    k += 1
"""


def stroke(k: int) -> tuple[np.ndarray, int]:
    """Stroke k: a box of one value (0 erases), the same every run."""
    rng = np.random.default_rng(k)
    lo = rng.integers(0, np.array(SHAPE) - 8)
    size = rng.integers(2, 24, 3)
    hi = np.minimum(lo + size, SHAPE)
    value = int(rng.integers(0, 4))
    grid = np.zeros(SHAPE, bool)
    grid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return np.flatnonzero(grid), value


def apply(array: np.ndarray, k: int) -> None:
    idx, value = stroke(k)
    array.reshape(-1)[idx] = value


@pytest.mark.slow
def test_sigkill_in_the_middle_of_autosave_loses_nothing_saved(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = str(Path(__file__).resolve().parents[2])
    rnd = random.Random(7)
    expected = np.zeros(SHAPE, np.uint8)  # the state after strokes 0..done-1
    done = 0
    for _ in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(done), root],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
        )
        assert child.stdout.readline().strip() == "ready"
        # kill only once a stroke is saved: on a loaded machine a fixed delay can end the
        # child before its first stroke, and a round that saved nothing tests nothing
        first = child.stdout.readline()
        time.sleep(rnd.uniform(0.0, 0.45))
        child.send_signal(signal.SIGKILL)
        acked = [int(line.split()[1]) for line in [first, *child.stdout] if line.startswith("J ")]
        child.wait()
        assert acked, "the child saved nothing before it was killed"
        loaded = LabelStore(KEY).load()
        assert loaded is not None
        assert not [m for m in loaded.messages if "cut off" not in m], loaded.messages
        for k in range(done, acked[-1] + 1):
            apply(expected, k)
        if not np.array_equal(loaded.label_map.array, expected):
            # the stroke after the last acknowledged one may have been fsynced too
            apply(expected, acked[-1] + 1)
            np.testing.assert_array_equal(loaded.label_map.array, expected)
            acked.append(acked[-1] + 1)
        done = acked[-1] + 1
        assert sorted(loaded.label_map.segments) == [1, 2, 3]
    store = LabelStore(KEY)
    store.start(store.source)
    assert not list(store.folder.glob(".*.tmp"))

"""Autosave of a 300 x 512 x 512 label map (issue 6: "runs in the background without stalling
the view") against references in the same run.

A realistic map: a liver (about 1.3 M voxels), six nodules, and a threshold-brushed region
(speckled, the worst case for runs). Prints, for MedView's snapshot (runs + zlib level 1, written
atomically with fsync) and for np.save (uncompressed), np.savez_compressed, zlib level 1 of the
raw voxels and SimpleITK's .nii.gz: seconds and bytes, and the ratios. Then what the view
feels: the longest pause of a 60 Hz "GUI" loop on the main thread while a snapshot is written
on a worker (the GIL is what could stall it), beside the same loop with no snapshot; the cost
of one journal append per stroke (fsynced) and of replaying a snapshot plus 100 strokes.

Run: nice -n 10 python benchmarks/bench_autosave.py [--work DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

SHAPE = (300, 512, 512)


def realistic_map() -> np.ndarray:
    a = np.zeros(SHAPE, np.uint8)
    z, y, x = np.ogrid[:300, :512, :512]
    a[((z - 150) / 70.0) ** 2 + ((y - 280) / 110.0) ** 2 + ((x - 170) / 90.0) ** 2 < 1] = 2
    rng = np.random.default_rng(0)
    for _ in range(6):
        cz, cy, cx = rng.integers([20, 100, 100], [280, 400, 400])
        r = rng.uniform(3, 12)
        a[((z - cz) / (r / 2.5)) ** 2 + ((y - cy) / r) ** 2 + ((x - cx) / r) ** 2 < 1] = 1
    box = a[100:130, 300:400, 300:420]
    box[rng.random(box.shape) < 0.5] = 3  # a threshold brush over noisy tissue
    return a


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fsynced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def gui_pauses(seconds: float, during=None) -> float:
    """Longest gap (ms) between frames of a loop that does a little numpy work per frame and
    sleeps to 60 Hz, while `during` runs on a worker thread (or for `seconds`)."""
    worker = threading.Thread(target=during) if during else None
    frame = np.zeros((512, 512), np.uint8)
    gaps, last = [], time.perf_counter()
    if worker:
        worker.start()
    end = time.perf_counter() + seconds
    while worker.is_alive() if worker else time.perf_counter() < end:
        frame[:] = 7  # a slice's worth of drawing
        time.sleep(1 / 60)
        now = time.perf_counter()
        gaps.append(now - last - 1 / 60)
        last = now
    if worker:
        worker.join()
    return 1000 * max(gaps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-autosave-"))
    os.environ["MEDVIEW_DATA_DIR"] = str(work / "data")
    from medview.core.labels import LabelMap
    from medview.io.labels import codec
    from medview.io.labels.store import LabelSource, LabelStore

    a = realistic_map()
    lm = LabelMap(a, {}, "bench")
    for name in ("Nodule", "Liver", "Threshold"):
        lm.add_segment(name)
    print(
        f"label map {SHAPE}, {np.count_nonzero(a) / 1e6:.2f} M labelled voxels, "
        f"{a.nbytes / 2**20:.0f} MiB"
    )
    store = LabelStore("bench")
    store.start(LabelSource("bench", SHAPE, tuple(map(tuple, np.eye(4)))))

    rows = {}
    snap = codec.encode_snapshot(a, {})
    rows["MedView snapshot (runs+zlib1, atomic, fsync)"] = (
        best(lambda: store.write_snapshot(store.begin_snapshot(), a, lm.segments), args.repeat),
        len(snap.data),
    )
    rows["  of which encoding"] = (
        best(lambda: codec.encode_snapshot(a, {}), args.repeat),
        len(snap.data),
    )
    rows["np.save uncompressed (fsync)"] = (
        best(lambda: fsynced(work / "raw.npy", a.tobytes()), args.repeat),
        a.nbytes,
    )
    raw_zlib = zlib.compress(a, 1)
    rows["zlib level 1 of the raw voxels"] = (best(lambda: zlib.compress(a, 1), 1), len(raw_zlib))

    def savez() -> None:
        buf = io.BytesIO()
        np.savez_compressed(buf, a=a)
        rows["np.savez_compressed"] = (0.0, buf.tell())

    rows["np.savez_compressed"] = (best(savez, 1), rows.get("np.savez_compressed", (0, 0))[1])
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(a)
    nii = work / "ref.nii.gz"
    rows["SimpleITK WriteImage .nii.gz"] = (
        best(lambda: sitk.WriteImage(img, str(nii), True), 1),
        0,
    )
    rows["SimpleITK WriteImage .nii.gz"] = (
        rows["SimpleITK WriteImage .nii.gz"][0],
        nii.stat().st_size,
    )
    ours_t, ours_b = rows["MedView snapshot (runs+zlib1, atomic, fsync)"]
    print(f"{'':46s} {'seconds':>8s} {'MB':>8s} {'time ratio':>11s} {'size ratio':>11s}")
    for name, (t, b) in rows.items():
        print(f"{name:46s} {t:8.3f} {b / 1e6:8.2f} {t / ours_t:10.1f}x {b / ours_b:10.1f}x")

    idle = gui_pauses(2.0)

    def five_snapshots() -> None:
        for _ in range(5):
            store.write_snapshot(store.begin_snapshot(), a, lm.segments)

    during = gui_pauses(0, five_snapshots)
    print(
        f"GUI loop at 60 Hz, longest pause beyond its frame: idle {idle:.1f} ms, "
        f"while 5 snapshots are written on a worker {during:.1f} ms"
    )

    rng = np.random.default_rng(1)
    per = {}
    # a dab (one slice), a long 2D stroke or fill, a 3D sphere brush / 3D fill
    for box in ((1, 40, 50), (1, 100, 200), (8, 160, 160)):
        times = []
        for _ in range(30):
            lo = rng.integers(0, np.array(SHAPE) - box)
            grid = np.zeros(SHAPE, bool)
            grid[lo[0] : lo[0] + box[0], lo[1] : lo[1] + box[1], lo[2] : lo[2] + box[2]] = True
            idx = np.flatnonzero(grid)
            t0 = time.perf_counter()
            store.append_voxels(idx, np.full(idx.size, 1, np.uint8))
            times.append(time.perf_counter() - t0)
        per[int(np.prod(box))] = statistics.median(times)
    print(
        "journal append per stroke (fsynced), median: "
        + ", ".join(f"{v:,} voxels {1000 * t:.2f} ms" for v, t in per.items())
    )
    t_load = best(lambda: LabelStore("bench").load(), args.repeat)
    print(f"load = snapshot + replay of {3 * 30} strokes: {t_load:.3f} s")


if __name__ == "__main__":
    main()

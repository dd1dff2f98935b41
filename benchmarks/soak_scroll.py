"""Soak: scroll the demo study cine-like through all three planes of the 1 x 3 layout, with a
label-map overlay, for N frames (default 100 000), and fail on a crash or on memory growth.

Each frame steps one view by a slice (back and forth through the series, switching plane
every 1000 frames) and lets the event loop paint what changed; every 2500 frames a CT preset
is applied and every 5000 the crosshair is clicked elsewhere, so levels, reslices and
overlays are all exercised. Resident memory is printed every 10 000 frames, with the
reference counts of True and None (the PySide6 leak in docs/development.md, which aborted
CPython 3.11 after about a thousand frames).

Fails (exit 1) if RSS grows more than --max-growth-mb (50) after the warm-up, or if the
viewer process dies: the soak runs in a child process, so a segfault or a "Fatal Python
error" abort is reported as a failure with the last frame reached, not lost.
Not part of the pytest run: about 4-8 minutes for 100 000 frames here.

Run: python benchmarks/soak_scroll.py [--frames N] [--work DIR]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPORT_EVERY = 10_000
PLANE_EVERY, PRESET_EVERY, CLICK_EVERY = 1000, 2500, 5000


def soak(frames: int, work: Path, max_growth_mb: float) -> int:
    """The soak itself (in the child process); returns the exit code."""
    import numpy as np
    from PySide6 import QtWidgets
    from viewer_setup import blob_labels, load_study, make_views, rss_mb

    from medview.core.windowing import CT_PRESETS
    from medview.viewer.layers import OverlayLayer
    from medview.viewer.planes import Plane
    from medview.viewer.state import ViewerState

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    volume, source, folder = load_study(work)
    state = ViewerState()
    state.set_volume(volume)
    state.add_layer(OverlayLayer("blobs", blob_labels(volume.shape)))
    window, _views = make_views(state, list(Plane))
    planes = list(Plane)
    warm_up = min(REPORT_EVERY, max(frames // 10, 1000))
    print(
        f"soak: {frames} frames over {source} {folder} "
        f"({' x '.join(map(str, volume.shape))}), 3 views 512x512 with a label overlay; "
        f"warm-up {warm_up} frames, fail above +{max_growth_mb:g} MB after it",
        flush=True,
    )
    rng = np.random.default_rng(0)
    direction = {p: 1 for p in planes}
    base_rss, peak_growth = None, 0.0
    t0 = time.perf_counter()
    for frame in range(1, frames + 1):
        plane = planes[(frame // PLANE_EVERY) % 3]
        n, k = state.maps[plane].n_slices, state.slice_index(plane)
        if not 0 <= k + direction[plane] < n:
            direction[plane] *= -1
        state.step(plane, direction[plane])
        if frame % PRESET_EVERY == 0:
            w = CT_PRESETS[(frame // PRESET_EVERY) % len(CT_PRESETS)]
            state.set_window(w.center, w.width, w.name)
        if frame % CLICK_EVERY == 0:
            rows, cols = state.maps[plane].screen_shape
            state.set_cursor_screen(plane, rng.uniform(0, rows - 1), rng.uniform(0, cols - 1))
        app.processEvents()
        if frame == warm_up:
            base_rss = rss_mb()
        if frame % REPORT_EVERY == 0 or frame in (frames, warm_up):
            rss = rss_mb()
            growth = rss - base_rss if base_rss is not None else 0.0
            peak_growth = max(peak_growth, growth)
            elapsed = time.perf_counter() - t0
            print(
                f"frame {frame:>7}: RSS {rss:7.1f} MiB ({growth:+.1f} since warm-up), "
                f"refs True {sys.getrefcount(True)} None {sys.getrefcount(None)}, "
                f"{elapsed:6.1f} s, {elapsed / frame * 1e3:.2f} ms/frame",
                flush=True,
            )
            if growth > max_growth_mb:
                print(
                    f"FAIL: memory grew {growth:.1f} MB after warm-up (limit {max_growth_mb:g} MB)",
                    flush=True,
                )
                return 1
    window.close()
    print(
        f"PASS: {frames} frames in {time.perf_counter() - t0:.1f} s, largest growth after "
        f"warm-up {peak_growth:+.1f} MB (limit {max_growth_mb:g} MB)",
        flush=True,
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "medview-bench")
    ap.add_argument("--max-growth-mb", type=float, default=50.0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return soak(args.frames, args.work, args.max_growth_mb)
    cmd = [
        sys.executable,
        "-X",
        "faulthandler",
        __file__,
        "--child",
        "--frames",
        str(args.frames),
        "--work",
        str(args.work),
        "--max-growth-mb",
        str(args.max_growth_mb),
    ]
    last = ""
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        for line in child.stdout:
            if "propagateSizeHints" not in line:
                print(line, end="", flush=True)
                last = line.strip() if line.startswith("frame") else last
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        print(f"FAIL: the viewer process was killed by {name}; last report: {last or 'none'}")
        return 1
    if child.returncode not in (0, 1):
        print(
            f"FAIL: the viewer process exited with {child.returncode} (a crash or abort); "
            f"last report: {last or 'none'}"
        )
        return 1
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())

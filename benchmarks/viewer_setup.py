"""What bench_viewer.py and soak_scroll.py share: the study they scroll (the 300-slice demo
CT, or make_series' synthetic CT when the demo generator is unavailable), a label map with a
few blobs as the overlay, the real SliceViews shown offscreen, and resident memory."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_series import make_ct_series


def rss_mb() -> float:
    """Resident memory of this process now (not the peak), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_study(work: Path):
    """(Volume, what it is, its folder): the demo study, generated into `work` once."""
    from medview.io.open_volume import load_volume

    folder = work / "demo" / "series"
    try:
        if not folder.is_dir():
            from medview.demo import generate_demo_study

            print(f"generating the demo study in {folder.parent} (once)", flush=True)
            generate_demo_study(folder.parent, seed=0)
        source = "demo study"
    except Exception as exc:  # the demo generator is another issue's work in progress
        print(
            f"demo study unavailable ({type(exc).__name__}: {exc}); using make_series", flush=True
        )
        folder, source = make_ct_series(work / "uncompressed"), "make_series CT"
    volume, _ = load_volume([str(folder)])
    return volume, source, folder


def blob_labels(shape: tuple[int, int, int], n: int = 6, seed: int = 0) -> np.ndarray:
    """uint8 label map with `n` ellipsoids of labels 1..n, drawn box by box so no
    volume-sized temporaries are made."""
    rng = np.random.default_rng(seed)
    labels = np.empty(shape, np.uint8)
    labels.fill(0)  # every page resident now (np.zeros' pages would count only once read)
    for value in range(1, n + 1):
        radius = rng.uniform(0.06, 0.15, 3) * np.array(shape)
        centre = rng.uniform(0.25, 0.75, 3) * np.array(shape)
        lo = np.maximum(np.floor(centre - radius), 0).astype(int)
        hi = np.minimum(np.ceil(centre + radius), shape).astype(int)
        zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        inside = (
            ((zz - centre[0]) / radius[0]) ** 2
            + ((yy - centre[1]) / radius[1]) ** 2
            + ((xx - centre[2]) / radius[2]) ** 2
        ) <= 1
        labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]][inside] = value
    return labels


def make_views(state, planes: Sequence, size: int = 512):
    """Real SliceViews side by side in one shown window (the 1 x 3 layout when given all
    three planes), each `size` pixels square, painted once."""
    from PySide6 import QtWidgets

    from medview.ui.slice_view import SliceView

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = QtWidgets.QWidget()
    layout = QtWidgets.QHBoxLayout(window)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    views = []
    for plane in planes:
        view = SliceView(state, plane)
        view.setFixedSize(size, size)
        layout.addWidget(view)
        views.append(view)
    window.show()
    app.processEvents()
    for view in views:
        view.fit()
        view.viewport().repaint()
    return window, views

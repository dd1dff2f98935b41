"""Thick-slab speed (issue 18 goal: a 20 mm MIP slab of a 512² CT at <= 16 ms a frame while
scrolling), against a plain numpy max over the same voxels measured in the same run.

A synthetic 300 x 512 x 512 int16 CT at 1 mm slices and 0.7 mm pixels; for each plane the
slab is stepped one slice per frame as scrolling does. Three numbers per plane:
- numpy: `volume[..., lo:hi, ...].max(axis)` on the slab's slices, the reference;
- slab: SlabProjector.image (the pixels the view draws, oriented for the screen);
- frame: a real SliceView's whole frame (state.step -> projection, setImage, synchronous
  repaint offscreen), what the reader waits for.
The sagittal projector keeps a last-axis-first copy of the volume, made the first time a
sagittal slab is drawn (its time is printed apart: a one-off pause, not a per-frame cost).

Run: python benchmarks/bench_slab.py [--frames N]"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHAPE = (300, 512, 512)
SPACING = (1.0, 0.7, 0.7)
SLAB_MM = 20.0
GOAL_MS = 16.0


def volume():
    from medview.core.geometry import affine_from_plane
    from medview.core.volume import Volume, VolumeMetadata

    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1500, SHAPE, dtype=np.int16)
    affine = affine_from_plane(
        (-180, -180, 0), (1, 0, 0), (0, 1, 0), SPACING[1:], (0, 0, SPACING[0])
    )
    return Volume(array, affine, VolumeMetadata(modality="CT"))


def median_ms(fn, n: int) -> float:
    fn(0)
    times = []
    for k in range(1, n + 1):
        t0 = time.perf_counter()
        fn(k)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()

    from PySide6 import QtWidgets

    from medview.ui.slice_view import SliceView
    from medview.viewer.planes import Plane
    from medview.viewer.slab import SlabMode, slab_bounds
    from medview.viewer.state import ViewerState

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    state = ViewerState()
    state.set_volume(volume())
    a = state.volume.array
    state.set_slab(SlabMode.MIP, SLAB_MM)
    sag = state.maps[Plane.SAGITTAL]
    t0 = time.perf_counter()
    state.projector.image(sag, 100, state.slab, state.slab_spacing(Plane.SAGITTAL))
    copy_s = time.perf_counter() - t0
    print(
        f"volume {SHAPE} int16, {SLAB_MM:g} mm MIP; sagittal copy made once in "
        f"{copy_s:.2f} s ({a.nbytes / 2**20:.0f} MiB)"
    )
    worst = 0.0
    views = []  # kept open: a closed view still listens to the state
    for plane in Plane:
        pm = state.maps[plane]
        spacing = state.slab_spacing(plane)
        base = state.slice_index(plane) - args.frames // 2

        def numpy_max(k: int, pm=pm, spacing=spacing, base=base) -> None:
            lo, hi = slab_bounds(pm.n_slices, base + k, SLAB_MM, spacing)
            cut = [slice(None)] * 3
            cut[pm.normal_axis] = slice(lo, hi)
            a[tuple(cut)].max(axis=pm.normal_axis)

        def slab(k: int, pm=pm, spacing=spacing, base=base) -> None:
            state.projector.image(pm, base + k, state.slab, spacing)

        view = SliceView(state, plane)
        view.resize(700, 700)
        view.show()
        app.processEvents()

        def frame(k: int, view=view, plane=plane) -> None:
            state.step(plane, 1 if k % 2 else -1)
            view.viewport().repaint()

        ref, got, whole = (median_ms(f, args.frames) for f in (numpy_max, slab, frame))
        worst = max(worst, whole)
        n = slab_bounds(pm.n_slices, 100, SLAB_MM, spacing)
        print(
            f"{plane.value:9s} {n[1] - n[0]:3d} slices  numpy max {ref:7.2f} ms   slab "
            f"{got:7.2f} ms (ratio {got / ref:5.2f})   whole frame {whole:7.2f} ms"
        )
        views.append(view)
    print(
        f"worst whole frame {worst:.2f} ms; goal <= {GOAL_MS:g} ms: "
        f"{'met' if worst <= GOAL_MS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()

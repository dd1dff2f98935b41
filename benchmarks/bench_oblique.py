"""Oblique reslice speed (issue 18 goal: an oblique reslice of 512² <= 16 ms), against
scipy.ndimage.map_coordinates (order 1) and SimpleITK's linear Resample of the same plane,
measured in the same run. SimpleITK runs on every core (its default) and again on one, as
MedView's reslice does; the load average is printed, as other work on the machine slows all
three. Also timed: the viewer's own plane through the volume (ObliqueMap.image, a canvas the
size of the volume's diagonal, of which the volume fills about half), and that plane as a
10 and 20 mm MIP slab (viewer.slab.oblique_slab: a reslice per plane, a pixel apart) against
the orthogonal axial slab of the same thickness (SlabProjector).

A synthetic 300 x 512 x 512 int16 CT (1 mm slices, 0.7 mm pixels); a double-oblique plane
through its centre (30° about S, then 20° about L), 512 x 512 pixels of 0.7 mm. Each method
computes its sample positions itself, as it would per frame. The pixels of the three agree
(printed: the largest difference from scipy inside the volume).

Run: python benchmarks/bench_oblique.py [--frames N]"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

SHAPE = (300, 512, 512)
SPACING = (1.0, 0.7, 0.7)
SIZE = 512
GOAL_MS = 16.0


def median_ms(fn, n: int) -> tuple[float, np.ndarray]:
    out = fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10)
    args = ap.parse_args()
    import SimpleITK as sitk
    from scipy import ndimage

    from medview.core.geometry import affine_from_plane
    from medview.viewer.oblique import ObliqueMap, reslice, rotation

    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1500, SHAPE, dtype=np.int16)
    affine = affine_from_plane(
        (-180, -180, 0), (1, 0, 0), (0, 1, 0), SPACING[1:], (0, 0, SPACING[0])
    )
    rot = rotation((0, 0, 1), 30) @ rotation((1, 0, 0), 20)
    down, right = rot @ [0, 1, 0], rot @ [1, 0, 0]
    px = SPACING[1]
    centre = affine[:3, :3] @ ((np.array(SHAPE) - 1) / 2) + affine[:3, 3]
    corner = centre - (SIZE - 1) / 2 * px * (down + right)
    inv = np.linalg.inv(affine[:3, :3])
    start = inv @ (corner - affine[:3, 3])
    d_row, d_col = inv @ (down * px), inv @ (right * px)

    def ours():
        return reslice(array, start, d_row, d_col, (SIZE, SIZE))

    def scipy_way():
        r, c = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
        idx = [start[a] + r * d_row[a] + c * d_col[a] for a in range(3)]
        return ndimage.map_coordinates(array, idx, order=1, mode="constant", cval=-1024)

    image = sitk.GetImageFromArray(array)
    image.SetSpacing((SPACING[2], SPACING[1], SPACING[0]))
    image.SetOrigin(tuple(float(v) for v in affine[:3, 3]))
    ref = sitk.Image(SIZE, SIZE, 1, sitk.sitkInt16)
    ref.SetSpacing((px, px, px))
    ref.SetOrigin(tuple(float(v) for v in corner))
    ref.SetDirection(tuple(np.stack([right, down, np.cross(right, down)], 1).ravel()))

    def sitk_way():
        out = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkInt16)
        return sitk.GetArrayFromImage(out)[0]

    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()

    def sitk_one_thread():
        f = sitk.ResampleImageFilter()
        f.SetReferenceImage(ref)
        f.SetInterpolator(sitk.sitkLinear)
        f.SetDefaultPixelValue(-1024.0)
        f.SetOutputPixelType(sitk.sitkInt16)
        f.SetNumberOfThreads(1)
        return sitk.GetArrayFromImage(f.Execute(image))[0]

    pm = ObliqueMap.through(affine, SHAPE, centre, down, right)

    load = os.getloadavg()[0]
    t_ours, a = median_ms(ours, args.frames)
    t_scipy, b = median_ms(scipy_way, args.frames)
    t_sitk, c = median_ms(sitk_way, args.frames)
    t_sitk1, c1 = median_ms(sitk_one_thread, args.frames)
    t_view, _ = median_ms(lambda: pm.image(array, pm.n_slices // 2), args.frames)
    assert np.array_equal(c, c1)
    inside = b != -1024
    print(f"double-oblique {SIZE}x{SIZE} reslice of a {SHAPE} int16 CT")
    print(f"medview   {t_ours:7.2f} ms")
    print(f"scipy     {t_scipy:7.2f} ms   ratio medview/scipy {t_ours / t_scipy:.2f}")
    print(
        f"SimpleITK {t_sitk:7.2f} ms   ratio medview/SimpleITK {t_ours / t_sitk:.2f}"
        f"   ({threads} threads)"
    )
    print(
        f"SimpleITK {t_sitk1:7.2f} ms   ratio medview/SimpleITK {t_ours / t_sitk1:.2f}   (1 thread)"
    )
    print(f"viewer's plane, {pm.size}x{pm.size} canvas: {t_view:.2f} ms")
    print(
        f"largest difference inside, HU: vs scipy "
        f"{int(np.abs(a[inside].astype(int) - b[inside]).max())}, vs SimpleITK "
        f"{int(np.abs(a[inside].astype(int) - c[inside]).max())}"
    )
    print(f"goal <= {GOAL_MS:g} ms: {'met' if t_ours <= GOAL_MS else 'MISSED'}")
    print(
        f"load average at the start {load:.2f}, now {os.getloadavg()[0]:.2f}"
        f" ({os.cpu_count()} cores)"
    )
    slabs(array, affine, pm, t_view, max(3, args.frames // 3))


def slabs(array: np.ndarray, affine: np.ndarray, pm, t_plane: float, frames: int) -> None:
    from medview.viewer.planes import Plane, plane_map
    from medview.viewer.slab import Slab, SlabMode, SlabProjector, oblique_slab

    axial, projector = plane_map(affine, SHAPE, Plane.AXIAL), SlabProjector(array)
    for mm in (10.0, 20.0):
        slab = Slab(SlabMode.MIP, mm)
        t_ob, _ = median_ms(lambda s=slab: oblique_slab(pm, array, pm.n_slices // 2, s), frames)
        t_or, _ = median_ms(
            lambda s=slab: projector.image(axial, SHAPE[0] // 2, s, SPACING[0]), frames
        )
        print(
            f"MIP {mm:g} mm, viewer's oblique plane: {t_ob:.1f} ms, ratio to its one plane "
            f"{t_ob / t_plane:.1f} ({round(mm / pm.pixel)} reslices); the orthogonal axial "
            f"slab {t_or:.1f} ms; goal <= {GOAL_MS:g} ms: {'met' if t_ob <= GOAL_MS else 'MISSED'}"
        )


if __name__ == "__main__":
    main()

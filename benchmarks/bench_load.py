"""Load a 300-slice 512² CT series with MedView and with SimpleITK in the same run.

Prints, for uncompressed and RLE: full load time (scan + pixels) and its ratio to SimpleITK's
ImageSeriesReader, time to the first displayable slice, and peak memory over the volume's own
bytes; then `medview info` and `medview --help` wall times. Goals (issue 2, on 2 cores): load
<= 0.5x SimpleITK, first slice <= 0.15 s, peak <= 1.3x, info < 1 s, --help < 0.5 s.

Run: python benchmarks/bench_load.py [--work DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_series import make_ct_series

CHILD = r"""
import json, resource, sys, time
which, folder = sys.argv[1], sys.argv[2]
def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 2**20
if which == 'medview':
    from medview.io.dicom.index import scan
    from medview.io.dicom.volume import load_series
    import numpy as np
    base = rss_mb()
    t0 = time.perf_counter(); first = []
    r = scan([folder]); t_scan = time.perf_counter() - t0
    def on_slice(i, img):
        if not first:
            first.append(time.perf_counter() - t0)
    v = load_series(r.series[0], on_slice=on_slice, first_index=len(r.series[0].slices) // 2)
    t = time.perf_counter() - t0
    arr = v.array
else:
    import SimpleITK as sitk
    base = rss_mb()
    t0 = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    img = reader.Execute(); t = time.perf_counter() - t0
    arr = sitk.GetArrayViewFromImage(img); first = [t]; t_scan = None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"t": t, "first": first[0], "scan": t_scan, "peak_mb": peak - base,
                  "vol_mb": arr.nbytes / 2**20, "dtype": str(arr.dtype),
                  "shape": list(arr.shape)}))
"""


def run_child(which: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "medview-bench")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for label, rle in (("uncompressed", False), ("RLE", True)):
        folder = make_ct_series(args.work / label, rle=rle)
        runs = {w: [run_child(w, folder) for _ in range(args.repeat)] for w in ("medview", "sitk")}
        med = {
            k: statistics.median(r[k] for r in runs["medview"])
            for k in ("t", "first", "scan", "peak_mb")
        }
        ref = {k: statistics.median(r[k] for r in runs["sitk"]) for k in ("t", "peak_mb")}
        vol = runs["medview"][0]["vol_mb"]
        print(f"[{label}] 300 x 512 x 512 ({runs['medview'][0]['dtype']}, {vol:.0f} MiB)")
        print(
            f"  MedView full load {med['t']:.3f} s (scan {med['scan']:.3f} s), "
            f"SimpleITK {ref['t']:.3f} s -> ratio {med['t'] / ref['t']:.2f}x (goal <= 0.5x)"
        )
        print(
            f"  first displayable slice {med['first']:.3f} s from start (incl. scan) "
            f"(goal <= 0.15 s)"
        )
        print(
            f"  peak memory {med['peak_mb']:.0f} MiB = {med['peak_mb'] / vol:.2f}x volume "
            f"(goal <= 1.3x); SimpleITK {ref['peak_mb'] / vol:.2f}x"
        )
    folder = args.work / "uncompressed"
    exe = [sys.executable, "-m", "medview"]
    print(
        f"medview info on the series: {wall([*exe, 'info', str(folder)], args.repeat):.3f} s "
        f"(goal < 1 s)"
    )
    print(f"medview --help: {wall([*exe, '--help'], args.repeat):.3f} s (goal < 0.5 s)")


if __name__ == "__main__":
    main()

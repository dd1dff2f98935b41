"""Issue 19's four paths in one run, each beside a reference measured in the same run, as one
table: path, MedView's figure, the reference's, the ratio and the goal.

- convert: `medview convert` of a 300 x 512² CT series to .nii against `dcm2niix` (time and
  peak memory of the whole process, from wait4's rusage);
- first image: `medview PATH` to the first painted image (bench_viewer's probe) against a
  bare PySide6 + pyqtgraph window painting one image;
- infer: `medview infer` with the bundled model on the 300-slice demo study, whole process,
  against a plain torch loop of the same network over the same slices (bench_infer's);
- train: `medview train` with the defaults on 8 demo studies (site B), against the goal only.

Start-up figures are the median of --repeat launches after one untimed launch of each (so
both sides find their bytecode cached and the files in the page cache, as an installed app
does). The machine's load average is printed beside the table: on a busy machine compare
ratios, not seconds. Goals are issue 19's, on this machine's 2 cores.

Run: python benchmarks/run_all.py [--work DIR] [--repeat N] [--paths convert,first,infer,train]
    [--quick]
  --quick: a smoke run on an 8 x 32² series (convert, first image, infer; no train), for the
  test that keeps this script working; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_series import make_ct_series  # noqa: E402

# A bare image window: the floor any viewer's first paint stands on.
MINIMAL_QT_CHILD = r"""
import json, sys, time
t_start = float(sys.argv[2])
import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
pg.setConfigOptions(imageAxisOrder="row-major")
view = pg.GraphicsLayoutWidget()
item = pg.ImageItem(np.zeros((512, 512), np.int16))
view.addViewBox().addItem(item)
marks = {}
class Probe(QtCore.QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QtCore.QEvent.Type.Paint and "first" not in marks:
            marks["first"] = time.time() - t_start
            marks["first_cpu"] = time.process_time()
            QtCore.QTimer.singleShot(0, app.quit)
        return False
probe = Probe()
view.viewport().installEventFilter(probe)
view.show()
QtCore.QTimer.singleShot(60_000, app.quit)
app.exec()
print(json.dumps(marks))
"""


PATHS = ("convert", "first", "infer", "train")


@dataclass
class Row:
    path: str
    medview: float | None
    reference: float | None
    unit: str
    goal: str
    met: bool | None
    note: str = ""

    def cells(self) -> list[str]:
        def fig(v: float | None) -> str:
            return "–" if v is None else f"{v:.2f} {self.unit}"

        ratio = (
            f"{self.medview / self.reference:.2f}x"
            if self.medview is not None and self.reference
            else "–"
        )
        verdict = {True: "met", False: "NOT met", None: "–"}[self.met]
        return [self.path, fig(self.medview), fig(self.reference), ratio, self.goal, verdict]


# Starts the measured command from a small process and reports its wall time, CPU time and
# peak RSS: a child forked from this (large) process would carry this process's RSS into its
# own ru_maxrss (the kernel keeps the high-water mark across exec).
LAUNCHER = r"""
import os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{time.perf_counter() - t0} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass
class Timed:
    """One run of a command: wall seconds, CPU seconds (user + system: on a loaded machine
    the figure waiting for a core distorts least), peak RSS in MiB (its own) and stdout."""

    wall: float
    cpu: float
    peak: float
    stdout: str


def run_timed(cmd: list[str], env: dict | None = None) -> Timed:
    """Run `cmd` once from LAUNCHER; a failure ends the benchmark with its last lines."""
    with tempfile.TemporaryDirectory() as tmp:
        marks = Path(tmp) / "usage"
        out = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(marks), *map(str, cmd)],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            tail = out.stderr.strip().splitlines()[-3:]
            raise SystemExit(
                f"{' '.join(map(str, cmd[:4]))} failed (exit {out.returncode}): {' / '.join(tail)}"
            )
        wall, maxrss_kib, cpu = marks.read_text().split()
    return Timed(float(wall), float(cpu), float(maxrss_kib) / 1024, out.stdout)


def child_env(work: Path) -> dict:
    """The environment of every timed child: offscreen Qt, a private data folder, and
    bytecode written (an installed app has it; PYTHONDONTWRITEBYTECODE would recompile
    every module at each start)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(QT_QPA_PLATFORM="offscreen", MEDVIEW_DATA_DIR=str(work / "data"))
    return env


def _cpu_note(what: str, med: float, ref: float | None, ref_name: str) -> str:
    """The CPU seconds beside the wall times, for a loaded machine."""
    if ref is None:
        return f"{what}: MedView {med:.2f} s"
    return f"{what}: MedView {med:.2f} s, {ref_name} {ref:.2f} s ({med / ref:.2f}x)"


def convert_rows(series: Path, work: Path, repeat: int, env: dict) -> list[Row]:
    medview = [sys.executable, "-m", "medview", "convert", str(series)]
    reference = ["dcm2niix", "-z", "n", "-f", "ref", "-o", str(work / "convert"), str(series)]
    runs: dict[str, list[Timed]] = {"medview": [], "dcm2niix": []}
    have_ref = shutil.which("dcm2niix") is not None
    for k in range(repeat + 1):  # the first of each is untimed
        out = work / "convert"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        run = run_timed([*medview, str(out / "ct.nii")], env)
        if k:
            runs["medview"].append(run)
        if have_ref:
            run = run_timed(reference, env)
            if k:
                runs["dcm2niix"].append(run)

    def median(which: str, figure: str) -> float | None:
        got = [getattr(r, figure) for r in runs[which]]
        return statistics.median(got) if got else None

    time_mv, time_ref = median("medview", "wall"), median("dcm2niix", "wall")
    peak_mv, peak_ref = median("medview", "peak"), median("dcm2niix", "peak")
    cpu_note = _cpu_note(
        "CPU (user + system) of the whole process, medians",
        median("medview", "cpu") or 0.0,
        median("dcm2niix", "cpu"),
        "dcm2niix",
    )
    note = "" if have_ref else "dcm2niix not installed; "
    return [
        Row(
            "convert to .nii: time",
            time_mv,
            time_ref,
            "s",
            "<= 1.2x dcm2niix",
            None if time_ref is None or time_mv is None else time_mv <= 1.2 * time_ref,
            note + cpu_note,
        ),
        Row(
            "convert to .nii: peak memory",
            peak_mv,
            peak_ref,
            "MiB",
            "<= 1.5x dcm2niix",
            None if peak_ref is None or peak_mv is None else peak_mv <= 1.5 * peak_ref,
            note.rstrip("; "),
        ),
    ]


def first_image_row(series: Path, repeat: int, env: dict) -> Row:
    from bench_viewer import APP_CHILD

    figures: dict[str, list[dict]] = {"medview": [], "minimal": []}
    for k in range(repeat + 1):
        for which, child in (("medview", APP_CHILD), ("minimal", MINIMAL_QT_CHILD)):
            run = run_timed([sys.executable, "-c", child, str(series), str(time.time())], env)
            marks = json.loads(run.stdout.strip().splitlines()[-1])
            if "first" not in marks:
                raise SystemExit(f"{which}: no first image painted")
            if k:
                figures[which].append(marks)

    def median(which: str, figure: str) -> float:
        return statistics.median(m[figure] for m in figures[which])

    med, ref = median("medview", "first"), median("minimal", "first")
    cpu_note = _cpu_note(
        "CPU (all threads) until the first paint, medians",
        median("medview", "first_cpu"),
        median("minimal", "first_cpu"),
        "the bare window",
    )
    return Row(
        "`medview PATH` to first image",
        med,
        ref,
        "s",
        "<= 0.8 s",
        med <= 0.8,
        f"reference: a bare PySide6 + pyqtgraph image window; {cpu_note}",
    )


def infer_row(series: Path, work: Path, env: dict) -> tuple[Row, dict]:
    from bench_infer import model_folder, run_child

    out = work / "infer"
    shutil.rmtree(out, ignore_errors=True)
    wall = run_timed(
        [
            sys.executable,
            "-m",
            "medview",
            "infer",
            str(series),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        env,
    ).wall
    timings = json.loads((out / "findings.json").read_text())["timings_s"]
    folder, _ = model_folder(None, work)
    plain = run_child("plain", series, folder, os.cpu_count() or 1, 1, "cpu")
    return (
        Row(
            "`medview infer`, bundled model",
            wall,
            plain["t"],
            "s",
            "<= 8 s",
            wall <= 8,
            "reference: a plain torch loop over the same slices (network only)",
        ),
        timings,
    )


def train_row(work: Path, env: dict) -> Row:
    from medview.demo import generate_demo_study

    data = work / "train-data"
    for seed in range(3001, 3009):
        folder = data / f"b-{seed}"
        if not (folder / "labels.nii.gz").exists():
            generate_demo_study(folder, seed=seed, site="b")
    out = work / "train-run"
    shutil.rmtree(out, ignore_errors=True)
    wall = run_timed(
        [
            sys.executable,
            "-m",
            "medview",
            "train",
            "--data",
            str(data),
            "--base",
            "lesion-seg",
            "--out",
            str(out),
        ],
        env,
    ).wall
    return Row("`medview train`, 8 studies, defaults", wall, None, "s", "<= 300 s", wall <= 300)


def table(rows: list[Row]) -> str:
    head = ["path", "MedView", "reference", "ratio", "goal", "verdict"]
    cells = [head, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "medview-bench")
    ap.add_argument("--repeat", type=int, default=3, help="timed launches per start-up figure")
    ap.add_argument(
        "--paths",
        default=",".join(PATHS),
        help=f"which paths to run, comma-separated (default: all of {PATHS})",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run on a tiny series")
    args = ap.parse_args(argv)
    paths = set(args.paths.split(","))
    if not paths <= set(PATHS):
        ap.error(f"--paths takes some of {', '.join(PATHS)}")
    work = args.work / ("quick" if args.quick else "full")
    work.mkdir(parents=True, exist_ok=True)
    env = child_env(work)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    if args.quick:
        series = make_ct_series(work / "series-8x32", n=8, size=32)
        infer_series, repeat = series, 1
    else:
        from medview.demo import generate_demo_study

        series = make_ct_series(args.work / "uncompressed")  # bench_load's series
        demo = work / "demo-1"
        if not (demo / "labels.nii.gz").exists():
            generate_demo_study(demo, seed=1, slices=300)
        infer_series, repeat = demo / "series", args.repeat
    rows = convert_rows(series, work, repeat, env) if "convert" in paths else []
    if "first" in paths:
        rows.append(first_image_row(series, repeat, env))
    stages: dict[str, float] = {}
    if "infer" in paths:
        infer, stages = infer_row(infer_series, work, env)
        rows.append(infer)
    if "train" in paths and not args.quick:
        rows.append(train_row(work, env))
    print(table(rows))
    for r in rows:
        if r.note:
            print(f"- {r.path}: {r.note}")
    if stages:
        print(
            "- infer phases (findings.json timings_s): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
        )
    load_after = os.getloadavg()
    print(
        f"- load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, on "
        f"{os.cpu_count()} cores; {time.perf_counter() - t0:.0f} s in all"
        + ("; --quick: figures mean nothing" if args.quick else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

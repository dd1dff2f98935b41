"""Cold start of the desktop app: seconds from launching the process to its main window on
the screen, as a radiologist would see it, measured from outside the app (no hook in it).

The app runs on a real X server (Xvfb, started here on a free display unless DISPLAY is
set), so the Qt xcb plugin and its system libraries load as on a desktop; the clock stops
when the X server reports a visible window named "MedView" (xdotool, polled every 10 ms).
Each run starts a new process with a new, empty data folder (first-run settings), then
closes it. Files are in the page cache after the first run: the median is a warm-disk start.

    python packaging/measure_start.py [--runs 5] -- dist/MedView/medview
    python packaging/measure_start.py -- .venv/bin/python -m medview

Prints one line per run and the median; needs Xvfb and xdotool (Debian: xvfb xdotool)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

POLL_S = 0.01
TIMEOUT_S = 60.0


@contextmanager
def x_display() -> Iterator[str]:
    """DISPLAY to use: the current one, or a private Xvfb for the duration."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        sys.exit("measure_start: neither DISPLAY nor Xvfb; install xvfb (Debian) to measure")
    for number in range(90, 140):
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(
            f"/tmp/.X{number}-lock"
        ):
            break
    display = f":{number}"
    # -noreset: by default the server resets when its last client leaves, and the next
    # start, arriving during that reset, fails with "could not connect to display"
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit(f"measure_start: Xvfb did not start on {display}")
            time.sleep(0.05)
        yield display
    finally:
        server.terminate()
        server.wait(10)


def window_visible(display: str) -> bool:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "^MedView"],
        env={**os.environ, "DISPLAY": display},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return found.returncode == 0


def one_start(command: Sequence[str], display: str) -> float:
    with tempfile.TemporaryDirectory(prefix="medview-start-") as tmp:
        env = {**os.environ, "DISPLAY": display, "MEDVIEW_DATA_DIR": tmp, "QT_QPA_PLATFORM": "xcb"}
        t0 = time.perf_counter()
        app = subprocess.Popen(
            [*command, "--log-file", os.path.join(tmp, "medview.log")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while not window_visible(display):
                if app.poll() is not None:
                    err = app.stderr.read().decode(errors="replace").strip()
                    sys.exit(
                        f"measure_start: the app exited ({app.returncode}) before its "
                        f"window showed: {err[-500:]}"
                    )
                if time.perf_counter() - t0 > TIMEOUT_S:
                    sys.exit(f"measure_start: no window within {TIMEOUT_S:g} s")
                time.sleep(POLL_S)
            return time.perf_counter() - t0
        finally:
            app.send_signal(signal.SIGTERM)
            try:
                app.wait(10)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("command", nargs="+", help="the app's command line (after --)")
    args = p.parse_args(argv)
    if shutil.which("xdotool") is None:
        sys.exit("measure_start: xdotool is missing; install xdotool (Debian) to measure")
    times = []
    with x_display() as display:
        for i in range(args.runs):
            seconds = one_start(args.command, display)
            times.append(seconds)
            print(f"start {i + 1}: {seconds:.2f} s to the first window", flush=True)
    print(
        f"cold start to the first window: median {statistics.median(times):.2f} s "
        f"(first {times[0]:.2f} s, {args.runs} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

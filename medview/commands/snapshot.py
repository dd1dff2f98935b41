"""`medview snapshot`: one view of a study drawn to PNG without a display, through the same
SliceView the app shows (medview/ui/snapshot.py), for key images, reports and scripts.

Option checks that need no pixels (plane, window, size, output file) run before the study is
read, so a typo costs no load; the slice range is checked once the volume's shape is known.
Usage mistakes end in one line on stderr and exit 2; unreadable input or an unwritable
output in one line and exit 1 (cli.py's convention). Qt is imported only here, inside the
function, so the rest of the command line never pays for it."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from medview.commands import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from medview.core.windowing import Window

PLANES = ("axial", "coronal", "sagittal")
MIN_SIDE, MAX_SIDE = 16, 8192


class UsageError(ValueError):
    """A bad option value; its message is the one line the user reads."""


def parse_window(text: str) -> Window:
    """A CT preset name (any case) or "W/L", width then level, e.g. "1500/-600"."""
    from medview.core.windowing import CT_PRESETS, Window

    key = text.strip().lower()
    for preset in CT_PRESETS:
        if preset.name.lower() == key:
            return preset
    width_text, sep, level_text = key.partition("/")
    try:
        width, level = float(width_text), float(level_text)
    except ValueError:
        width = level = math.nan
    if not sep or not (math.isfinite(width) and math.isfinite(level)) or width <= 0:
        names = ", ".join(p.name.lower() for p in CT_PRESETS)
        raise UsageError(
            f"--window {text!r} is neither a preset ({names}) nor WIDTH/LEVEL "
            f"with a width above 0, e.g. 1500/-600"
        )
    return Window(level, width, "Custom")


def parse_size(text: str) -> tuple[int, int]:
    """ "WxH" in pixels, each side 16 to 8192."""
    w_text, sep, h_text = text.strip().lower().partition("x")
    if sep and w_text.isdigit() and h_text.isdigit():
        w, h = int(w_text), int(h_text)
        if MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE:
            return w, h
    raise UsageError(
        f"--size {text!r} must be WIDTHxHEIGHT in pixels, each from {MIN_SIDE} "
        f"to {MAX_SIDE}, e.g. 512x512"
    )


def parse_plane(text: str | None) -> str | None:
    if text is None:
        return None
    if text.strip().lower() not in PLANES:
        raise UsageError(f"--plane {text!r} must be one of {', '.join(PLANES)}")
    return text.strip().lower()


def parse_slice(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(
            f"--slice {text!r} must be a whole number (1 is the first image)"
        ) from None


def check_out(out: str) -> Path:
    """The output must be a .png file: the bytes written are PNG whatever the name says."""
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise UsageError(f"--out {out!r} must name a .png file")
    return path


def _problem(message: str) -> int:
    print(f"medview: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_snapshot(
    path: str,
    out: str,
    *,
    plane: str | None = None,
    slice_number: str | None = None,
    window: str | None = None,
    size: str = "512x512",
    series: str | None = None,
    overlays: bool = True,
) -> int:
    """Load PATH, draw one slice as the viewer shows it and write OUT atomically. Slice
    numbers are 1-based as in the corner text ("Im k/N"); by default the middle slice of
    the series' own plane in its opening window."""
    try:
        plane_name, number = parse_plane(plane), parse_slice(slice_number)
        win = parse_window(window) if window is not None else None
        wh, out_path = parse_size(size), check_out(out)
    except UsageError as exc:
        print(f"medview: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # checked before the load, so a wrong path does not cost the reading of a whole series
    folder = out_path.parent
    if not folder.is_dir():
        return _problem(
            f"{folder}: no such folder for the snapshot; create it or choose another --out"
        )
    if not os.access(folder, os.W_OK):
        return _problem(
            f"{folder}: cannot write the snapshot here; choose a folder you can write to"
        )

    from medview.io.open_volume import load_volume
    from medview.io.workspace import atomic_write_bytes
    from medview.viewer.planes import Plane, native_plane, plane_map

    volume, _ = load_volume([path], series)
    for w in volume.metadata.warnings:
        print(f"medview: warning: {w.message}", file=sys.stderr)
    chosen = Plane(plane_name) if plane_name else native_plane(volume.affine)
    n = plane_map(volume.affine, volume.array.shape, chosen).n_slices
    # the middle slice, rounded as ViewerState rounds the crosshair, so it matches the app
    index = round((n - 1) / 2) if number is None else number - 1
    if not 0 <= index < n:
        print(
            f"medview: --slice {number} is out of range: the {chosen.value} plane has "
            f"slices 1 to {n}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if win is not None and not volume.windowed:
        print("medview: warning: --window is ignored for an 8-bit colour image", file=sys.stderr)

    from medview.ui.snapshot import png_bytes, render_view

    image = render_view(volume, chosen, index, window=win, size=wh, overlays=overlays)
    try:
        atomic_write_bytes(out_path, png_bytes(image))
    except OSError as exc:
        return _problem(
            f"{out_path}: cannot write the snapshot ({exc.strerror or exc}); "
            f"choose a folder you can write to"
        )
    print(f"wrote {out_path} ({chosen.value} image {index + 1}/{n}, {wh[0]}x{wh[1]})")
    return EXIT_OK

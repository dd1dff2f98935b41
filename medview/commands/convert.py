"""`medview convert`: one series out to NIfTI, NRRD, MHA or .npy."""

from __future__ import annotations

import sys
from pathlib import Path


def writable_suffix(out: str) -> bool:
    from medview.io import image_files

    return any(out.lower().endswith(s) for s in image_files.SUPPORTED_WRITE_SUFFIXES)


def run_convert(path: str, out: str, series_key: str | None) -> int:
    from medview.io import image_files
    from medview.io.open_volume import load_volume

    volume, _ = load_volume([path], series_key)
    for w in volume.metadata.warnings:
        print(f"medview: warning: {w.message}", file=sys.stderr)
    for w in image_files.write_volume(volume, out):
        print(f"medview: warning: {w.message}", file=sys.stderr)
    dims = " x ".join(str(d) for d in volume.array.shape)
    print(f"wrote {Path(out)} ({dims}, {volume.array.dtype})")
    return 0

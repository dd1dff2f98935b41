"""The output folder: refuse folders that hold anything else, build the study in a hidden
folder inside it, and only then move the finished files into place.

A cancelled or failed run therefore never leaves a half-written series looking complete, and
a later run replaces a previous demo output (recognised by its lesions.json) but nothing else.
Nothing is ever written or removed outside the output folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from medview.core.errors import InvalidInputError

GENERATOR = "medview.demo"
SERIES_DIR = "series"
LABELS_NAME = "labels.nii.gz"
SEGMENTS_NAME = "labels.segments.json"  # the label map's segment table (io.labels.files)
LESIONS_NAME = "lesions.json"
README_NAME = "README.txt"
OUTPUTS = (SERIES_DIR, LABELS_NAME, SEGMENTS_NAME, LESIONS_NAME, README_NAME)
_PARTIAL_PREFIX = ".medview-demo-partial-"
_OLD_PREFIX = ".medview-demo-old-"


def _is_ours(name: str) -> bool:
    return name in OUTPUTS or name.startswith((_PARTIAL_PREFIX, _OLD_PREFIX))


def _previous_output(folder: Path) -> bool:
    try:
        meta = json.loads((folder / LESIONS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("generator") == GENERATOR


def prepare(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Check the output folder (creating it and its parents if needed) and make the hidden
    work folder in it. Returns (out_dir, work_dir)."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise InvalidInputError(
            str(out), "is a file, not a folder; give a folder for the demo study"
        )
    if out.is_dir():
        names = [p.name for p in out.iterdir()]
        leftovers = [n for n in names if n.startswith((_PARTIAL_PREFIX, _OLD_PREFIX))]
        visible = [n for n in names if n not in leftovers]
        if visible and not (all(_is_ours(n) for n in visible) and _previous_output(out)):
            raise InvalidInputError(
                str(out),
                "is a folder that already holds other files; "
                "give an empty or new folder, or a previous demo output",
            )
        for name in leftovers:  # from an interrupted run
            shutil.rmtree(out / name, ignore_errors=True)
    else:
        # parents are created as `mkdir -p` and every exporter does; a parent that is a file
        # or unwritable ends in the OSError sentence below
        try:
            out.mkdir(parents=True)
        except OSError as e:
            raise InvalidInputError(
                str(out), f"cannot be created ({e.strerror or e}); choose a folder you can write to"
            ) from None
    try:
        work = Path(tempfile.mkdtemp(prefix=_PARTIAL_PREFIX, dir=out))
    except OSError as e:
        raise InvalidInputError(
            str(out), f"is not writable ({e.strerror or e}); choose a folder you can write to"
        ) from None
    return out, work


def publish(out: Path, work: Path) -> None:
    """Move the finished outputs from `work` into `out`, replacing a previous demo output."""
    old = Path(tempfile.mkdtemp(prefix=_OLD_PREFIX, dir=out))
    for name in OUTPUTS:
        if (out / name).exists():
            os.replace(out / name, old / name)
    for name in OUTPUTS:
        if (work / name).exists():
            os.replace(work / name, out / name)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def discard(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)

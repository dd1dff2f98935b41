"""Where DICOM bytes come from: files in folder trees, members of zip archives, and the
files a DICOMDIR references — each enumerated safely.

A path inside an archive or a DICOMDIR that would lead outside its folder is never opened,
and archive members are read with size caps so a zip bomb cannot exhaust memory."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from medview.core.errors import InvalidInputError, ResourceLimitError
from medview.core.limits import format_bytes, max_volume_bytes
from medview.core.series import Skipped, SourceRef

# Files that are never images and need no "skipped" line.
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "LOCKFILE", "VERSION"}
# A zip member that inflates more than this many times its compressed size is a bomb
# (DICOM images compress at most ~10-50x even when mostly air).
MAX_ZIP_RATIO = 1000
MAX_ZIP_RATIO_FLOOR = 64 * 1024 * 1024  # ratios are only checked above this size


def is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or (path.is_file() and zipfile.is_zipfile(path))


def _unsafe_member(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return p.is_absolute() or ".." in p.parts or (len(name) > 1 and name[1] == ":")


def iter_zip(path: Path, skipped: list[Skipped]) -> Iterator[SourceRef]:
    """Members of a zip archive, in name order; unsafe or oversized members are skipped."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = sorted(zf.infolist(), key=lambda i: i.filename)
    except (zipfile.BadZipFile, OSError) as exc:
        skipped.append(Skipped(str(path), f"is not a readable zip archive ({exc})"))
        return
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename
        where = f"{path}!{name}"
        if _unsafe_member(name):
            skipped.append(Skipped(where, "points outside the archive's folder; it was not "
                                          "opened or extracted"))
            continue
        if PurePosixPath(name).name in IGNORED_NAMES or name.startswith("__MACOSX/"):
            continue
        if info.file_size > max_volume_bytes() or (
            info.file_size > MAX_ZIP_RATIO_FLOOR
            and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1)
        ):
            skipped.append(Skipped(where, f"would inflate to {format_bytes(info.file_size)} "
                                          f"from {format_bytes(info.compress_size)}; refused as "
                                          f"a possible zip bomb"))
            continue
        yield SourceRef(str(path), name)


def iter_folder(folder: Path) -> Iterator[Path]:
    """Every regular file below `folder`, depth first in sorted order; links to folders
    are not followed (a link loop would never end)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name in IGNORED_NAMES or name.startswith("._"):
                continue
            p = Path(root) / name
            if p.is_file():
                yield p


def resolve_dicomdir_reference(dicomdir: Path, file_id: list[str] | str) -> Path | None:
    """The file a DICOMDIR record references, or None if it would lead outside the
    DICOMDIR's folder (a hostile "../" or absolute path)."""
    parts = [file_id] if isinstance(file_id, str) else list(file_id)
    if not parts or any(p in ("..", ".", "") or "/" in p or "\\" in p or ":" in p
                        for p in parts):
        return None
    base = dicomdir.parent.resolve()
    target = (base.joinpath(*parts)).resolve()
    if base != target and base not in target.parents:
        return None
    if not target.exists():
        # media written on case-insensitive systems often differ in case
        for cand in target.parent.glob("*") if target.parent.exists() else []:
            if cand.name.upper() == target.name.upper():
                return cand
    return target


class SourceOpener:
    """Opens sources, keeping zip archives open across members of one load."""

    def __init__(self) -> None:
        self._zips: dict[str, zipfile.ZipFile] = {}
        # the last member read, so frames of one multi-frame member inflate it only once
        self._last: tuple[SourceRef, bytes] | None = None

    def __enter__(self) -> SourceOpener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for zf in self._zips.values():
            zf.close()
        self._zips.clear()
        self._last = None

    def size(self, ref: SourceRef) -> int:
        if ref.member is None:
            return os.path.getsize(ref.path)
        return self._zip(ref.path).getinfo(ref.member).file_size

    def open(self, ref: SourceRef) -> BinaryIO:
        """A binary file object positioned at 0; the caller closes it."""
        if ref.member is None:
            try:
                return open(ref.path, "rb")
            except OSError as exc:
                raise InvalidInputError(ref.path, f"cannot be opened ({exc.strerror})") from exc
        if self._last is not None and self._last[0] == ref:
            return io.BytesIO(self._last[1])
        zf = self._zip(ref.path)
        info = zf.getinfo(ref.member)
        if info.file_size > max_volume_bytes():
            raise ResourceLimitError(str(ref), "is larger than this machine can load")
        try:
            with zf.open(info) as fh:
                data = fh.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise InvalidInputError(str(ref), f"could not be extracted ({exc})") from exc
        if len(data) > info.file_size:
            raise ResourceLimitError(str(ref), "inflates past its declared size; refused")
        self._last = (ref, data)
        return io.BytesIO(data)

    def _zip(self, path: str) -> zipfile.ZipFile:
        zf = self._zips.get(path)
        if zf is None:
            try:
                zf = self._zips[path] = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise InvalidInputError(path, f"is not a readable zip archive ({exc})") from exc
        return zf

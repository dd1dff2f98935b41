"""Where image bytes come from: files in folder trees, members of zip archives, the files
a DICOMDIR references and the data files a MetaImage / NRRD header names — each safely.

A path inside an archive, a DICOMDIR or a MetaImage / NRRD header that would lead outside
its folder (by "..", an absolute path or a link) is never opened, and archive members are
read with size caps so a zip bomb cannot exhaust memory."""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
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
MAX_HEADER_BYTES = 1 << 20  # of a MetaImage / NRRD header, where its data file is named
_MHD_DATA_FILE = re.compile(r"^[ \t]*ElementDataFile[ \t]*[=:](.*)$", re.M | re.I)
_NRRD_DATA_FILE = re.compile(r"^data ?file:(.*)$", re.M | re.I)


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
            skipped.append(
                Skipped(
                    where, "points outside the archive's folder; it was not opened or extracted"
                )
            )
            continue
        if PurePosixPath(name).name in IGNORED_NAMES or name.startswith("__MACOSX/"):
            continue
        if info.file_size > max_volume_bytes() or (
            info.file_size > MAX_ZIP_RATIO_FLOOR
            and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1)
        ):
            skipped.append(
                Skipped(
                    where,
                    f"would inflate to {format_bytes(info.file_size)} "
                    f"from {format_bytes(info.compress_size)}; refused as "
                    f"a possible zip bomb",
                )
            )
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
    if not parts or any(p in ("..", ".", "") or "/" in p or "\\" in p or ":" in p for p in parts):
        return None
    base = dicomdir.parent.resolve()
    target = (base.joinpath(*parts)).resolve()
    if not _inside(base, target):
        return None
    if not target.exists():
        # media written on case-insensitive systems often differ in case; the file found
        # that way may be a link too, and must stay inside the folder as well
        for cand in target.parent.glob("*") if target.parent.exists() else []:
            if cand.name.upper() == target.name.upper():
                found = cand.resolve()
                return found if _inside(base, found) else None
    return target


def _inside(base: Path, target: Path) -> bool:
    """Whether `target` (resolved) is `base` (resolved) or lies below it."""
    return base == target or base in target.parents


def check_detached_data_files(header: Path) -> None:
    """Refuse a MetaImage or NRRD header whose detached data file (ElementDataFile /
    data file, a LIST of them or a numbered pattern) is an absolute path or leads outside
    the header's folder, links included: opening a study must not read `../../etc/shadow`."""
    try:
        with open(header, "rb") as fh:
            text = fh.read(MAX_HEADER_BYTES + 1).decode("latin-1")
    except OSError as exc:
        raise InvalidInputError(str(header), f"cannot be opened ({exc.strerror})") from exc
    base = header.parent.resolve()
    for name in _data_file_names(text, header):
        shown = name if len(name) <= 80 else name[:77] + "..."
        if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
            raise InvalidInputError(
                str(header),
                f"names its data file by an absolute path "
                f"({shown}); MedView reads data files only "
                f"from the header's own folder",
            )
        # a numbered pattern (slice%03d.raw) is checked by its folder part
        plain = re.sub(r"%[-+ #0]*\d*[diouxX]", "0", name).replace("\\", "/")
        if not _inside(base, (base / plain).resolve()):
            raise InvalidInputError(
                str(header), f"names a data file outside its own folder ({shown}); refused"
            )


def _data_file_names(text: str, header: Path) -> list[str]:
    """The data file names a MetaImage or NRRD header gives: none for LOCAL (attached
    data), the lines after a LIST, the pattern of a numbered series, else the one name."""
    nrrd = text.startswith("NRRD")
    head = text.split("\n\n", 1)[0] if nrrd else text
    field = (_NRRD_DATA_FILE if nrrd else _MHD_DATA_FILE).search(head)
    if field is None:
        return []
    value = field.group(1).strip()
    if value.upper() == "LOCAL":
        return []
    if value.upper().startswith("LIST"):
        if len(text) > MAX_HEADER_BYTES:
            raise ResourceLimitError(
                str(header), "lists more data files than MedView reads from one header; refused"
            )
        rest = head[field.end() :] if nrrd else text[field.end() :]
        return [line.strip() for line in rest.splitlines() if line.strip()]
    tokens = value.split()
    numbered = len(tokens) in (4, 5) and all(re.fullmatch(r"-?\d+", t) for t in tokens[1:4])
    return [tokens[0]] if numbered else [value]


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

"""The user's store: the data folder MedView keeps what the reader makes in (io.saved says
where each thing lives in it), and the one way it writes files: atomically.

MEDVIEW_DATA_DIR overrides the folder (tests, portable installs); otherwise the platform's
user data folder. Nothing is ever written next to source DICOM files."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from medview.core.errors import StoreFileProblem


def data_dir() -> Path:
    override = os.environ.get("MEDVIEW_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("medview", appauthor=False))


def safe_name(key: str) -> str:
    """A file name for a UID-like key: UIDs are digits and dots, but keys from odd files
    may hold anything, and must never become a path outside the store."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:180].strip(".")
    return name or "unnamed"


def atomic_write_bytes(path: Path, data: bytes, sync_folder: bool = True) -> None:
    """Write so a crash leaves either the old file or the new one, never half of either:
    temp file in the same folder, fsync, rename, fsync the folder. `sync_folder=False`
    skips the last step where losing the rename in a power cut only means the file is
    fetched again (received PACS instances: a retrieval resumes what is missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if not sync_folder:
        return
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename is still atomic
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def keep_aside(path: Path, move: bool) -> Path:
    """Keep a file the reader's work lives in but MedView cannot use as
    <name>.damaged-<n> (first free n): moved when nothing in it can be read, copied when
    some entries survive. Nothing the reader made is ever deleted."""
    n = 1
    while (aside := path.with_name(f"{path.name}.damaged-{n}")).exists():
        n += 1
    if move:
        path.rename(aside)
    else:
        shutil.copy2(path, aside)
    return aside


def read_store_file(path: Path, fmt: str, version: int, what: str) -> dict[str, Any] | None:
    """The document of one of the store's versioned JSON files ({"format": fmt, "version":
    n, ...}, n <= `version`), None when there is no such file; otherwise StoreFileProblem.
    `what` names the kind of file in the reason ("measurements", "labels"). What the
    document must hold besides is the caller's to check."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StoreFileProblem(f"it could not be read ({err.strerror or err})", False) from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise StoreFileProblem("it is not UTF-8 text", True) from None
    except json.JSONDecodeError as err:
        raise StoreFileProblem(
            f"it is not valid JSON: {err.msg} at line {err.lineno}", True
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise StoreFileProblem(f"it is not a MedView {what} file", True)
    found = doc.get("version")
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise StoreFileProblem(f"its version {found!r} is not valid", True)
    if found > version:
        raise StoreFileProblem(f"it was saved by a newer MedView (format {found})", False)
    return doc


def reader_name() -> str:
    """The operating-system user, for `by`; "unknown" where the system will not say."""
    try:
        return getpass.getuser() or "unknown"
    except (OSError, KeyError, ImportError):  # no login name, no passwd entry, no pwd
        return "unknown"

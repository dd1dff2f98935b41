"""Where received DICOM files go: <data>/pacs/received/<study>/<series>/<instance>.dcm, the
three parts being UIDs checked against the UID syntax (never names or other dataset values),
so a hostile dataset whose UIDs look like paths cannot write outside the folder. Each file is
written atomically; a full disk stops with one sentence and keeps what arrived."""

from __future__ import annotations

import errno
import re
from pathlib import Path

from medview.io.workspace import atomic_write_bytes
from medview.net.errors import DiskFullError
from medview.net.nodes import pacs_dir

# PS3.5 9.1: components of digits without leading zeros (except "0"), dots between, 64 max
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_valid_uid(uid: object) -> bool:
    return isinstance(uid, str) and len(uid) <= 64 and _UID.match(uid) is not None


def received_dir() -> Path:
    return pacs_dir() / "received"


class InvalidUidError(ValueError):
    """A dataset's UID is not a UID; the file is refused, never stored."""


def instance_path(root: Path, study_uid: str, series_uid: str, sop_uid: str) -> Path:
    for what, uid in (("study", study_uid), ("series", series_uid), ("instance", sop_uid)):
        if not is_valid_uid(uid):
            raise InvalidUidError(f"the {what} UID {str(uid)[:70]!r} is not a valid UID")
    return root / study_uid / series_uid / f"{sop_uid}.dcm"


def store_instance(
    root: Path, study_uid: str, series_uid: str, sop_uid: str, encoded: bytes
) -> Path:
    """Write one received instance (a complete Part 10 file) atomically; DiskFullError when
    the disk is full (the half-written temporary file is removed by the atomic write)."""
    path = instance_path(root, study_uid, series_uid, sop_uid)
    try:
        # the folder is not fsynced: a rename lost in a power cut is fetched again
        atomic_write_bytes(path, encoded, sync_folder=False)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                str(root),
                "the disk is full; the retrieval stopped and the instances that arrived are kept",
            ) from None
        raise
    return path

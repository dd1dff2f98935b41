"""The patient key: a salted hash of the Patient ID, enough to keep one patient's studies on
one side of a training split without keeping the ID.

An unsalted SHA-256 of a numeric record number is reversed by hashing every number (a
billion of them take minutes), so the key is salted per installation: 32 random bytes made
once in MedView's data folder (io.saved.patient_salt_file), readable by the user alone
(0600). Label maps saved before the salt carry the unsalted ("legacy") key; they stay
readable as they are, and `current_key` turns a legacy key into the salted one wherever the
images are at hand to read the Patient ID again (training reads them anyway), so old and new
label maps of one patient still count as one patient."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

from medview.core.errors import InvalidInputError

log = logging.getLogger(__name__)

SALT_BYTES = 32


def _salt_file() -> Path:
    from medview.io import saved

    return saved.patient_salt_file()


def installation_salt() -> bytes:
    """This installation's salt, created on first use (exclusively, so two processes
    starting at once agree on one) with mode 0600."""
    path = _salt_file()
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = _create(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            str(path), f"cannot be read ({exc}); MedView needs it to name patients without their ID"
        ) from exc
    try:
        salt = bytes.fromhex(text)
    except ValueError:
        salt = b""
    if len(salt) != SALT_BYTES:
        raise InvalidInputError(
            str(path),
            "is not a MedView salt (64 hex digits); restore it "
            "from a backup, or remove it to start a new one "
            "(existing patient keys then no longer match)",
        )
    return salt


def _create(path: Path) -> str:
    text = secrets.token_hex(SALT_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another process made one first: use that one
        except FileExistsError:
            return path.read_text(encoding="ascii").strip()
        except OSError:  # a file system without hard links: last writer wins
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return text


def patient_key(patient_id: str) -> str:
    """16 hex digits of SHA-256 over this installation's salt and the Patient ID; "" for
    no ID."""
    if not patient_id:
        return ""
    digest = hashlib.sha256(installation_salt() + b"\x1f" + patient_id.encode("utf-8"))
    return digest.hexdigest()[:16]


def legacy_key(patient_id: str) -> str:
    """The unsalted key label maps saved before the salt carry."""
    return hashlib.sha256(patient_id.encode("utf-8")).hexdigest()[:16] if patient_id else ""


def current_key(stored: str, source_files: tuple[str, ...]) -> str:
    """The salted key for a stored one: as it is when it is salted already; a legacy key
    turned into the salted one by reading the Patient ID from the first of its image files
    that still reads (kept as it is when none does)."""
    if not stored:
        return stored
    for name in source_files:
        patient_id = _patient_id(name)
        if patient_id is None:
            continue
        return patient_key(patient_id) if legacy_key(patient_id) == stored else stored
    return stored


def _patient_id(name: str) -> str | None:
    """The Patient ID in a DICOM file's header, None when the file is gone or unreadable
    (a zip member, "archive!member", is read from its archive)."""
    import pydicom

    from medview.core.series import SourceRef
    from medview.io.sources import SourceOpener

    path, sep, member = name.partition("!")
    ref = SourceRef(path, member if sep else None)
    try:
        with SourceOpener() as opener, opener.open(ref) as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, specific_tags=["PatientID"])
    except Exception:  # a missing, moved or damaged file: try the next one
        log.debug("no Patient ID read from a label map's source file", exc_info=True)
        return None
    return str(ds.get("PatientID", "") or "")

"""A bound on the PDUs MedView reads. pynetdicom reads whatever length a peer's PDU header
claims (up to 4 GiB, 4 KiB at a time) before it decodes anything, so a hostile or broken
peer could make MedView hold gigabytes, or keep its reactor thread reading long after the
operation's timeout. MedView reads no PDU longer than it announced: after the association
is established, the maximum PDU length we negotiated (the standard's limit for P-DATA-TF;
the other PDUs are a few bytes); before it, ASSOCIATION_PDU_CAP for the A-ASSOCIATE
request or answer. Past the bound the connection is closed at once (pynetdicom aborts the
association as for a broken connection) and the length is kept for the one sentence
`problem()` gives the reader.

pynetdicom has no setting for this: install() wraps its AssociationSocket.recv, which the
reactor calls twice per PDU (the 6-byte header, then the length the header claims)."""

from __future__ import annotations

import socket
import threading
import weakref
from contextlib import suppress
from typing import Any

# An A-ASSOCIATE-RQ proposing pynetdicom's 128 contexts with a dozen transfer syntaxes each
# is about 50 KiB; nothing legitimate comes near this before the association is established.
ASSOCIATION_PDU_CAP = 1 << 20
# what a peer may send when we announced no maximum (0: "unlimited")
UNLIMITED_CAP = 64 << 20

_lock = threading.Lock()
_installed = False
# association -> (the PDU length the peer claimed, the most MedView would read)
_refused: weakref.WeakKeyDictionary[Any, tuple[int, int]] = weakref.WeakKeyDictionary()


class PduTooLarge(OSError):
    """Raised inside pynetdicom's reader: it handles an OSError as a broken connection."""


def limit(assoc: Any) -> int:
    """The longest PDU MedView reads on `assoc` now."""
    if not assoc.is_established:
        return ASSOCIATION_PDU_CAP
    ours = assoc.requestor if assoc.is_requestor else assoc.acceptor
    return ours.maximum_length or UNLIMITED_CAP


def install() -> None:
    """Wrap pynetdicom's socket reads (once per process; called before every association)."""
    global _installed
    with _lock:
        if _installed:
            return
        from pynetdicom.transport import AssociationSocket

        read = AssociationSocket.recv

        def bounded_recv(self: Any, nr_bytes: int) -> bytearray:
            bound = limit(self.assoc)
            if nr_bytes > bound:
                _refused[self.assoc] = (nr_bytes, bound)
                with suppress(OSError):  # the peer stops sending; pynetdicom closes it
                    self.socket.shutdown(socket.SHUT_RDWR)
                raise PduTooLarge(f"a PDU of {nr_bytes} bytes, over the {bound} accepted")
            return read(self, nr_bytes)

        AssociationSocket.recv = bounded_recv  # type: ignore[method-assign]
        _installed = True


def problem(assoc: Any) -> str | None:
    """What the reader is told when `assoc` ended on an oversized PDU; None otherwise."""
    refused = _refused.get(assoc)
    if refused is None:
        return None
    claimed, bound = refused
    return (
        f"sent a PDU of {claimed:,} bytes, more than the {bound:,} MedView accepts; "
        f"the association was aborted"
    )

"""A Study Root C-FIND in the calling thread, without pynetdicom's reactor. Listing 1,000
studies through pynetdicom took about twice findscu's time: each answer passed its reactor
thread (PDUs read and turned into primitives through pydicom, queues, and the GIL handed
between two threads), 0.4 s of CPU there and 0.3 s in the caller (docs/pacs.md). Here one
thread writes the request and reads the answers' PDUs straight from the socket, and each
answer's identifier is handed over as its undecoded elements.

It proposes Implicit VR Little Endian only (every node supports it), reads no PDU longer
than it announced (MAX_PDU; net.pdu_limit's rule), and every failure is a NetworkError
sentence as in net.dimse. The upper-layer PDUs are encoded and decoded by pynetdicom's PDU
classes; only the P-DATA exchange is written here (PS3.8 9.3, PS3.7 E). With network
debugging on (MEDVIEW_NET_DEBUG) each answer is logged whole, as pynetdicom did; never
otherwise: answers hold patient names and IDs."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Iterator

from medview.net.errors import NetworkError
from medview.net.logs import network_debugging
from medview.net.nodes import DimseNode

log = logging.getLogger(__name__)

IMPLICIT_LE = "1.2.840.10008.1.2"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
MAX_PDU = 1 << 20  # announced; a longer PDU from the peer ends the query
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
NO_DATASET = 0x0101
_HEADER = struct.Struct(">BBL")
_ELEMENT = struct.Struct("<HHL")

# (group, element) -> raw value bytes, in the order they came
Elements = dict[tuple[int, int], bytes]


def elements(data: bytes) -> Elements | None:
    """The top-level elements of an Implicit VR Little Endian dataset; None when it holds
    an element of undefined length (a sequence to walk: the caller decodes it with pydicom
    instead) or ends inside an element."""
    out: Elements = {}
    pos, end = 0, len(data)
    while pos + 8 <= end:
        group, elem, length = _ELEMENT.unpack_from(data, pos)
        pos += 8
        if length == 0xFFFFFFFF:
            return None
        out[(group, elem)] = data[pos : pos + length]
        pos += length
    return out if pos == end else None


def _command(field: int, message_id: int, affected: str) -> bytes:
    """A C-FIND-RQ command set, Implicit VR Little Endian, with its group length."""
    uid = affected.encode() + (b"\0" if len(affected) % 2 else b"")
    body = b"".join(
        (
            _ELEMENT.pack(0, 0x0002, len(uid)) + uid,
            _ELEMENT.pack(0, 0x0100, 2) + struct.pack("<H", field),
            _ELEMENT.pack(0, 0x0110, 2) + struct.pack("<H", message_id),
            _ELEMENT.pack(0, 0x0700, 2) + struct.pack("<H", 0),  # priority: medium
            _ELEMENT.pack(0, 0x0800, 2) + struct.pack("<H", 0x0000),  # a dataset follows
        )
    )
    return _ELEMENT.pack(0, 0x0000, 4) + struct.pack("<L", len(body)) + body


class _Link:
    """One association's socket: PDUs out, PDUs and PDVs in."""

    def __init__(self, node: DimseNode, sock: socket.socket) -> None:
        self.node, self.sock = node, sock
        self.peer_max = 0
        self.associated = False

    def fail(self, problem: str) -> NetworkError:
        return NetworkError(self.node.name, problem)

    def _read(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            try:
                chunk = self.sock.recv(min(n - got, 1 << 16))
            except TimeoutError:
                what = "the C-FIND" if self.associated else "the association request"
                raise self.fail(f"did not answer {what} within {self.node.timeout_s:g} s") from None
            except OSError as err:
                raise self.fail(f"broke the connection ({err.strerror or err})") from None
            if not chunk:
                raise self.fail(
                    "closed the connection in the middle of the C-FIND"
                    if self.associated
                    else "closed the connection without accepting the association; is it a "
                    "DICOM node?"
                )
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def pdu(self) -> tuple[int, bytes]:
        kind, _, length = _HEADER.unpack(self._read(6))
        if not 0x01 <= kind <= 0x07:
            raise self.fail(
                "sent bytes that are not a DICOM PDU"
                if self.associated
                else "closed the connection without accepting the association; is it a DICOM node?"
            )
        if length > MAX_PDU:
            raise self.fail(
                f"sent a PDU of {length:,} bytes, more than the {MAX_PDU:,} MedView accepts; "
                f"the association was aborted"
            )
        return kind, self._read(length)

    def send(self, kind: int, body: bytes) -> None:
        self.sock.sendall(_HEADER.pack(kind, 0, len(body)) + body)

    def send_message(self, command: bytes, dataset: bytes) -> None:
        """The command and the dataset as P-DATA-TF PDUs within the peer's maximum."""
        room = (self.peer_max or MAX_PDU) - 6  # an item's length, context and header bytes
        for is_command, data in ((True, command), (False, dataset)):
            for start in range(0, max(len(data), 1), room):
                last = start + room >= len(data)
                flags = (1 if is_command else 0) | (2 if last else 0)
                part = data[start : start + room]
                item = struct.pack(">LBB", len(part) + 2, 1, flags) + part
                self.send(0x04, item)

    def messages(self) -> Iterator[tuple[bytes, bytes | None]]:
        """Each DIMSE message the peer sends: (command set, dataset or None)."""
        command, dataset = bytearray(), bytearray()
        have_command = False
        while True:
            kind, body = self.pdu()
            if kind == 0x07:
                raise self.fail("aborted the association in the middle of the C-FIND")
            if kind != 0x04:
                raise self.fail(f"sent an unexpected PDU (type 0x{kind:02X}) during the C-FIND")
            pos = 0
            while pos + 6 <= len(body):
                length, _cx, flags = struct.unpack_from(">LBB", body, pos)
                part = body[pos + 6 : pos + 4 + length]
                pos += 4 + length
                if flags & 1:
                    command += part
                    if flags & 2:
                        have_command = True
                        fields = elements(bytes(command))
                        kinds = fields.get((0, 0x0800)) if fields else None
                        if kinds is not None and struct.unpack("<H", kinds)[0] == NO_DATASET:
                            yield bytes(command), None
                            command, have_command = bytearray(), False
                else:
                    dataset += part
                    if flags & 2:
                        if not have_command:
                            raise self.fail("sent a dataset before its command")
                        yield bytes(command), bytes(dataset)
                        command, dataset, have_command = bytearray(), bytearray(), False


def _associate(node: DimseNode, sock: socket.socket, abstract: str) -> _Link:
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
    from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import (
        A_ASSOCIATE,
        ImplementationClassUIDNotification,
        ImplementationVersionNameNotification,
        MaximumLengthNotification,
    )
    from pynetdicom.presentation import build_context
    from pynetdicom.transport import AddressInformation

    link = _Link(node, sock)
    request = A_ASSOCIATE()
    request.application_context_name = APPLICATION_CONTEXT
    request.calling_ae_title = node.our_ae
    request.called_ae_title = node.called_ae
    request.calling_presentation_address = AddressInformation(*sock.getsockname()[:2])
    request.called_presentation_address = AddressInformation(node.host, node.port)
    context = build_context(abstract, [IMPLICIT_LE])
    context.context_id = 1
    request.presentation_context_definition_list = [context]
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = MAX_PDU
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = PYNETDICOM_IMPLEMENTATION_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = PYNETDICOM_IMPLEMENTATION_VERSION
    request.user_information = [maximum, implementation, version]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(request)
    sock.sendall(pdu.encode())
    kind, body = link.pdu()
    if kind == 0x03:
        raise link.fail(
            f"refused the association: it does not accept our AE title {node.our_ae} "
            f"or its own called AE title {node.called_ae}"
        )
    if kind != 0x02:
        raise link.fail(
            "closed the connection without accepting the association; is it a DICOM node?"
        )
    accepted = A_ASSOCIATE_AC()
    try:
        accepted.decode(_HEADER.pack(kind, 0, len(body)) + body)
        answer = accepted.to_primitive()
    except Exception:  # a malformed answer, whichever way it is malformed
        raise link.fail("answered the association request with a malformed PDU") from None
    results = answer.presentation_context_definition_results_list
    if not any(cx.result == 0 for cx in results):
        raise link.fail("does not offer Study Root C-FIND to us (the context was rejected)")
    for item in answer.user_information:
        if isinstance(item, MaximumLengthNotification):
            link.peer_max = item.maximum_length_received or 0
    link.associated = True
    return link


def connect(node: DimseNode) -> socket.socket:
    """A connection to the node, or the sentence that tells 'down' from 'unknown host' from
    'no answer' (pynetdicom reports them all as an abort)."""
    try:
        return socket.create_connection((node.host, node.port), timeout=node.timeout_s)
    except socket.gaierror:
        raise NetworkError(node.name, f"the host {node.host} is not known") from None
    except ConnectionRefusedError:
        raise NetworkError(
            node.name,
            f"nothing answers at {node.host}:{node.port}; the node is down or the port is wrong",
        ) from None
    except TimeoutError:
        raise NetworkError(
            node.name, f"{node.host}:{node.port} did not answer within {node.timeout_s:g} s"
        ) from None
    except OSError as err:
        raise NetworkError(
            node.name, f"{node.host}:{node.port} cannot be reached ({err.strerror or err})"
        ) from None


def find(node: DimseNode, abstract: str, identifier: bytes) -> Iterator[bytes]:
    """Each matching identifier of a C-FIND as it arrives (Implicit VR Little Endian
    bytes; `elements` reads them). Closed before the end (the search was cancelled), the
    association is aborted."""
    with connect(node) as sock:
        link = _associate(node, sock, abstract)
        link.send_message(_command(C_FIND_RQ, 1, abstract), identifier)
        finished = False
        debug = network_debugging()
        try:
            for command, dataset in link.messages():
                fields = elements(command) or {}
                status = struct.unpack("<H", fields.get((0, 0x0900), b"\xff\xff"))[0]
                if status in (0xFF00, 0xFF01):
                    if dataset is None:
                        raise link.fail("answered the C-FIND with a malformed identifier")
                    if debug:
                        log.debug("C-FIND answer from %s:\n%s", node.name, _shown(dataset))
                    yield dataset
                elif status == 0x0000:
                    break
                else:
                    raise link.fail(
                        f"refused the C-FIND (status 0x{status:04X}); does it allow our AE "
                        f"title {node.our_ae} to query?"
                    )
            link.send(0x05, b"\0" * 4)  # A-RELEASE-RQ; its answer is not waited for long
            sock.settimeout(min(node.timeout_s, 2))
            with contextlib.suppress(NetworkError):
                link.pdu()
            finished = True
        finally:
            if not finished:
                with contextlib.suppress(OSError):
                    link.send(0x07, b"\0" * 4)  # A-ABORT


def _shown(dataset: bytes) -> str:
    """An answer as pydicom prints it, for network debugging."""
    from io import BytesIO

    from pynetdicom.dsutils import decode

    try:
        return str(decode(BytesIO(dataset), True, True))
    except Exception as err:  # debugging output only
        return f"(not decodable: {err})"

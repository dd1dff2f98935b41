"""Hostile PDU sizes (net.pdu_limit): a peer whose PDU claims more than MedView announced, as
MedView's answer partner or as a caller of its storage SCP, ends in one sentence within
seconds, without MedView reading what the header claims. Unbounded, pynetdicom read the
4 GiB a peer claimed and the echo below hung (over 120 s)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pynetdicom import AE, evt

from medview.net import dimse
from medview.net.errors import NetworkError
from medview.net.nodes import DimseNode
from medview.net.scp import MAX_PDU, StorageSCP
from tests.net.orthanc import free_port

pytestmark = pytest.mark.external

VERIFICATION = "1.2.840.10008.1.1"
HUGE = 0xFFFFFFF0


def header(pdu_type: int, length: int) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, length)


def stream(conn: socket.socket, first: bytes, megabytes: int = 64) -> None:
    """`first`, then zeros as fast as the reader takes them, until it closes."""
    with contextlib.suppress(OSError):
        conn.sendall(first)
        for _ in range(megabytes):
            conn.sendall(bytes(1 << 20))


@contextlib.contextmanager
def raw_peer(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server that reads each connection's first bytes and calls `answer`; its
    port. (MedView first probes the port with a bare connection, which sends nothing.)"""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn:
            if conn.recv(65536):
                answer(conn)

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                threading.Thread(target=one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        t.join()
        server.close()


def node_at(port: int) -> DimseNode:
    return DimseNode(name="hostile", called_ae="HOSTILE", host="127.0.0.1", port=port, timeout_s=5)


def test_an_oversized_association_answer_is_one_sentence():
    with raw_peer(lambda c: stream(c, header(0x02, HUGE))) as port:
        started = time.monotonic()
        with pytest.raises(
            NetworkError,
            match=r"^hostile: sent a PDU of 4,294,967,280 bytes, more than the 1,048,576 "
            r"MedView accepts; the association was aborted",
        ):
            dimse.echo(node_at(port))
        assert time.monotonic() - started < 3


def test_a_pdu_over_the_negotiated_maximum_is_one_sentence():
    """A real SCP (pynetdicom) that accepts the association and answers the C-ECHO with a
    P-DATA-TF PDU longer than the 16,382 bytes MedView announced."""
    length = 20_000

    def oversized_answer(event) -> int:
        event.assoc.dul.socket.socket.sendall(header(0x04, length) + bytes(length))
        return 0x0000

    scp = AE(ae_title="HOSTILE")
    scp.network_timeout = scp.dimse_timeout = scp.acse_timeout = 1  # its thread ends soon
    scp.add_supported_context(VERIFICATION)
    server = scp.start_server(
        ("127.0.0.1", free_port()),
        block=False,
        evt_handlers=[(evt.EVT_C_ECHO, oversized_answer)],
    )
    try:
        started = time.monotonic()
        with pytest.raises(
            NetworkError,
            match=r"^hostile: sent a PDU of 20,000 bytes, more than the 16,382 MedView accepts",
        ):
            dimse.echo(node_at(server.server_address[1]))
        assert time.monotonic() - started < 3
    finally:
        server.shutdown()


def _echo_works(port: int) -> bool:
    ae = AE(ae_title="PUSHER")
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", port, ae_title="MEDVIEW")
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return status is not None and status.Status == 0


def test_the_storage_scp_drops_oversized_pdus_and_serves_on(tmp_path):
    with StorageSCP(tmp_path, port=free_port(), allowed_aes=["PUSHER"], timeout_s=2) as scp:
        # before the association: an A-ASSOCIATE-RQ that claims 4 GiB
        caller = socket.create_connection(("127.0.0.1", scp.port), timeout=5)
        started = time.monotonic()
        with pytest.raises(OSError):  # the SCP closes the connection; sending fails
            for _ in range(64):
                caller.sendall(header(0x01, HUGE) + bytes(1 << 20))
        assert time.monotonic() - started < 5
        caller.close()
        # inside an association: a P-DATA-TF over the maximum the SCP announced
        ae = AE(ae_title="PUSHER")
        ae.add_requested_context(VERIFICATION)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="MEDVIEW")
        assert assoc.is_established
        with contextlib.suppress(OSError):
            assoc.dul.socket.socket.sendall(header(0x04, MAX_PDU + 1) + bytes(MAX_PDU + 1))
        deadline = time.monotonic() + 5
        while assoc.is_established and time.monotonic() < deadline:
            time.sleep(0.05)
        assert assoc.is_aborted
        assert scp.received.stored == 0
        assert not list(tmp_path.rglob("*"))  # nothing written
        assert _echo_works(scp.port)

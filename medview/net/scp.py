"""MedView as a storage SCP: a PACS answering our C-MOVE, or a modality, pushes instances
to it. Only the configured AE titles may associate (unless the reader allows any), at most
`max_associations` at once, PDUs bounded; files are stored by UID (net.storage) and each is
announced to `on_stored` (the study database, the browser) as it arrives."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.net import pdu_limit
from medview.net.dimse import RETRIEVED_CLASSES, accepted_transfer_syntaxes, store_handler
from medview.net.errors import NetworkError
from medview.net.logs import quiet_pynetdicom
from medview.net.nodes import check_ae_title, check_port
from medview.net.storage import store_instance

log = logging.getLogger(__name__)

MAX_PDU = 1 << 20  # what we announce; net.pdu_limit reads no larger PDU from the peer


@dataclass
class Received:
    """What the SCP has stored and refused since it started (counts only: no identifiers)."""

    stored: int = 0
    refused: int = 0
    problems: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class StorageSCP:
    """A running storage SCP; `stop()` ends it (also as a context manager)."""

    def __init__(
        self,
        root: Path,
        *,
        ae_title: str = "MEDVIEW",
        port: int = 11112,
        host: str = "",
        allowed_aes: Iterable[str] | None = (),
        max_associations: int = 4,
        timeout_s: float = 30,
        on_stored: Callable[[Path], None] | None = None,
    ) -> None:
        """`allowed_aes` None accepts any calling AE title (the reader's explicit choice);
        an empty list accepts none but echo is still refused then. `timeout_s`: how long
        a caller may be silent (pynetdicom also holds a connection that closed before its
        association request this long)."""
        from pynetdicom import AE, evt

        quiet_pynetdicom()
        pdu_limit.install()
        self.root = root
        self.received = Received()
        self._on_stored = on_stored
        ae = AE(ae_title=check_ae_title(ae_title, "our AE title"))
        ae.maximum_associations = max(1, int(max_associations))
        ae.maximum_pdu_size = MAX_PDU
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = timeout_s
        if allowed_aes is not None:
            ae.require_calling_aet = [check_ae_title(a, "an allowed AE title") for a in allowed_aes]
        syntaxes = accepted_transfer_syntaxes()
        for sop_class in RETRIEVED_CLASSES:
            ae.add_supported_context(sop_class, syntaxes)
        ae.add_supported_context("1.2.840.10008.1.1")
        handler = store_handler(self._store, self._refused)
        try:
            server = ae.start_server(
                (host, check_port(port, "the storage port")),
                block=False,
                evt_handlers=[(evt.EVT_C_STORE, handler)],
            )
        except OSError as err:
            raise NetworkError(
                f"port {port}",
                f"MedView's storage SCP cannot listen there "
                f"({err.strerror or err}); is another "
                f"program using it?",
            ) from None
        assert server is not None  # block=False returns the running server, never None
        self._server = server
        self.port = server.server_address[1]

    def _store(self, study: str, series: str, sop: str, encoded: bytes) -> None:
        path = store_instance(self.root, study, series, sop, encoded)
        with self.received.lock:
            self.received.stored += 1
        if self._on_stored is not None:
            try:
                self._on_stored(path)
            except Exception:  # the file is stored; a listener's failure is only logged
                log.exception("after storing a received instance")

    def _refused(self, err: BaseException) -> None:
        with self.received.lock:
            self.received.refused += 1
            self.received.problems.append(err)
        log.warning("a received instance was refused: %s", err)

    def stop(self) -> None:
        self._server.shutdown()

    def __enter__(self) -> StorageSCP:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

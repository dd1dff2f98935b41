"""PacsReceive: MedView as a storage SCP from the PACS window, so a PACS or a modality can
push studies to the reader (Horos' and Weasis' "listener"). Only the saved DIMSE nodes'
AE titles are accepted; each stored instance goes into the local study database and is
announced (`arrived`, on the GUI thread) so the study list shows the study as it arrives.

Its port must differ from a C-MOVE node's own storage port: a C-MOVE retrieval listens
there for the length of the retrieval, and one of the two would be refused in one
sentence. Counts only are shown; no identifier is logged."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from medview.core.errors import MedviewError
from medview.net.nodes import DEFAULT_OUR_AE, DEFAULT_OUR_PORT, DimseNode, load_nodes


class PacsReceive(QtWidgets.QWidget):
    arrived = QtCore.Signal(str)  # the path of an instance just stored (GUI thread)
    _stored = QtCore.Signal(str)  # emitted on the SCP's thread, delivered queued

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._scp = None  # net.scp.StorageSCP while receiving
        self._db = None
        self._count = 0
        self._lock = threading.Lock()
        self.toggle = QtWidgets.QCheckBox("Receive studies pushed to MedView")
        self.ae = QtWidgets.QLineEdit(DEFAULT_OUR_AE)
        self.ae.setMaximumWidth(140)
        self.port = QtWidgets.QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(DEFAULT_OUR_PORT)
        self.port.setToolTip("Not a C-MOVE node's storage port: a retrieval listens there")
        self.note = QtWidgets.QLabel()
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.toggle)
        row.addWidget(QtWidgets.QLabel("as"))
        row.addWidget(self.ae)
        row.addWidget(QtWidgets.QLabel("on port"))
        row.addWidget(self.port)
        row.addWidget(self.note, 1)
        self.toggle.toggled.connect(self._toggled)
        self._stored.connect(self._on_stored, QtCore.Qt.ConnectionType.QueuedConnection)

    @property
    def receiving(self) -> bool:
        return self._scp is not None

    def _toggled(self, on: bool) -> None:
        if on:
            self.start()
        else:
            self.stop()

    def start(self) -> bool:
        """Listen; False (and one sentence beside the box) when it cannot."""
        from medview.net.scp import StorageSCP
        from medview.net.storage import received_dir
        from medview.net.studydb import StudyDB

        if self._scp is not None:
            return True
        try:
            allowed = [n.called_ae for n in load_nodes() if isinstance(n, DimseNode)]
            if not allowed:
                raise MedviewError(
                    None,
                    "No DIMSE node is saved, so no one may send: add the PACS under Nodes first.",
                )
            self._db = StudyDB()
            self._scp = StorageSCP(
                received_dir(),
                ae_title=self.ae.text().strip(),
                port=self.port.value(),
                allowed_aes=allowed,
                on_stored=self._store,
            )
        except MedviewError as err:
            self._close_db()
            self._failed(str(err))
            return False
        self._count = 0
        for w in (self.ae, self.port):
            w.setEnabled(False)
        self.note.setText(f"listening, accepting {', '.join(allowed)}.")
        with QtCore.QSignalBlocker(self.toggle):
            self.toggle.setChecked(True)
        return True

    def _failed(self, sentence: str) -> None:
        self.note.setText(sentence)
        with QtCore.QSignalBlocker(self.toggle):
            self.toggle.setChecked(False)

    def _store(self, path: Path) -> None:
        """On the SCP's thread: index the file, then tell the GUI thread."""
        self._db.add_file(path, "received")
        self._stored.emit(str(path))

    def _on_stored(self, path: str) -> None:
        self._count += 1
        self.note.setText(f"{self._count} instance{'s' if self._count != 1 else ''} received.")
        self.arrived.emit(path)

    def stop(self) -> None:
        if self._scp is not None:
            self._scp.stop()
            self._scp = None
        self._close_db()
        for w in (self.ae, self.port):
            w.setEnabled(True)
        with QtCore.QSignalBlocker(self.toggle):
            self.toggle.setChecked(False)

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

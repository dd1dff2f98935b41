"""PacsNodesPage: the settings page for remote nodes. A list of saved nodes beside a form:
DIMSE (called AE title, host, port, our AE title, our storage port for C-MOVE, retrieve by
C-GET or C-MOVE) or DICOMweb (base URL, authentication none / basic / bearer, CA file, TLS
verification, which can only be switched off by unticking it, and then shows a warning).
Passwords and tokens go to the OS keyring; without one they are used for this session only
and never written anywhere. Echo / Test shows the round trip or the one-sentence failure."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medview.core.errors import MedviewError
from medview.jobs.pacs import echo_job
from medview.net.credentials import keyring_available, load_secret, store_secret
from medview.net.nodes import DimseNode, Node, WebNode, load_nodes, save_nodes
from medview.ui.workers import JobWorker

INSECURE = (
    "TLS is not verified for this node: anyone on the network path can read and "
    "change what it sends."
)


class PacsNodesPage(QtWidgets.QWidget):
    nodes_changed = QtCore.Signal(list)  # list[Node]
    echoed = QtCore.Signal(str)  # the sentence shown after Echo / Test

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._session_secrets: dict[str, str] = {}
        self._worker: JobWorker | None = None
        try:
            self.nodes: list[Node] = load_nodes()
            problem = ""
        except MedviewError as err:
            self.nodes, problem = [], str(err)
        self.list = QtWidgets.QListWidget()
        self.list.currentRowChanged.connect(self._show)
        self.kind = QtWidgets.QComboBox()
        self.kind.addItems(["DIMSE (DICOM network)", "DICOMweb"])
        self.kind.currentIndexChanged.connect(self._kind_changed)
        f = {
            k: QtWidgets.QLineEdit()
            for k in ("name", "called_ae", "host", "our_ae", "url", "username", "secret", "ca_file")
        }
        self.fields = f
        f["secret"].setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.port, self.our_port = QtWidgets.QSpinBox(), QtWidgets.QSpinBox()
        for box in (self.port, self.our_port):
            box.setRange(1, 65535)
        self.port.setValue(104)
        self.our_port.setValue(11112)
        f["our_ae"].setText("MEDVIEW")
        self.retrieve = QtWidgets.QComboBox()
        self.retrieve.addItems(["get", "move"])
        self.auth = QtWidgets.QComboBox()
        self.auth.addItems(["none", "basic", "bearer"])
        self.verify = QtWidgets.QCheckBox("Verify the server's TLS certificate")
        self.verify.setChecked(True)
        self.verify.toggled.connect(self._update_warning)
        self.warning = QtWidgets.QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #d08000")
        self.status = QtWidgets.QLabel(problem)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

        self.dimse_box = QtWidgets.QWidget()
        dform = QtWidgets.QFormLayout(self.dimse_box)
        dform.addRow("Called AE title", f["called_ae"])
        dform.addRow("Host", f["host"])
        dform.addRow("Port", self.port)
        dform.addRow("Our AE title", f["our_ae"])
        dform.addRow("Our storage port (C-MOVE)", self.our_port)
        dform.addRow("Retrieve by", self.retrieve)
        self.web_box = QtWidgets.QWidget()
        wform = QtWidgets.QFormLayout(self.web_box)
        wform.addRow("Base URL", f["url"])
        wform.addRow("Authentication", self.auth)
        wform.addRow("User name", f["username"])
        hint = (
            "stored in the OS keyring"
            if keyring_available()
            else "no keyring here: used this session only, never saved"
        )
        f["secret"].setPlaceholderText(hint)
        wform.addRow("Password or token", f["secret"])
        wform.addRow("CA file (empty: system)", f["ca_file"])
        wform.addRow(self.verify)

        form = QtWidgets.QFormLayout()
        form.addRow("Name", f["name"])
        form.addRow("Kind", self.kind)
        buttons = QtWidgets.QHBoxLayout()
        self.save_button = QtWidgets.QPushButton("Save")
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.new_button = QtWidgets.QPushButton("New")
        self.echo_button = QtWidgets.QPushButton("Echo / Test")
        for b in (self.new_button, self.save_button, self.remove_button, self.echo_button):
            buttons.addWidget(b)
        self.save_button.clicked.connect(self.save_current)
        self.remove_button.clicked.connect(self._remove)
        self.new_button.clicked.connect(self._new)
        self.echo_button.clicked.connect(self.echo_current)
        right = QtWidgets.QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.dimse_box)
        right.addWidget(self.web_box)
        right.addWidget(self.warning)
        right.addLayout(buttons)
        right.addWidget(self.status)
        right.addStretch(1)
        layout = QtWidgets.QHBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(right, 2)
        self._refresh_list()
        self._kind_changed(0)

    # -- the form
    def _kind_changed(self, index: int) -> None:
        self.dimse_box.setVisible(index == 0)
        self.web_box.setVisible(index == 1)
        self._update_warning()

    def _update_warning(self) -> None:
        web = self.kind.currentIndex() == 1
        insecure = web and not self.verify.isChecked()
        self.warning.setText(INSECURE if insecure else "")
        self.warning.setVisible(insecure)

    def node_from_form(self) -> Node:
        f = {k: w.text().strip() for k, w in self.fields.items()}
        name = f["name"] or "unnamed"
        if self.kind.currentIndex() == 0:
            return DimseNode(
                name=name,
                called_ae=f["called_ae"],
                host=f["host"],
                port=self.port.value(),
                our_ae=f["our_ae"] or "MEDVIEW",
                our_port=self.our_port.value(),
                retrieve=self.retrieve.currentText(),
            )
        return WebNode(
            name=name,
            url=f["url"],
            auth=self.auth.currentText(),
            username=f["username"],
            ca_file=f["ca_file"],
            verify_tls=self.verify.isChecked(),
        )

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.nodes):
            return
        n = self.nodes[row]
        self.fields["name"].setText(n.name)
        self.fields["secret"].clear()
        if isinstance(n, DimseNode):
            self.kind.setCurrentIndex(0)
            self.fields["called_ae"].setText(n.called_ae)
            self.fields["host"].setText(n.host)
            self.port.setValue(n.port)
            self.fields["our_ae"].setText(n.our_ae)
            self.our_port.setValue(n.our_port)
            self.retrieve.setCurrentText(n.retrieve)
        else:
            self.kind.setCurrentIndex(1)
            self.fields["url"].setText(n.url)
            self.auth.setCurrentText(n.auth)
            self.fields["username"].setText(n.username)
            self.fields["ca_file"].setText(n.ca_file)
            self.verify.setChecked(n.verify_tls)
        self._update_warning()

    def _refresh_list(self) -> None:
        self.list.clear()
        for n in self.nodes:
            insecure = isinstance(n, WebNode) and n.insecure
            item = QtWidgets.QListWidgetItem(
                f"⚠ {n.name} (TLS not verified)" if insecure else n.name
            )
            item.setToolTip(n.address)
            self.list.addItem(item)

    # -- actions
    def save_current(self) -> Node | None:
        try:
            node = self.node_from_form()
        except MedviewError as err:
            self.status.setText(str(err))
            return None
        secret = self.fields["secret"].text()
        if secret:
            stored = store_secret(node.name, secret)
            self._session_secrets[node.name] = secret
            self.fields["secret"].clear()
            note = "" if stored else " The password was not stored (no keyring)."
        else:
            note = ""
        self.nodes = [n for n in self.nodes if n.name != node.name] + [node]
        save_nodes(self.nodes)
        self._refresh_list()
        self.list.setCurrentRow(len(self.nodes) - 1)
        self.status.setText(f"Saved {node.name}.{note}")
        self.nodes_changed.emit(list(self.nodes))
        return node

    def _remove(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.nodes):
            gone = self.nodes.pop(row)
            save_nodes(self.nodes)
            self._refresh_list()
            self.status.setText(f"Removed {gone.name}.")
            self.nodes_changed.emit(list(self.nodes))

    def _new(self) -> None:
        self.list.clearSelection()
        for k in ("name", "called_ae", "host", "url", "username", "secret", "ca_file"):
            self.fields[k].clear()

    def secret_for(self, node: Node) -> str | None:
        return self._session_secrets.get(node.name) or load_secret(node.name)

    def echo_current(self) -> None:
        """Test the node in the form (saved or not) on the thread pool."""
        try:
            node = self.node_from_form()
        except MedviewError as err:
            self.status.setText(str(err))
            return
        secret = self.fields["secret"].text() or self.secret_for(node)
        self.echo_button.setEnabled(False)
        self.status.setText(f"Testing {node.name} …")
        worker = JobWorker(echo_job, node, secret=secret, parent=self)
        worker.result.connect(
            lambda s: self._echo_done(f"{node.name} answered in {s * 1000:.0f} ms.")
        )
        worker.failed.connect(self._echo_done)
        worker.finished.connect(lambda: self.echo_button.setEnabled(True))
        self._worker = worker
        worker.start()

    def _echo_done(self, text: str) -> None:
        self.status.setText(text)
        self.echoed.emit(text)

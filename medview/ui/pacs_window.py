"""PacsWindow: the PACS in one window, as the main window opens it: "Studies" (local and
remote studies in one list, retrieve, send) and "Nodes" (the settings page with Echo /
Test); a node saved in one is offered in the other at once. `open_study` carries the folder
of a retrieved study's first image series once whole, then the study's, for the viewer.
Below the tabs, MedView's storage SCP (PacsReceive): studies a PACS pushes appear in the
list as they arrive."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from medview.ui.panels.pacs_nodes import PacsNodesPage
from medview.ui.panels.pacs_receive import PacsReceive
from medview.ui.panels.pacs_studies import PacsStudies


class PacsWindow(QtWidgets.QDialog):
    open_study = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS")
        self.nodes_page = PacsNodesPage()
        self.studies = PacsStudies(self.nodes_page.nodes)
        self.nodes_page.nodes_changed.connect(self.studies.set_nodes)
        self.studies.retrieved.connect(self.open_study)
        self.receive = PacsReceive()  # studies pushed to MedView, listed as they arrive
        self.receive.arrived.connect(lambda _path: self.studies.refresh_local_soon())
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self.studies, "Studies")
        self.tabs.addTab(self.nodes_page, "Nodes")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.receive)
        self.resize(1100, 560)
        if not self.nodes_page.nodes:  # nothing to search yet: start where nodes are added
            self.tabs.setCurrentWidget(self.nodes_page)

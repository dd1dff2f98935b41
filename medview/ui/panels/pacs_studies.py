"""PacsStudies: local and remote studies in one list with a Source column, searchable by
patient name, patient ID, date range, modality, accession number and description (the PACS
study lists of Horos and Weasis). Retrieve fetches the selected remote study as a job
(progress by instance, Cancel; a partial study is resumed) and announces its first image
series once that has arrived, and the study at the end; Send sends chosen DICOM files (images, SEG,
SR) to the node chosen.

Patient names are shown (this is the reader's own screen) but never logged."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from medview.core.errors import MedviewError
from medview.jobs.pacs import RowsSoFar, SearchResult, retrieve_job, search_job, send_job
from medview.net.nodes import Node, WebNode
from medview.net.query import StudyQuery, StudyRow
from medview.ui.panels.study_browser import patient_text
from medview.ui.workers import JobWorker

COLUMNS = ("Source", "Patient", "Date", "Modality", "Accession", "Description", "Images")
ALL, LOCAL = "All sources", "Local only"


NOT_IMAGES = {"SEG", "SR", "PR", "KO", "RTSTRUCT", "RTPLAN", "DOC"}


def _is_image_series(folder: Path) -> bool:
    """Whether a received series folder holds images, by its first file's modality."""
    import pydicom

    try:
        first = next(folder.glob("*.dcm"))
        ds = pydicom.dcmread(first, stop_before_pixels=True, specific_tags=["Modality"])
    except (StopIteration, OSError, pydicom.errors.InvalidDicomError):
        return False
    return str(ds.get("Modality", "")) not in NOT_IMAGES


def _studies(n: int) -> str:
    return f"{n} {'study' if n == 1 else 'studies'}"


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


class PacsStudies(QtWidgets.QWidget):
    retrieved = QtCore.Signal(str)  # its first image series' folder once whole; the study's
    # folder at the end
    searched = QtCore.Signal(object)  # SearchResult
    # a retrieval: started, each file stored (its path) as it arrives, ended (however)
    retrieval_started = QtCore.Signal()
    instance_arrived = QtCore.Signal(str)
    retrieval_ended = QtCore.Signal()
    sent = QtCore.Signal(int)

    def __init__(self, nodes: list[Node], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.nodes = list(nodes)
        self.rows: list[StudyRow] = []
        self._worker: JobWorker | None = None
        self.source = QtWidgets.QComboBox()
        e = {
            k: QtWidgets.QLineEdit()
            for k in ("name", "patient_id", "modality", "accession", "description")
        }
        self.edits = e
        e["name"].setPlaceholderText("name (* wildcards)")
        e["patient_id"].setPlaceholderText("patient ID")
        e["modality"].setPlaceholderText("modality")
        e["accession"].setPlaceholderText("accession")
        e["description"].setPlaceholderText("description")
        self.date_from, self.date_to = QtWidgets.QDateEdit(), QtWidgets.QDateEdit()
        self.use_dates = QtWidgets.QCheckBox("Dates")
        for d in (self.date_from, self.date_to):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
            d.setDate(QtCore.QDate.currentDate())
        self.date_from.setDate(QtCore.QDate.currentDate().addYears(-1))
        for d in (self.date_from, self.date_to):
            d.setEnabled(False)
            self.use_dates.toggled.connect(d.setEnabled)
        self.search_button = QtWidgets.QPushButton("Search")
        self.retrieve_button = QtWidgets.QPushButton("Retrieve")
        self.send_button = QtWidgets.QPushButton("Send files…")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(True)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.horizontalHeader().setSectionResizeMode(
            5, QtWidgets.QHeaderView.ResizeMode.Stretch
        )
        self.table.verticalHeader().setVisible(False)
        self.table.itemDoubleClicked.connect(lambda _i: self.retrieve_selected())

        grid = QtWidgets.QGridLayout()
        grid.addWidget(self.source, 0, 0)
        grid.addWidget(e["name"], 0, 1)
        grid.addWidget(e["patient_id"], 0, 2)
        grid.addWidget(e["accession"], 0, 3)
        grid.addWidget(e["modality"], 1, 0)
        grid.addWidget(e["description"], 1, 1)
        dates = QtWidgets.QHBoxLayout()
        dates.addWidget(self.use_dates)
        dates.addWidget(self.date_from)
        dates.addWidget(QtWidgets.QLabel("to"))
        dates.addWidget(self.date_to)
        grid.addLayout(dates, 1, 2)
        grid.addWidget(self.search_button, 1, 3)
        actions = QtWidgets.QHBoxLayout()
        for w in (self.retrieve_button, self.send_button, self.cancel_button):
            actions.addWidget(w)
        actions.addWidget(self.progress, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addWidget(self.note)
        self.search_button.clicked.connect(self.search)
        for edit in e.values():
            edit.returnPressed.connect(self.search)
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.send_button.clicked.connect(self._choose_and_send)
        self.cancel_button.clicked.connect(self._cancel)
        self.set_nodes(self.nodes)
        # received instances come in bursts: the local rows are listed again once they pause
        self._local_timer = QtCore.QTimer(self, singleShot=True, interval=300)
        self._local_timer.timeout.connect(self.refresh_local)
        self._local_worker: JobWorker | None = None

    def set_nodes(self, nodes: list[Node]) -> None:
        self.nodes = list(nodes)
        current = self.source.currentText()
        self.source.clear()
        self.source.addItems([ALL, LOCAL])
        for n in self.nodes:
            warn = "  ⚠ TLS not verified" if isinstance(n, WebNode) and n.insecure else ""
            self.source.addItem(f"{n.name}{warn}", n.name)
        if current:
            self.source.setCurrentText(current)

    def query(self) -> StudyQuery:
        e = {k: w.text().strip() for k, w in self.edits.items()}
        lo = hi = ""
        if self.use_dates.isChecked():
            lo, hi = (d.date().toString("yyyyMMdd") for d in (self.date_from, self.date_to))
        return StudyQuery(
            patient_id=e["patient_id"],
            name=e["name"],
            date_from=lo,
            date_to=hi,
            modality=e["modality"],
            accession=e["accession"],
            description=e["description"],
        )

    def _chosen_nodes(self) -> tuple[list[Node], bool]:
        text = self.source.currentText()
        if text == ALL:
            return self.nodes, True
        if text == LOCAL:
            return [], True
        name = self.source.currentData()
        return [n for n in self.nodes if n.name == name], False

    # -- jobs
    def _run(self, worker: JobWorker, busy: str) -> None:
        self._worker = worker
        for b in (self.search_button, self.retrieve_button, self.send_button):
            b.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat(busy)
        worker.progress.connect(self._on_progress)
        worker.failed.connect(self.note.setText)
        worker.cancelled.connect(
            lambda: self.note.setText("Cancelled; what arrived is kept, and Retrieve resumes it.")
        )
        worker.finished.connect(self._idle)
        worker.start()

    def _on_progress(self, p) -> None:
        if p.fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(p.fraction * 1000))
        self.progress.setFormat(p.message or "%p%")

    def _idle(self) -> None:
        for b in (self.search_button, self.retrieve_button, self.send_button):
            b.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")

    def _cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def search(self) -> None:
        try:
            q = self.query()
        except MedviewError as err:
            self.note.setText(str(err))
            return
        nodes, local = self._chosen_nodes()
        worker = JobWorker(search_job, nodes, q, include_local=local, parent=self)
        worker.event.connect(self._show_so_far)
        worker.result.connect(self._show)
        self.note.setText("")
        self._run(worker, "searching…")

    def _show_so_far(self, item: object) -> None:
        """The rows found while a node is still answering (jobs.pacs.RowsSoFar)."""
        if isinstance(item, RowsSoFar):
            self._fill(item.rows)
            self.note.setText(f"{_studies(len(item.rows))} so far…")

    def _show(self, result: SearchResult) -> None:
        self._fill(result.rows)
        self.note.setText(" ".join([f"{_studies(len(result.rows))}.", *result.notes]))
        self.searched.emit(result)

    def _fill(self, rows: list[StudyRow]) -> None:
        self.rows = rows
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            images = "" if row.instance_count is None else str(row.instance_count)
            cells = (
                row.source,
                patient_text(row.patient_name, row.patient_id),
                _date(row.date),
                "/".join(row.modalities),
                row.accession,
                row.description,
                images,
            )
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setData(QtCore.Qt.ItemDataRole.UserRole, r)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()

    def refresh_local_soon(self) -> None:
        self._local_timer.start()

    def refresh_local(self) -> None:
        """The local studies again (what the storage SCP received since), the remote rows
        as they were; while another search runs, after it."""
        if self._source_is_remote_only():
            return
        if (self._worker is not None and self._worker.running) or (
            self._local_worker is not None and self._local_worker.running
        ):
            self._local_timer.start()
            return
        try:
            q = self.query()
        except MedviewError:
            return
        worker = JobWorker(search_job, [], q, include_local=True, parent=self)
        worker.result.connect(
            lambda r: self._show(
                SearchResult(r.rows + [row for row in self.rows if row.source != "local"], r.notes)
            )
        )
        self._local_worker = worker
        worker.start()

    def _source_is_remote_only(self) -> bool:
        return self.source.currentText() not in (ALL, LOCAL)

    def selected_row(self) -> StudyRow | None:
        items = self.table.selectedItems()
        if not items:
            return None
        return self.rows[items[0].data(QtCore.Qt.ItemDataRole.UserRole)]

    def retrieve_selected(self) -> None:
        row = self.selected_row()
        if row is None:
            self.note.setText("Choose a study to retrieve.")
            return
        if row.source == "local":
            self.note.setText("This study is here already.")
            return
        node = next((n for n in self.nodes if n.name == row.source), None)
        if node is None:
            self.note.setText(f"{row.source} is no longer a saved node.")
            return
        worker = JobWorker(retrieve_job, node, row.study_uid, parent=self)
        series_seen: list[Path] = []

        def arrived(path: object) -> None:
            """Files arrive series by series: a file of a second series means the first
            is whole, and it can open (an image series: not a SEG or a report) while the
            rest arrives; the whole study is announced at the end."""
            self.instance_arrived.emit(str(path))
            series = Path(str(path)).parent
            if series not in series_seen:
                series_seen.append(series)
                if len(series_seen) == 2 and _is_image_series(series_seen[0]):
                    self.retrieved.emit(str(series_seen[0]))

        worker.event.connect(arrived)
        worker.result.connect(
            lambda r: (
                self.note.setText(
                    f"{r.fetched} instances retrieved, {r.already_here} were here already."
                ),
                self.retrieved.emit(str(r.folder)),
            )
        )
        worker.finished.connect(self.retrieval_ended)
        self.retrieval_started.emit()
        self._run(worker, f"retrieving from {node.name}…")

    def send(self, node: Node, paths: list[Path]) -> None:
        worker = JobWorker(send_job, node, paths, parent=self)
        worker.result.connect(
            lambda n: (self.note.setText(f"{n} instances sent to {node.name}."), self.sent.emit(n))
        )
        self._run(worker, f"sending to {node.name}…")

    def _choose_and_send(self) -> None:
        nodes, _ = self._chosen_nodes()
        if len(nodes) != 1:
            self.note.setText("Choose the node to send to in the source list.")
            return
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, f"Send to {nodes[0].name}", "", "DICOM files (*.dcm);;All files (*)"
        )
        if files:
            self.send(nodes[0], [Path(f) for f in files])

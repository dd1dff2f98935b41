"""MainWindow: views in the middle, the study browser, warnings and DICOM tags in docks, a
status bar with the value under the mouse and the progress of what is loading.

Opening follows the reading viewers radiologists use (RadiAnt, Horos): open or drop a
folder, files, a DICOMDIR or a zip; it is scanned in the background and the first series
of the newest study (of the first patient) opens at once, its first slice drawn before the
rest has loaded; the other series are a double-click away in the browser, the patient's
earlier studies offered there as priors. Everything slow runs through StudyLoader's jobs, so the
window answers throughout, and every failure ends in one sentence to the reader."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.log_privacy import note_opened
from medview.core.series import ScanResult, SeriesInfo
from medview.core.volume import Volume
from medview.io.image_files import SUPPORTED_READ_SUFFIXES, is_image_file
from medview.io.labels.files import labels_beside
from medview.io.workspace import safe_name
from medview.jobs.studies import FirstSlice
from medview.ui.menus import MainMenus
from medview.ui.settings import Settings
from medview.ui.slice_view import SliceView
from medview.ui.study_loader import StudyLoader
from medview.ui.view_grid import ViewGrid
from medview.viewer import state as st
from medview.viewer.planes import native_plane
from medview.viewer.priors import current_study
from medview.viewer.state import ViewerState

log = logging.getLogger(__name__)
OPEN_FILTER = (
    "Studies and images (*.dcm *.DCM *.ima *.IMA DICOMDIR *.zip "
    + " ".join(f"*{s}" for s in SUPPORTED_READ_SUFFIXES)
    + ");;All files (*)"
)
Area = QtCore.Qt.DockWidgetArea


# How long the window waits for the preview slice to be read, and then to be painted,
# before it builds its panels anyway
PREVIEW_WAIT_MS = 1000
PAINT_WAIT_MS = 250

Preview = tuple[SeriesInfo, np.ndarray]  # one file's series of one slice, and that slice


class MainWindow(QtWidgets.QMainWindow):
    image_shown = QtCore.Signal(str)  # "first slice" (while loading) or "volume"
    _preview_read = QtCore.Signal(object)  # Preview or None, from the thread that read it

    def __init__(self, settings: Settings, demo: bool = False, panels_later: bool = False) -> None:
        """`panels_later`: build only the image area, status bar and menus now, so that the
        window can show its first image sooner; build_panels() must follow before anything
        is opened (create_main_window calls it once the first image is painted)."""
        super().__init__()
        self.settings, self.demo = settings, demo
        self.series: SeriesInfo | None = None  # the open series (None: none, or a NIfTI)
        self.state = ViewerState()
        self.grid = ViewGrid(self.state)
        self.setCentralWidget(self.grid)
        self.loader = StudyLoader(self)
        self.last_message: QtWidgets.QMessageBox | None = None
        self._image_files: list[str] = []
        # the slice drawn while its study is scanned: (series of that one file, image)
        self._preview: Preview | None = None
        self._panels_built = False
        self._closed = False  # closed: what start-up still had scheduled opens nothing
        self._build_status_bar()
        self.menus = MainMenus(self)
        self._update_title()
        if not self.restoreGeometry(settings.geometry):
            self._first_run_geometry()
        self.set_layout(settings.layout)
        if not panels_later:
            self.build_panels()

    def build_panels(self) -> None:
        """The docked panels, their connections and their saved arrangement (once). Their
        modules are imported here, not at start-up, for the same reason as panels_later."""
        if self._panels_built:
            return
        self._panels_built = True
        from medview.ui.annotation import Annotation
        from medview.ui.pacs_actions import PacsActions
        from medview.ui.panels.ai_panel import AIPanel
        from medview.ui.panels.layers_panel import LayersPanel
        from medview.ui.panels.measurements_panel import MeasurementsPanel
        from medview.ui.panels.study_browser import StudyBrowser
        from medview.ui.panels.tag_browser import TagBrowser
        from medview.ui.panels.training_panel import TrainingPanel
        from medview.ui.panels.warnings_panel import WarningsPanel
        from medview.ui.panels.window_panel import WindowPanel
        from medview.ui.prior_actions import PriorActions

        settings, size = self.settings, self.size()
        self.browser, self.warnings, self.tags = StudyBrowser(), WarningsPanel(), TagBrowser()
        studies = self.add_panel("Studies", self.browser, Area.LeftDockWidgetArea)
        self.add_panel("Warnings", self.warnings, Area.LeftDockWidgetArea)
        # the right column: window/level on top, measurements, layers and tags sharing the
        # rest. One tabbed group only: Qt 6.11 leaves a stray copy of the first group's tab
        # bar floating over the window when a second group is tabified.
        self.window_panel = WindowPanel(self.state, self.views)
        self.measurements = MeasurementsPanel(self.state, self.views)
        self.layers = LayersPanel(self.state)
        self.ai = AIPanel(self.state, lambda: self.views, settings=settings)
        window_level = self.add_panel("Window / Level", self.window_panel)
        measurements = self.add_panel("Measure", self.measurements)
        self.tabifyDockWidget(measurements, self.add_panel("Layers", self.layers))
        self.tabifyDockWidget(measurements, self.add_panel("Tags", self.tags))
        self.tabifyDockWidget(measurements, self.add_panel("AI", self.ai))
        self.annotation = Annotation(self)  # the Labels panel (segments), tabbed here too
        self.pacs = PacsActions(self)  # File > PACS: Query / Retrieve…, Send to PACS…
        self.priors = PriorActions(self)  # File > Compare with Prior Study, browser button
        self.layers.import_labels.connect(self.annotation.files.import_from)
        self.layers.offered.connect(self._on_labels_offered)
        self.training = TrainingPanel()  # fine-tuning runs in a child process
        self.tabifyDockWidget(measurements, self.add_panel("Training", self.training))
        measurements.raise_()
        # on a window already shown, the docks stacked one by one before they were tabbed
        # may have grown it: back to the size it had, before the docks share it out
        self.layout().activate()
        self.resize(size)
        self.resizeDocks([studies, window_level], [330, 380], QtCore.Qt.Orientation.Horizontal)
        # the histogram needs little height; the tabbed panels (segments, findings) need it all
        self.resizeDocks([window_level, measurements], [250, 2000], QtCore.Qt.Orientation.Vertical)
        self._connect()
        self.setAcceptDrops(True)
        self.restoreState(settings.window_state)

    def _first_run_geometry(self) -> None:
        """Most of the screen: images need the room (reading stations are 1920 px and up)."""
        screen = self.screen().availableGeometry()
        self.resize(max(1000, round(screen.width() * 0.9)), max(700, round(screen.height() * 0.9)))
        self.move(screen.center() - self.rect().center())

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.hover_label = QtWidgets.QLabel()
        self.status_label = QtWidgets.QLabel(
            "Open a study: File > Open Folder, or drop it on the window."
        )
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(180)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.loader.cancel)
        bar.addWidget(self.hover_label, 1)
        for widget in (self.status_label, self.progress, self.cancel_button):
            bar.addPermanentWidget(widget)
        self._on_busy(False)

    def _connect(self) -> None:
        ld = self.loader
        ld.busy_changed.connect(self._on_busy)
        ld.progress.connect(self._on_progress)
        ld.scanned.connect(self._on_scanned)
        ld.first_slice.connect(self._on_first_slice)
        ld.loaded.connect(self._on_loaded)
        ld.failed.connect(self._on_failed)
        ld.cancelled.connect(self._on_cancelled)
        ld.thumbnail.connect(self.browser.set_thumbnail)
        self.browser.activated.connect(self.open_item)
        self.warnings.count_changed.connect(self._on_warning_count)
        self.measurements.message.connect(self.status_label.setText)
        self.layers.message.connect(self.status_label.setText)
        self.ai.message.connect(self.status_label.setText)
        self.training.message.connect(self.status_label.setText)
        self.training.versions.set_viewer(self.state)  # "Compare on this study"
        # Activate / roll back under Training: the AI panel runs that version from now on
        self.training.versions.activated.connect(lambda ref: self.ai.refresh_models(ref))
        # a new version is offered in the AI panel's picker at once (the running one stays)
        self.training.version_made.connect(lambda _ref: self.ai.refresh_models())
        for view in self.grid.views:
            view.hovered.connect(self.hover_label.setText)
        self.state.subscribe(self._on_state)

    # -- what the lead and the other panels build on
    @property
    def views(self) -> list[SliceView]:
        return self.grid.views

    def add_panel(
        self,
        title: str,
        widget: QtWidgets.QWidget,
        area: QtCore.Qt.DockWidgetArea = Area.RightDockWidgetArea,
    ) -> QtWidgets.QDockWidget:
        """Dock `widget`; its place is saved with the window state under its title."""
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName("dock-" + safe_name(title))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        if self.isVisible():
            dock.show()  # a child added to a window on screen stays hidden until told
        self.restoreDockWidget(dock)
        self.menus.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def dock(self, title: str) -> QtWidgets.QDockWidget | None:
        return self.findChild(QtWidgets.QDockWidget, "dock-" + safe_name(title))

    # -- opening
    def open_after_preview(self, paths: list[str], preview: Future[Preview | None]) -> None:
        """Start-up with `paths` (panels_later): draw the preview slice being read as soon as
        it is in, and once it is painted build the panels and open `paths`. It goes on
        without the preview after PREVIEW_WAIT_MS, and without its paint (a window not on
        screen) after PAINT_WAIT_MS; a preview that failed is not shown (the scan says why)."""
        started = built = False

        def build(found: Preview | None) -> None:
            nonlocal built
            if not built:  # after the paint's event, not inside it
                built = True
                QtCore.QTimer.singleShot(0, self, lambda: self._build_and_open(paths, found))

        def go(found: Preview | None) -> None:
            nonlocal started
            if started:
                return
            started = True
            if found is None:
                build(None)
                return

            def painted() -> None:  # once: later loading pages' paints need no answer
                self.grid.slice_painted.disconnect(painted)
                build(found)

            self.grid.slice_painted.connect(painted)
            QtCore.QTimer.singleShot(PAINT_WAIT_MS, self, lambda: build(found))
            self.grid.show_preview(*found)

        def read(done: Future[Preview | None]) -> None:  # on the reading thread
            problem = done.exception()
            if problem is not None:  # not shown: the scan that follows says what is wrong
                log.info("no preview slice: %s", type(problem).__name__)
            self._preview_read.emit(None if problem else done.result())

        self._preview_read.connect(go)
        QtCore.QTimer.singleShot(PREVIEW_WAIT_MS, self, lambda: go(None))
        preview.add_done_callback(read)

    def _build_and_open(self, paths: list[str], preview: Preview | None) -> None:
        if self._closed:  # closed during start-up, before the preview came or was painted
            return
        self.build_panels()
        self.open_paths(paths, preview)

    def open_paths(self, paths: list[str], preview: Preview | None = None) -> None:
        """Open folders, files, DICOMDIRs, zips and image files: scan the DICOM ones, then
        show the newest study's first series (or the first image file). `preview`: a slice
        of them read already, shown while they are scanned and until its own series' load
        has one."""
        paths = [str(Path(p).expanduser()) for p in paths if p]
        missing = [p for p in paths if not Path(p).exists()]
        paths = [p for p in paths if p not in missing]
        for p in paths:  # paths inside them reach the log relative to them, never whole
            note_opened(p)
        if missing:
            self.message(
                "Not found",
                f"{missing[0]} does not exist"
                + (f" (and {len(missing) - 1} more paths)" if len(missing) > 1 else "")
                + "; check the path.",
                QtWidgets.QMessageBox.Icon.Warning,
            )
        if not paths:
            return
        first = Path(paths[0])
        self.settings.last_folder = str(first if first.is_dir() else first.parent)
        if not self.demo:
            for p in reversed(paths):
                self.settings.add_recent(p)
        self._image_files = [p for p in paths if is_image_file(p) and Path(p).is_file()]
        dicom = [p for p in paths if p not in self._image_files]
        self.warnings.clear()
        self.grid.end_loading()  # a load still running is superseded by this request
        self._preview = preview if dicom else None
        self.browser.set_contents(None, self._image_files)
        if dicom:
            if preview is not None:
                self.grid.show_preview(*preview)
            self.status_label.setText("Scanning…")
            self.loader.scan(dicom)
        else:
            self.open_item(self._image_files[0])

    def open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.settings.remove_recent(path)
            self.message(
                "Recent study missing",
                f"{path} no longer exists; it was removed from Recent Studies.",
                QtWidgets.QMessageBox.Icon.Warning,
            )
            return
        self.open_paths([path])

    def open_folder_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Open Folder", self.settings.last_folder
        )
        if folder:
            self.open_paths([folder])

    def open_files_dialog(self) -> None:
        files, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, "Open File(s)", self.settings.last_folder, OPEN_FILTER
        )
        if files:
            self.open_paths(files)

    def open_item(self, item: SeriesInfo | str) -> None:
        """Load a series (SeriesInfo) or an image file (its path), unless it is the one
        already shown or already loading."""
        key = _key(item)
        target = self.loader.target
        if target is not None and _key(target) == key:
            return  # already loading
        if self.state.volume is not None and self.state.series_key == key:
            if target is not None:
                self.loader.cancel()  # back to the series on screen, which is this one
            return
        preview, self._preview = self._preview, None
        if (
            preview is not None
            and isinstance(item, SeriesInfo)
            and preview[0].series_instance_uid == item.series_instance_uid
        ):
            self.grid.show_preview(*preview)  # kept until the load's own first slice
        else:
            self.grid.show_loading(item if isinstance(item, SeriesInfo) else None)
        self.tags.set_source(None, "Loading…")
        self.status_label.setText("Loading…")
        if isinstance(item, SeriesInfo):
            self.loader.load(item)
        else:
            self.loader.open_image(item)

    # -- job results (GUI thread)
    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(0)

    def _on_progress(self, fraction: float, message: str) -> None:
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(fraction * 1000))
        if message:
            self.status_label.setText(message[:1].upper() + message[1:] + "…")

    def _on_scanned(self, result: ScanResult) -> None:
        if not result.series:
            self._preview = None
            self.grid.end_loading()  # the preview, if one was drawn
        self.browser.set_contents(result, self._image_files)
        for w in result.warnings:
            self.warnings.add(w.message)
        said: set[tuple[str, str]] = set()  # a series' warning once, not once per stack
        for series in result.series:
            for w in series.warnings:
                if (series.series_instance_uid, w.message) not in said:
                    said.add((series.series_instance_uid, w.message))
                    self.warnings.add(w.message, where=_series_label(series))
        for skipped in result.skipped:
            self.warnings.add(skipped.reason, "error", where=skipped.path)
        if self.warnings.messages():
            self.dock("Warnings").raise_()  # shown to the reader, not hidden
        if result.non_image_objects:
            kinds = sorted({o.sop_class_name for o in result.non_image_objects})
            self.warnings.add(
                f"{len(result.non_image_objects)} object(s) that are not images "
                f"were found and not shown ({', '.join(kinds)})",
                "info",
            )
        if result.other_files:  # a quiet note, added after the panel decided to come up
            self.warnings.add(result.other_files_note(), "info")
        n = len(result.series)
        self.status_label.setText(
            f"Found {n} series in {len(result.studies)} study(ies)."
            if n
            else "No image series found."
        )
        if result.series:
            current = current_study([s for s in result.studies if s.series])
            self.open_item(current.series[0] if current else result.series[0])
            self.loader.make_thumbnails(
                [s for s in result.series if not self.browser.has_thumbnail(s.key)]
            )
        elif self._image_files:
            self.open_item(self._image_files[0])
        else:
            reasons = (
                "; ".join(f"{s.path}: {s.reason}" for s in result.skipped[:2])
                or result.other_files_note()
            )
            self.message(
                "No images found",
                "No image series were found there"
                + (f" ({reasons})." if reasons else ".")
                + " The Warnings panel lists every file that was skipped.",
                QtWidgets.QMessageBox.Icon.Warning,
            )

    def _on_first_slice(self, series: SeriesInfo, first: FirstSlice) -> None:
        self.grid.show_first_slice(series, first)
        self.image_shown.emit("first slice")

    def _on_loaded(self, target: SeriesInfo | str, volume: Volume) -> None:
        self.series = target if isinstance(target, SeriesInfo) else None
        key = target.key if isinstance(target, SeriesInfo) else target
        known = {w.message for w in self.series.warnings} if self.series else set()
        for w in volume.metadata.warnings:
            if w.message not in known:
                self.warnings.add(w.message, where=volume.metadata.series_description or key)
        self.state.set_volume(volume, key)
        beside = _labels_beside(target)
        if beside is not None:
            self.layers.offer_labels(str(beside))
        self.grid.end_loading()
        self.browser.mark_open(key)
        self.grid.set_focused(native_plane(volume.affine))
        self._update_title()
        self.status_label.setText(
            f"Loaded {volume.shape[0]} slices ({volume.shape[2]} x {volume.shape[1]})."
        )
        self.image_shown.emit("volume")

    def _on_labels_offered(self, path: str) -> None:
        self.warnings.add(
            f"Labels found beside this series: {Path(path).name}; show them or "
            f"import them into the labels in the Layers panel",
            "info",
        )
        layers = self.dock("Layers")
        if layers is not None:
            layers.raise_()

    def _on_failed(self, message: str) -> None:
        self.grid.end_loading()
        self._update_tags()
        self.warnings.add(message, "error")
        self.status_label.setText("Could not open it: see the message.")
        self.message("Could not open", message, QtWidgets.QMessageBox.Icon.Critical)

    def _on_cancelled(self, message: str) -> None:
        self.grid.end_loading()
        self._update_tags()
        self.status_label.setText(message)

    def _on_warning_count(self, n: int) -> None:
        dock = self.dock("Warnings")
        if dock is not None:
            dock.setWindowTitle(f"Warnings ({n})" if n else "Warnings")

    # -- state -> window
    def _on_state(self, what: str) -> None:
        if what in (st.VOLUME, st.CURSOR):
            self._update_tags()
        if what == st.VOLUME:
            self.grid.show_card(self.state.volume, self.series)

    def _update_tags(self) -> None:
        volume = self.state.volume
        if volume is None or self.series is None:
            self.tags.set_source(
                None,
                "An image file (NIfTI, NRRD, MHA) has no DICOM tags."
                if volume is not None
                else "No image open.",
            )
            return
        i = self.state.slice_index(native_plane(volume.affine))
        frame = self.series.slices[i] if 0 <= i < len(self.series.slices) else None
        if frame is None:
            self.tags.set_source(None, f"Slice {i + 1} fills a gap in the series; it has no file.")
        else:
            self.tags.set_source(frame.source)

    def _update_title(self) -> None:
        v = self.state.volume
        what = (v.metadata.series_description or v.metadata.modality or "image") if v else ""
        demo = " (synthetic demo study)" if self.demo else ""
        self.setWindowTitle(f"{what} — MedView{demo}" if what else f"MedView{demo}")

    # -- view actions
    def set_layout(self, name: str) -> None:
        self.grid.set_layout(name)
        if self.settings.layout != name:  # not at start-up: each write syncs the file to disk
            self.settings.layout = name
        self.menus.layout_actions[name].setChecked(True)

    def reset_view(self) -> None:
        self.state.reset()
        self.grid.fit_all()

    def export_png(self, path: str) -> bool:
        """Save the focused view as shown (a key image) to `path`."""
        ok = self.grid.focused_view.grab().save(path, "PNG")
        if ok:
            self.status_label.setText(f"Saved {path}")
        else:
            self.message(
                "Export failed",
                f"{path}: could not be written; choose a folder you can write to.",
                QtWidgets.QMessageBox.Icon.Warning,
            )
        return ok

    def export_png_dialog(self) -> None:
        if self.state.volume is None:
            return
        view = self.grid.focused_view
        stem = safe_name(
            f"{self.state.volume.metadata.series_description or 'view'}-"
            f"{view.plane.value}-{self.state.slice_index(view.plane) + 1}"
        )
        start = str(
            Path(
                QtCore.QStandardPaths.writableLocation(
                    QtCore.QStandardPaths.StandardLocation.PicturesLocation
                )
            )
            / f"{stem}.png"
        )
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export View as PNG", start, "PNG image (*.png)"
        )
        if path:
            self.export_png(path if path.lower().endswith(".png") else path + ".png")

    def message(
        self,
        title: str,
        text: str,
        icon: QtWidgets.QMessageBox.Icon = QtWidgets.QMessageBox.Icon.Information,
    ) -> QtWidgets.QMessageBox:
        """One sentence to the reader, in a box that does not block the event loop."""
        box = QtWidgets.QMessageBox(
            icon, title, text, QtWidgets.QMessageBox.StandardButton.Ok, self
        )
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.last_message = box
        return box

    def show_about(self) -> None:
        from medview.ui.about_dialog import AboutDialog  # reads metadata and cards: not at start

        self.about_dialog = AboutDialog(self)
        self.about_dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self.about_dialog.open()

    # -- drag and drop
    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:
        if any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dragMoveEvent(self, ev: QtGui.QDragMoveEvent) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            ev.acceptProposedAction()
            self.open_paths(paths)

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        self.build_panels()  # closed during start-up, before they were: what is saved needs them
        if not self.training.may_close():  # a fine-tune runs: the reader decides
            ev.ignore()
            return
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.loader.shutdown()
        self.ai.shutdown()
        self.training.shutdown()  # a running fine-tune is stopped (it keeps its checkpoint)
        self.annotation.shutdown()  # the labels' clean save
        self.pacs.shutdown()  # a send under way ends first
        self._closed = True
        super().closeEvent(ev)


def _labels_beside(target: SeriesInfo | str) -> Path | None:
    """A label map in the study folder of what was opened (a series' files or an image
    file), by the layout `medview train` reads; none for a series inside a zip."""
    if isinstance(target, str):
        return labels_beside(target)
    source = next((f.source for f in target.frames), None)
    return labels_beside(source.path) if source is not None and source.member is None else None


def _key(item: SeriesInfo | str) -> str:
    return item.key if isinstance(item, SeriesInfo) else item


def _series_label(series: SeriesInfo) -> str:
    number = f"{series.series_number} " if series.series_number is not None else ""
    return f"Series {number}{series.description}".strip()

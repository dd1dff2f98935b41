"""Composition root of the desktop app: the QApplication (high-DPI, dark theme, pyqtgraph
options), the settings and the main window; `run_gui` is what `medview [PATH...]` and
`medview demo` call.

Start-up is kept short (issue 19: `medview PATH` to the first image within 0.8 s): only Qt,
pyqtgraph and numpy load before the window is shown, and SimpleITK and torch only when a
feature needs them. With a path, one file of it (read_preview_soon) is read on a thread
from the start, so pydicom's import and the read overlap Qt's; the window shows its image
area with that slice first and builds its panels, scans and loads after."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from medview.core.errors import MedviewError


def _check_display() -> None:
    """On Linux without X11 or Wayland Qt would abort with a long plugin error; say what is
    wrong in one sentence instead."""
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        raise MedviewError(
            None,
            "no display found (neither DISPLAY nor WAYLAND_DISPLAY is "
            "set); run MedView on a desktop, or use the headless "
            "commands (medview info, medview demo --no-gui)",
        )


def _check_platform_plugin() -> None:
    """A platform plugin that cannot load makes Qt abort with a core dump; name the missing
    library and the command that installs it in one sentence instead."""
    from medview.ui.qt_platform import platform_problem, qt_platform_plugin_dir

    problem = platform_problem(os.environ, qt_platform_plugin_dir(os.environ))
    if problem:
        raise MedviewError(None, problem)


def create_application():
    """The QApplication, configured once; an existing one (tests) is reused."""
    from PySide6 import QtCore, QtGui, QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        # Qt 6 scales for high-DPI screens itself; PassThrough keeps fractional factors
        # (150 %) exact instead of rounding them, which would blur or crop images. It must
        # be set before the QApplication exists.
        QtGui.QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            QtCore.Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QtWidgets.QApplication([sys.argv[0] if sys.argv else "medview"])
    import pyqtgraph as pg

    from medview import __version__
    from medview.ui.theme import apply_dark_theme

    pg.setConfigOptions(imageAxisOrder="row-major")
    app.setApplicationName("MedView")
    app.setApplicationVersion(__version__)
    icon = os.path.join(os.path.dirname(__file__), "resources", "icons", "medview.png")
    app.setWindowIcon(QtGui.QIcon(icon))  # title bars and task switchers
    app.setDesktopFileName("medview")  # Wayland: match the window to medview.desktop
    apply_dark_theme(app)
    return app


def create_main_window(paths: Sequence[str] = (), demo: bool = False, preview=None):
    """The main window with the saved settings, shown, and opening `paths` once the event
    loop runs (so the window is on screen before any scanning starts). `preview`: the
    Future of read_preview_soon(paths); then the window shows only its image area until
    that slice is drawn, and builds its panels after."""
    from PySide6 import QtCore

    from medview.ui.main_window import MainWindow
    from medview.ui.settings import Settings

    window = MainWindow(Settings(), demo=demo, panels_later=preview is not None)
    window.show()
    if paths and preview is not None:
        window.open_after_preview(list(paths), preview)
    elif paths:
        QtCore.QTimer.singleShot(0, window, lambda: window.open_paths(list(paths)))
    return window


def read_preview_soon(paths: Sequence[str]):
    """Start reading the one file of `paths` whose slice can be drawn before the scan
    (jobs.studies.preview_file) on a thread of its own, at once: pydicom's import and the
    read then overlap Qt's start-up. Returns its Future, or None when there is none."""
    from concurrent.futures import ThreadPoolExecutor

    from medview.core.log_privacy import note_opened
    from medview.jobs.studies import preview_file, read_preview

    file = preview_file(paths)
    if file is None:
        return None
    note_opened(paths[0])  # what the read may log stays relative to it
    pool = ThreadPoolExecutor(1, thread_name_prefix="medview-preview")
    future = pool.submit(read_preview, file)
    pool.shutdown(wait=False)
    return future


def run_gui(paths: Sequence[str], demo: bool = False) -> int:
    """Open the viewer on `paths` (none: an empty window) and run until it is closed.
    `demo`: the paths are the generated demo study (kept out of Recent Studies, and the
    title says it is synthetic)."""
    preview = read_preview_soon(paths)  # first: its read overlaps the checks' library loads
    _check_display()
    _check_platform_plugin()
    app = create_application()
    window = create_main_window(paths, demo, preview)  # noqa: F841 (kept alive while the loop runs)
    return app.exec()

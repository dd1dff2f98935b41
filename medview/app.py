"""Composition root of the desktop app: the QApplication (high-DPI, dark theme, pyqtgraph
options), the settings and the main window; `run_gui` is what `medview [PATH...]` and
`medview demo` call.

Start-up is kept short (the issue: first image within 1.0 s of launch): only Qt, pyqtgraph
and numpy load before the window is shown; pydicom loads with the first scan, on a worker,
and SimpleITK and torch only when a feature needs them."""

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


def create_main_window(paths: Sequence[str] = (), demo: bool = False):
    """The main window with the saved settings, shown, and opening `paths` once the event
    loop runs (so the window is on screen before any scanning starts)."""
    from PySide6 import QtCore

    from medview.ui.main_window import MainWindow
    from medview.ui.settings import Settings

    window = MainWindow(Settings(), demo=demo)
    window.show()
    if paths:
        QtCore.QTimer.singleShot(0, window, lambda: window.open_paths(list(paths)))
    return window


def run_gui(paths: Sequence[str], demo: bool = False) -> int:
    """Open the viewer on `paths` (none: an empty window) and run until it is closed.
    `demo`: the paths are the generated demo study (kept out of Recent Studies, and the
    title says it is synthetic)."""
    _check_display()
    _check_platform_plugin()
    app = create_application()
    window = create_main_window(paths, demo)  # noqa: F841 (kept alive while the loop runs)
    return app.exec()

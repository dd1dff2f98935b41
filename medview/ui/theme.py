"""The dark theme: reading rooms are dim, and bright panels around an image change how its
greys are perceived and tire the eyes (ACR-AAPM-SIIM guidance on reading-room lighting;
Horos, RadiAnt, Sectra and Visage all default to dark). Fusion style with a dark palette, so
it looks the same on every platform, and a small stylesheet for what the palette does not
reach (dock titles, splitters, the status bar)."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

BACKGROUND = "#1e1f22"
PANEL = "#26282c"
BASE = "#16171a"
TEXT = "#d8d8d2"
DIM_TEXT = "#8a8c90"
ACCENT = "#3d6fa8"
WARNING = "#e0a030"

STYLESHEET = f"""
QMainWindow::separator {{ background: {BACKGROUND}; width: 3px; height: 3px; }}
QDockWidget {{ color: {TEXT}; }}
QDockWidget::title {{ background: {PANEL}; padding: 4px 6px; }}
QStatusBar {{ background: {PANEL}; color: {TEXT}; }}
QStatusBar::item {{ border: none; }}
QTreeView, QTableView, QListWidget, QPlainTextEdit {{ border: 1px solid #33363b; }}
QHeaderView::section {{ background: {PANEL}; color: {DIM_TEXT}; border: none;
                        padding: 3px 6px; }}
QProgressBar {{ border: 1px solid #3a3d42; border-radius: 2px; background: {BASE};
                color: {TEXT}; text-align: center; max-height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; }}
QLabel#placeholder {{ color: {DIM_TEXT}; background: black; }}
"""


def dark_palette() -> QtGui.QPalette:
    c = QtGui.QColor
    role, group = QtGui.QPalette.ColorRole, QtGui.QPalette.ColorGroup
    p = QtGui.QPalette()
    for r, colour in (
        (role.Window, BACKGROUND),
        (role.WindowText, TEXT),
        (role.Base, BASE),
        (role.AlternateBase, PANEL),
        (role.ToolTipBase, PANEL),
        (role.ToolTipText, TEXT),
        (role.PlaceholderText, DIM_TEXT),
        (role.Text, TEXT),
        (role.Button, PANEL),
        (role.ButtonText, TEXT),
        (role.BrightText, "#ff6060"),
        (role.Link, "#6fa3e0"),
        (role.Highlight, ACCENT),
        (role.HighlightedText, "#ffffff"),
        (role.Light, "#3a3d42"),
        (role.Midlight, "#303236"),
        (role.Mid, "#2a2c30"),
        (role.Dark, "#121315"),
        (role.Shadow, "#000000"),
    ):
        p.setColor(r, c(colour))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(group.Disabled, r, c("#66686c"))
    return p


def apply_dark_theme(app: QtWidgets.QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(STYLESHEET)

"""MainMenus: the main window's menu bar and its actions, kept in step with ViewerState.

Every action is one line into the window or the state (3D Slicer's rule: the button calls
logic that also runs headless). Keys follow the radiology conventions SliceView documents
(docs/development.md; OHIF): 1-8 the CT presets in CT_PRESETS order, I invert, R reset, F fit,
O overlays, C crosshair link. They are real shortcuts here, so they work wherever the focus
is in the window (a text field keeps its typed characters), and the menus teach them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.windowing import CT_PRESETS, auto_window
from medview.ui.hanging import HangingProtocols
from medview.viewer import state as st
from medview.viewer.protocols import protocol_name
from medview.viewer.slab import step_thickness

if TYPE_CHECKING:
    from medview.ui.main_window import MainWindow

LAYOUT_NAMES = {
    "1": "1 view",
    "1x3": "1 x 3 (axial, coronal, sagittal)",
    "2x2": "2 x 2 (axial, coronal, sagittal, series card)",
    "3d": "2 x 2 with 3D (axial, coronal, sagittal, 3D)",
}


class MainMenus(QtCore.QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        bar = window.menuBar()
        self.file_menu = bar.addMenu("&File")
        self.view_menu = bar.addMenu("&View")
        self.window_menu = bar.addMenu("&Window")
        self.help_menu = bar.addMenu("&Help")
        self.hanging = HangingProtocols(window)
        self._build_file()
        self._build_view()
        self._build_window()
        self.help_menu.addAction("&About MedView…", window.show_about)
        window.state.subscribe(self._on_state)
        self._on_state(st.VOLUME)

    def _action(
        self, menu: QtWidgets.QMenu, text: str, slot, shortcut: str = "", checkable: bool = False
    ) -> QtGui.QAction:
        act = menu.addAction(text)
        if shortcut:
            act.setShortcut(QtGui.QKeySequence(shortcut))
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        return act

    def _build_file(self) -> None:
        m, w = self.file_menu, self.w
        self._action(m, "Open &Folder…", w.open_folder_dialog, "Ctrl+O")
        self._action(m, "Open &File(s)…", w.open_files_dialog, "Ctrl+Shift+O")
        self.recent_menu = m.addMenu("&Recent Studies")
        self.recent_menu.aboutToShow.connect(self.rebuild_recent)
        self.recent_menu.triggered.connect(self._on_recent)
        m.addSeparator()
        # filled by ui.prior_actions with the priors the study browser knows
        self.prior_menu = m.addMenu("Compare with &Prior Study")
        self.prior_action = self.prior_menu.menuAction()
        self.export_action = self._action(m, "&Export View as PNG…", w.export_png_dialog, "Ctrl+E")
        m.addSeparator()
        quit_action = self._action(m, "&Quit", w.close, "Ctrl+Q")
        quit_action.setMenuRole(QtGui.QAction.MenuRole.QuitRole)

    def rebuild_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.w.settings.recent
        for path in recent:
            act = self.recent_menu.addAction(QtCore.QDir.toNativeSeparators(path))
            act.setData(path)
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def _on_recent(self, action: QtGui.QAction) -> None:
        if action.data():
            self.w.open_recent(action.data())

    def _build_view(self) -> None:
        m, w, s = self.view_menu, self.w, self.w.state
        layout_menu = m.addMenu("&Layout")
        group = QtGui.QActionGroup(self)
        self.layout_actions: dict[str, QtGui.QAction] = {}
        for name, text in LAYOUT_NAMES.items():
            act = layout_menu.addAction(text)
            act.setCheckable(True)
            act.setData(name)
            group.addAction(act)
            self.layout_actions[name] = act
        group.triggered.connect(lambda act: w.set_layout(act.data()))
        self.crosshair_action = self._action(
            m, "Linked &crosshair", s.set_crosshair_linked, "C", checkable=True
        )
        self.overlays_action = self._action(
            m, "Show &overlays", lambda _=False: s.toggle_overlays(), "O", checkable=True
        )
        m.addSeparator()
        self._action(
            m,
            "Thick &slab: next mode (off, MIP, MinIP, average)",
            lambda _=False: s.cycle_slab_mode(),
            "M",
        )
        thicker = self._action(
            m,
            "Slab &thicker",
            lambda _=False: s.set_slab(thickness_mm=step_thickness(s.slab.thickness_mm, 1)),
            "+",
        )
        thicker.setShortcuts([QtGui.QKeySequence("+"), QtGui.QKeySequence("=")])
        self._action(
            m,
            "Slab t&hinner",
            lambda _=False: s.set_slab(thickness_mm=step_thickness(s.slab.thickness_mm, -1)),
            "-",
        )
        self.protocol_action = self._action(
            m, "Save as &Protocol for this study…", lambda _=False: self.hanging.save_dialog()
        )
        m.addSeparator()
        self._action(m, "&Fit", w.grid.fit_all, "F")
        self._action(m, "&Reset", w.reset_view, "R")
        m.addSeparator()
        self.panels_menu = m.addMenu("&Panels")

    def _build_window(self) -> None:
        m, s = self.window_menu, self.w.state
        self.preset_actions = []
        for number, preset in enumerate(CT_PRESETS, start=1):
            text = f"{preset.name}  (W {preset.width:g} / L {preset.center:g})"
            act = self._action(m, text, lambda _=False, n=number: s.apply_preset(n), str(number))
            self.preset_actions.append(act)
        m.addSeparator()
        self.auto_action = self._action(m, "&Auto (from the histogram)", self._auto, "A")
        self.invert_action = self._action(
            m, "&Invert", lambda _=False: s.toggle_invert(), "I", checkable=True
        )

    def _auto(self) -> None:
        volume = self.w.state.volume
        if volume is not None and volume.windowed:
            win = auto_window(volume.array)
            self.w.state.set_window(win.center, win.width, "Auto")

    def _on_state(self, what: str) -> None:
        if what == st.CURSOR:
            return  # the one change that comes with every wheel step; nothing here shows it
        s = self.w.state
        if what == st.VOLUME:
            v = s.volume
            grey = v is not None and not v.is_colour
            for act in self.preset_actions:
                act.setEnabled(grey and v.metadata.modality == "CT")
            self.auto_action.setEnabled(v is not None and v.windowed)
            self.invert_action.setEnabled(grey)
            self.export_action.setEnabled(v is not None)
            self.prior_action.setEnabled(v is not None)
            self.protocol_action.setEnabled(v is not None)
            self.protocol_action.setText(
                f"Save as &Protocol for {protocol_name(v.metadata)}…"
                if v is not None
                else "Save as &Protocol for this study…"
            )
        self.crosshair_action.setChecked(s.crosshair_linked)
        self.overlays_action.setChecked(s.show_overlays)
        self.invert_action.setChecked(s.invert)

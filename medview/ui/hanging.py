"""HangingProtocols: opens each study with the screen its hanging protocol says
(viewer.protocols) and saves the current screen as one ("Save as Protocol for CT chest…").

The screen is the main window's: layout, focused plane, window preset, the measuring tool,
the docks shown and the slab. A protocol applies when a series has loaded (image_shown
"volume"); the reader changes anything afterwards as usual."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtCore, QtWidgets

from medview.core.windowing import CT_PRESETS
from medview.io.series_files import protocols_file
from medview.viewer import protocols as hp
from medview.viewer.planes import Plane
from medview.viewer.slab import SlabMode

if TYPE_CHECKING:
    from medview.ui.main_window import MainWindow


class HangingProtocols(QtCore.QObject):
    applied = QtCore.Signal(str)  # the protocol's name

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.protocols: list[hp.HangingProtocol] = []
        self.problem = ""  # the sentence about a broken protocols file, once
        self.reload()
        window.image_shown.connect(self._on_shown)

    def reload(self) -> None:
        try:
            self.protocols = hp.load(protocols_file())
        except ValueError as exc:
            self.protocols, self.problem = [], str(exc)

    def _on_shown(self, what: str) -> None:
        if what != "volume" or self.w.state.volume is None:
            return
        if self.problem:
            self.w.warnings.add(self.problem)
            self.problem = ""
        chosen = hp.choose(self.protocols, self.w.state.volume.metadata)
        if chosen is not None:
            self.apply(chosen)

    def apply(self, p: hp.HangingProtocol) -> None:
        w, state = self.w, self.w.state
        w.set_layout(p.layout)
        w.grid.set_focused(Plane(p.plane))
        preset = next((x for x in CT_PRESETS if x.name == p.window), None)
        if preset is not None and state.volume is not None and state.volume.windowed:
            state.set_window(preset.center, preset.width, preset.name)
        if p.tool:
            w.measurements.set_tool(p.tool)
        for title in p.panels:
            dock = w.dock(title)
            if dock is not None:
                dock.show()
                dock.raise_()
        state.set_slab(SlabMode(p.slab_mode), p.slab_mm)
        self.applied.emit(p.name)

    def current(self, name: str) -> hp.HangingProtocol:
        """The screen as it is now, as a protocol named `name` for studies like this one."""
        w, state = self.w, self.w.state
        md = state.volume.metadata
        presets = {x.name for x in CT_PRESETS}
        panels = tuple(
            d.windowTitle()
            for d in w.findChildren(QtWidgets.QDockWidget)
            if d.isVisible() and not d.visibleRegion().isEmpty()
        )
        tool = w.measurements.tool
        return hp.HangingProtocol(
            name,
            md.modality,
            hp.body_part_of(name, md),
            layout=w.grid.layout_name,
            plane=w.grid.focused_view.plane.value,
            window=state.window.name if state.window.name in presets else "",
            tool="" if tool == "wl" else tool,
            panels=panels,
            slab_mode=state.slab.mode.value,
            slab_mm=state.slab.thickness_mm,
        )

    def save_current(self, name: str) -> hp.HangingProtocol:
        """Save the screen as protocol `name`; ValueError/OSError say why not."""
        p = self.current(name)
        self.protocols = hp.save(protocols_file(), self.protocols, p)
        return p

    def save_dialog(self) -> None:
        w = self.w
        if w.state.volume is None:
            return
        suggested = hp.protocol_name(w.state.volume.metadata)
        name, ok = QtWidgets.QInputDialog.getText(
            w,
            "Save as hanging protocol",
            "Studies this screen opens for (modality and body part):",
            text=suggested,
        )
        if not ok or not name.strip():
            return
        try:
            self.save_current(name.strip())
        except (ValueError, OSError) as exc:
            w.message(
                "Could not save the protocol",
                str(exc).split("\n")[0],
                QtWidgets.QMessageBox.Icon.Warning,
            )
        else:
            w.status_label.setText(f"Saved the hanging protocol {name.strip()!r}.")

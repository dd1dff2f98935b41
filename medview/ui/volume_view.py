"""The 3D view: the volume rendered with a CT preset (or the reader's window), the label
layers (the reader's segments, the AI's findings) as surfaces in their colours, a clipping
box, and a click on what is drawn moves the crosshair there, so the slice views follow.

This module imports VTK (through `ui.volume_scene`), which takes about half a second:
nothing imports it at start-up; the view grid imports it when the 3D layout is first
shown. The scene renders off screen and this widget paints its frames (volume_scene says
why); mouse drags turn (left), pan (middle) and zoom (right, wheel) with VTK's trackball
camera, and a left click without a drag picks."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from medview.ui.volume_scene import VolumeScene, gl_problem
from medview.viewer.state import CURSOR, LAYERS, VOLUME, WINDOW, ViewerState
from medview.viewer.volume_presets import WINDOW_PRESET, preset, presets_for

CLICK_PX = 4  # a press and release closer than this is a click (pick), not a drag
SURFACE_DELAY_MS = 300  # label edits come stroke by stroke: surfaces rebuild after a pause
# scrolling a slice view moves the crosshair every notch; the 3D frame (up to 2 s with
# software OpenGL, on the GUI thread) follows once the crosshair rests, not every notch
CURSOR_DELAY_MS = 250
CLIP_STEPS = 100  # clip sliders run 0..100 % of the volume's extent along each axis
CLIP_AXES = ("Right – left", "Anterior – posterior", "Inferior – superior")  # LPS x, y, z


class _Canvas(QtWidgets.QWidget):
    """Paints the scene's last frame and hands mouse input to the view."""

    def __init__(self, view: VolumeView) -> None:
        super().__init__()
        self.view = view
        self.frame: QtGui.QImage | None = None
        self.setMinimumSize(120, 120)
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding
        )
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def paintEvent(self, _ev: QtGui.QPaintEvent) -> None:
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor(0, 0, 0))
        if self.frame is not None:
            painter.drawImage(QtCore.QPointF(0, 0), self.frame)
        painter.end()

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:
        self.view.canvas_resized()
        super().resizeEvent(ev)

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:
        self.view.mouse(ev, "press")

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:
        self.view.mouse(ev, "move")

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:
        self.view.mouse(ev, "release")

    def wheelEvent(self, ev: QtGui.QWheelEvent) -> None:
        self.view.wheel(ev)


class VolumeView(QtWidgets.QWidget):
    """The 3D cell of the view grid; it draws `state` and moves its crosshair."""

    def __init__(self, state: ViewerState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.scene = VolumeScene(on_frame=self._show_frame)
        self._closed = False
        self._press: QtCore.QPointF | None = None
        self._stale = True  # the scene does not show the state yet (built while hidden)
        self._render_timer = QtCore.QTimer(self, singleShot=True, interval=0)
        self._render_timer.timeout.connect(self.draw)
        self._surface_timer = QtCore.QTimer(self, singleShot=True, interval=SURFACE_DELAY_MS)
        self._surface_timer.timeout.connect(self._update_surfaces)
        self._cursor_timer = QtCore.QTimer(self, singleShot=True, interval=CURSOR_DELAY_MS)
        self._cursor_timer.timeout.connect(self.draw)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        self.preset_box = QtWidgets.QComboBox(toolTip="Volume rendering preset")
        self.preset_box.currentTextChanged.connect(self._preset_chosen)
        self.volume_check = QtWidgets.QCheckBox("Volume", checked=True)
        self.volume_check.toggled.connect(self._volume_toggled)
        self.surfaces_check = QtWidgets.QCheckBox(
            "Segments", checked=True, toolTip="Label layers (segments, AI findings) as surfaces"
        )
        self.surfaces_check.toggled.connect(lambda _on: self._update_surfaces())
        self.clip_check = QtWidgets.QCheckBox("Clip box")
        self.clip_check.toggled.connect(self._clip_toggled)
        reset = QtWidgets.QToolButton(text="Front", toolTip="Look from the front, head up")
        reset.clicked.connect(self.reset_camera)
        for w in (self.preset_box, self.volume_check, self.surfaces_check, self.clip_check):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(reset)
        layout.addLayout(bar)
        self.canvas = _Canvas(self)
        layout.addWidget(self.canvas, 1)
        self.clip_panel = self._clip_sliders()
        self.clip_panel.setVisible(False)
        layout.addWidget(self.clip_panel)
        state.subscribe(self._on_state)

    # -- clipping box
    def _clip_sliders(self) -> QtWidgets.QWidget:
        panel = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(panel)
        grid.setContentsMargins(4, 0, 4, 2)
        self.clip_sliders: list[tuple[QtWidgets.QSlider, QtWidgets.QSlider]] = []
        for row, name in enumerate(CLIP_AXES):
            pair = []
            for col, start in ((1, 0), (2, CLIP_STEPS)):
                slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
                slider.setRange(0, CLIP_STEPS)
                slider.setValue(start)
                slider.valueChanged.connect(self._clip_moved)
                grid.addWidget(slider, row, col)
                pair.append(slider)
            grid.addWidget(QtWidgets.QLabel(name), row, 0)
            self.clip_sliders.append((pair[0], pair[1]))
        return panel

    def clip_box(self) -> tuple[float, float, float, float, float, float] | None:
        """The box the sliders set, in LPS mm (None with the clip box off)."""
        box = self.scene.lps_box
        if box is None or not self.clip_check.isChecked():
            return None
        out: list[float] = []
        for axis, (low, high) in enumerate(self.clip_sliders):
            lo, hi = box[2 * axis], box[2 * axis + 1]
            a, b = sorted((low.value(), high.value()))
            out += [lo + (hi - lo) * a / CLIP_STEPS, lo + (hi - lo) * b / CLIP_STEPS]
        return (out[0], out[1], out[2], out[3], out[4], out[5])

    def _clip_toggled(self, on: bool) -> None:
        self.clip_panel.setVisible(on)
        self._clip_moved()

    def _clip_moved(self, _value: int = 0) -> None:
        self.scene.set_clip(self.clip_box())
        self.schedule_render()

    # -- following the state
    def _on_state(self, what: str) -> None:
        if not self.isVisible():
            self._stale = True
        elif what == VOLUME:
            self.sync()
        elif what == LAYERS:
            self._surface_timer.start()
        elif what == CURSOR:
            self._update_cursor()
            self._cursor_timer.start()  # restarted by each move: one frame when it rests
        elif what == WINDOW and self.preset_box.currentText() == WINDOW_PRESET:
            self._apply_preset()
            self.schedule_render()

    def showEvent(self, ev: QtGui.QShowEvent) -> None:
        super().showEvent(ev)
        if self._stale and not self._closed:
            self.sync()

    def sync(self) -> None:
        """Show the state's volume, layers and crosshair (a new series, or the state
        changed while the view was hidden)."""
        self._stale = False
        volume = self.state.volume
        if volume is None:
            self.scene.clear()
            self.schedule_render()
            return
        if self.scene.volume is not volume:
            self.scene.set_volume(volume)
            names = presets_for(volume.metadata.modality)
            self.preset_box.blockSignals(True)
            self.preset_box.clear()
            self.preset_box.addItems(names)
            self.preset_box.blockSignals(False)
            self.scene.set_clip(self.clip_box())
        self._apply_preset()
        self._update_surfaces()
        self._update_cursor()
        self.schedule_render()

    def _apply_preset(self) -> None:
        self.scene.set_preset(preset(self.preset_box.currentText(), self.state.window))
        self.scene.set_volume_visible(self.volume_check.isChecked())

    def _preset_chosen(self, _name: str) -> None:
        if self.scene.volume is not None:
            self._apply_preset()
            self.schedule_render()

    def set_preset(self, name: str) -> None:
        """Choose the preset called `name` (one of presets_for the volume's modality)."""
        self.preset_box.setCurrentText(name)

    def _volume_toggled(self, on: bool) -> None:
        self.scene.set_volume_visible(on)
        self.schedule_render()

    def _update_surfaces(self) -> None:
        if self.state.volume is None or self.scene.volume is None:
            return
        on = self.surfaces_check.isChecked()
        layers = [
            layer for layer in self.state.layers if on and layer.visible and layer.kind == "labels"
        ]
        self.scene.set_surfaces(layers)
        self.schedule_render()

    def _update_cursor(self) -> None:
        self.scene.set_cursor(self.state.cursor_lps() if self.state.volume else None)

    def reset_camera(self) -> None:
        self.scene.reset_camera()
        self.schedule_render()

    # -- frames
    def schedule_render(self) -> None:
        """Render once the events queued now are handled (many changes, one frame)."""
        self._render_timer.start()

    def draw(self) -> None:
        self._render_timer.stop()
        self._cursor_timer.stop()  # this frame shows the crosshair too
        if not self._closed and self.isVisible():
            self.scene.render()

    def canvas_resized(self) -> None:
        ratio = self.canvas.devicePixelRatioF()
        size = self.canvas.size()
        self.scene.resize(round(size.width() * ratio), round(size.height() * ratio))
        self.schedule_render()

    def _show_frame(self, rgb: np.ndarray) -> None:
        height, width, _ = rgb.shape
        image = QtGui.QImage(rgb.data, width, height, 3 * width, QtGui.QImage.Format.Format_RGB888)
        image = image.copy()  # QImage does not own the array's memory
        image.setDevicePixelRatio(self.canvas.devicePixelRatioF())
        self.canvas.frame = image
        self.canvas.update()

    def frame(self) -> np.ndarray:
        """The frame on screen now, rendered first if anything changed (for tests)."""
        self._render_timer.stop()
        return self.scene.render()

    # -- mouse
    def _device(self, pos: QtCore.QPointF) -> tuple[int, int]:
        ratio = self.canvas.devicePixelRatioF()
        return round(pos.x() * ratio), round(pos.y() * ratio)

    def mouse(self, ev: QtGui.QMouseEvent, kind: str) -> None:
        """Hand a mouse event to VTK's trackball camera; a left click without a drag
        moves the crosshair to the point under it."""
        Button = QtCore.Qt.MouseButton
        Mod = QtCore.Qt.KeyboardModifier
        x, y = self._device(ev.position())
        iren = self.scene.interactor
        mods = ev.modifiers()
        iren.SetEventInformationFlipY(
            x, y, int(bool(mods & Mod.ControlModifier)), int(bool(mods & Mod.ShiftModifier))
        )
        names = {
            Button.LeftButton: "Left",
            Button.MiddleButton: "Middle",
            Button.RightButton: "Right",
        }
        if kind == "move":
            if ev.buttons() != Button.NoButton:
                iren.MouseMoveEvent()
            return
        name = names.get(ev.button())
        if name is None:
            return
        if kind == "press":
            self._press = ev.position() if ev.button() == Button.LeftButton else None
            getattr(iren, f"{name}ButtonPressEvent")()
            return
        getattr(iren, f"{name}ButtonReleaseEvent")()
        press, self._press = self._press, None
        if press is not None and (ev.position() - press).manhattanLength() < CLICK_PX:
            self.click(x, y)

    def wheel(self, ev: QtGui.QWheelEvent) -> None:
        x, y = self._device(ev.position())
        iren = self.scene.interactor
        iren.SetEventPositionFlipY(x, y)
        if ev.angleDelta().y() > 0:
            iren.MouseWheelForwardEvent()
        elif ev.angleDelta().y() < 0:
            iren.MouseWheelBackwardEvent()
        ev.accept()

    def click(self, x: float, y: float) -> bool:
        """Crosshair to what is drawn at device pixel (x, y) of the canvas (y from the top);
        False where nothing is: the crosshair stays."""
        volume = self.state.volume
        lps = self.scene.pick(x, y) if volume is not None else None
        if volume is None or lps is None:
            return False
        self.state.set_cursor_index(volume.lps_to_index(lps))
        return True

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop following the state and free the OpenGL context."""
        self.state.unsubscribe(self._on_state)
        if not self._closed:
            self._closed = True
            self.scene.close()


def volume_view(state: ViewerState) -> QtWidgets.QWidget:
    """The 3D view of `state`, or where this machine has no OpenGL for VTK, the one
    sentence that says so (VTK would abort the process trying)."""
    problem = gl_problem()
    if not problem:
        return VolumeView(state)
    message = QtWidgets.QLabel(problem, wordWrap=True)
    message.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
    return message

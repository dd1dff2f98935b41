"""Label painting speed in real SliceViews drawn offscreen (issue 6 goals), each against a
reference measured in the same run, on a 300 x 512 x 512 CT and label map:

- a brush dab on the 512 x 512 axial view shows within one frame (<= 16 ms): a real mouse
  move sent to the viewport of the 1 x 3 layout while the left button is down (pyqtgraph's
  drag -> PaintController -> LabelEditor.dab -> the label layer's item of each view), then
  the axial viewport repainted synchronously (viewport().repaint()); on alternate moves,
  instead, processEvents paints whatever the dab queued, as the event loop does.
  Reference: a bare numpy disc write of the same voxels + a bare pyqtgraph
  ImageItem.setImage of the label slice and a repaint of a bare GraphicsView holding it.
  The axial view's repaint with nothing changed is printed too: the floor of any frame.
- undo of a stroke (<= 50 ms): Ctrl+Z sent to the axial view, then processEvents paints
  every view the undo changed.
  Reference: numpy writing the stroke's old values back (the floor of any undo).

Wall times on a machine whose cores other processes share swing with their load; the
CPU time of this process per dab is printed beside them (as bench_infer does).

Run: nice -n 10 python benchmarks/bench_paint.py [--dabs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from medview.core.geometry import affine_from_plane
from medview.core.labels import LabelMap
from medview.core.volume import Volume, VolumeMetadata
from medview.ui.paint_tools import PaintController
from medview.ui.slice_view import SliceView
from medview.viewer import label_tools as lt
from medview.viewer.label_editor import LabelEditor
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState

Qt = QtCore.Qt
SHAPE = (300, 512, 512)
FRAME_GAP_S = 0.020  # one mouse move a frame (50 Hz), above the controller's frame limit


def ct_volume() -> Volume:
    array = np.empty(SHAPE, np.int16)
    yy, xx = np.mgrid[:512, :512]
    body = (((yy - 256) / 200.0) ** 2 + ((xx - 256) / 240.0) ** 2 <= 1) * 1040 - 1000
    array[:] = body.astype(np.int16)
    affine = affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (0.7, 0.7), (0, 0, 1.0))
    return Volume(array, affine, VolumeMetadata(modality="CT", units="HU"))


def pump(app: QtWidgets.QApplication, seconds: float = 0.0) -> None:
    end = time.perf_counter() + seconds
    app.processEvents()
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def send_mouse(widget, kind, pos, button, buttons) -> None:
    glob = QtCore.QPointF(widget.mapToGlobal(pos.toPoint()))
    ev = QtGui.QMouseEvent(kind, pos, glob, button, buttons, Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(widget, ev)


def screen_point(view: SliceView, row: float, col: float) -> QtCore.QPointF:
    p = view.pixel_to_mm(row, col)
    return QtCore.QPointF(view.mapFromScene(view.vb.mapViewToScene(p)))


def stroke_times(
    app, views, dabs: int, row: float, cpu: list[float] | None = None
) -> tuple[list[float], list[float]]:
    """(ms to the axial view repainted, ms to every view painted by the event loop), on
    alternate moves of one stroke; the forced ones' CPU ms go to `cpu`."""
    cpu = [] if cpu is None else cpu
    axial = views[0]
    vp = axial.viewport()
    left = Qt.MouseButton.LeftButton
    send_mouse(vp, QtCore.QEvent.Type.MouseButtonPress, screen_point(axial, row, 60), left, left)
    pump(app, FRAME_GAP_S)
    own, all_views = [], []
    for k in range(dabs):
        p = screen_point(axial, row + 20 * np.sin(k / 5), 60 + k * 380 / dabs)
        t0, c0 = time.perf_counter(), time.process_time()
        send_mouse(vp, QtCore.QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, left)
        if k % 2 == 0:  # forced: the axial view painted at once
            vp.repaint()
            own.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
            app.processEvents()
        else:  # as the event loop paints: each view with a queued update once
            app.processEvents()
            all_views.append((time.perf_counter() - t0) * 1e3)
        time.sleep(FRAME_GAP_S)
    send_mouse(vp, QtCore.QEvent.Type.MouseButtonRelease, p, left, Qt.MouseButton.NoButton)
    pump(app)
    return own, all_views


def reference_dab(editor: LabelEditor, dabs: int) -> list[float]:
    """numpy disc write + bare ImageItem.setImage + repaint of a bare GraphicsView."""
    labels = np.zeros(SHAPE, np.uint8)
    view = pg.GraphicsView()
    vb = pg.ViewBox(lockAspect=True, invertY=True)
    view.setCentralItem(vb)
    item = pg.ImageItem(axisOrder="row-major")
    vb.addItem(item)
    lut = np.zeros((256, 4), np.uint8)
    lut[1:] = (230, 25, 75, 255)
    item.setLookupTable(lut)
    view.resize(512, 512)
    view.show()
    pump(QtWidgets.QApplication.instance(), 0.2)
    offs = lt.ball_offsets(editor.spacing_mm, editor.tool.radius_mm, 0)
    out = []
    for k in range(dabs):
        t0 = time.perf_counter()
        centre = np.array([150, 200, 60 + k * 380 // dabs])
        ijk = centre + offs
        labels[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = 1
        item.setImage(labels[150], autoLevels=False, levels=(0, 255))
        view.viewport().repaint()
        out.append((time.perf_counter() - t0) * 1e3)
    view.close()
    return out


def summary(ms: list[float]) -> str:
    return f"median {statistics.median(ms):6.2f} ms, p95 {np.percentile(ms, 95):6.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dabs", type=int, default=60)
    args = ap.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    pg.setConfigOptions(imageAxisOrder="row-major")
    t0 = time.perf_counter()
    state = ViewerState()
    state.set_volume(ct_volume(), "bench")
    editor = LabelEditor(state, LabelMap.empty(SHAPE, "bench"))
    editor.label_map.array.fill(0)  # every page resident, as a loaded label map
    window = QtWidgets.QWidget()
    layout = QtWidgets.QHBoxLayout(window)
    layout.setContentsMargins(0, 0, 0, 0)
    views = [SliceView(state, p) for p in (Plane.AXIAL, Plane.CORONAL, Plane.SAGITTAL)]
    for v in views:
        v.setFixedSize(512, 512)
        layout.addWidget(v)
    window.show()
    pump(app, 0.3)
    editor.add_segment("Lesion")
    PaintController(views, editor)
    print(
        f"setup {time.perf_counter() - t0:.1f} s; 300 x 512 x 512 int16 CT + uint8 labels; "
        f"1 x 3 views of 512 x 512 px"
    )
    for radius in (5.0, 15.0):
        editor.set_tool(name="brush", radius_mm=radius)
        stroke_times(app, views, 8, 100)  # warm-up
        cpu: list[float] = []
        own, all_views = stroke_times(app, views, args.dabs, 200 + radius * 4, cpu)
        ref = reference_dab(editor, args.dabs)
        undo_ms, undo_cpu = [], []
        change = None
        for _ in range(5):
            stroke_times(app, views, 20, 300)
            change_size = len(editor.history._undo[-1][1].indices)
            t1, c1 = time.perf_counter(), time.process_time()
            QtWidgets.QApplication.sendEvent(
                views[0],
                QtGui.QKeyEvent(
                    QtCore.QEvent.Type.KeyPress, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                ),
            )
            app.processEvents()  # paints each view the undo changed, once
            undo_ms.append((time.perf_counter() - t1) * 1e3)
            undo_cpu.append((time.process_time() - c1) * 1e3)
            change = change_size
        flat = np.flatnonzero(editor.label_map.array.reshape(-1) == 1)[:change]
        old = np.zeros(len(flat), np.uint8)
        ref_undo = []
        for _ in range(5):
            t1 = time.perf_counter()
            editor.label_map.array.reshape(-1)[flat] = old
            ref_undo.append((time.perf_counter() - t1) * 1e3)
        floor = []
        for _ in range(args.dabs):
            t1 = time.perf_counter()
            views[0].viewport().repaint()
            floor.append((time.perf_counter() - t1) * 1e3)
        med = statistics.median(own)
        print(
            f"\nbrush {radius:g} mm ({len(lt.ball_offsets(editor.spacing_mm, radius, 0))} "
            f"voxels a dab), {args.dabs} dabs:"
        )
        print(
            f"  dab -> axial repainted     {summary(own)}   goal <= 16 ms: "
            f"{'met' if np.percentile(own, 95) <= 16 else 'MISSED'}"
        )
        print(f"  dab -> event loop painted  {summary(all_views)}")
        print(f"  CPU time of a dab to the axial repaint (this process) {summary(cpu)}")
        print(
            f"  reference numpy+ImageItem  {summary(ref)}   ratio "
            f"{med / statistics.median(ref):.2f}x"
        )
        print(
            f"  repaint of the axial view alone (no dab) {summary(floor)}   ratio "
            f"{med / statistics.median(floor):.2f}x"
        )
        um = statistics.median(undo_ms)
        print(
            f"  undo of a {change}-voxel stroke (Ctrl+Z to painted): median "
            f"{um:.1f} ms, max {max(undo_ms):.1f} ms   goal <= 50 ms: "
            f"{'met' if max(undo_ms) <= 50 else 'MISSED'}; CPU median "
            f"{statistics.median(undo_cpu):.1f} ms"
        )
        print(
            f"  reference numpy write-back {statistics.median(ref_undo):.2f} ms   ratio "
            f"{um / max(statistics.median(ref_undo), 1e-3):.0f}x"
        )
    window.close()


if __name__ == "__main__":
    main()

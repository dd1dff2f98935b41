"""Guard against the PySide6 build that leaks references to True/None (docs/development.md): on
CPython 3.11, PySide6-Essentials 6.12.0 drops one reference to True per Signal.emit() and
about five to None per pyqtgraph repaint, and the viewer aborts with "Fatal Python error:
bool_dealloc" after about a thousand frames. Run in a child so a leaking build cannot take
the test session down."""

import subprocess
import sys

PROBE = r"""
import os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

app = pg.mkQApp()
win = pg.GraphicsLayoutWidget(size=(256, 256))
img = pg.ImageItem(axisOrder="row-major")
win.addViewBox().addItem(img)
win.show()
app.processEvents()
pad = [True, False, None] * 200_000  # keeps a leaking build alive through the probe

class Emitter(QtCore.QObject):
    fired = QtCore.Signal()

e = Emitter()
def counts():
    return np.array([sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)])
worst = 0.0
for f in (e.fired.emit, win.viewport().repaint, app.processEvents,
          lambda: img.setImage(np.zeros((32, 32), np.int16), autoLevels=False, levels=(0, 1))):
    before = counts()
    for _ in range(200):
        f()
    worst = min(worst, float(((counts() - before) / 200).min()))
print("WORST", worst)
sys.stdout.flush()
os._exit(0)
"""


def test_pyside_does_not_leak_references_to_singletons():
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    worst = float(r.stdout.split("WORST")[1])
    # Python >= 3.12 makes True/None immortal: counts never drop there.
    assert worst > -0.5, (
        f"this PySide6 build loses {-worst:.1f} references per call to True/False/None; "
        f"the app would abort after about a thousand frames (use PySide6 6.11.3)"
    )


def test_installed_pyside_is_not_the_known_leaking_build():
    import PySide6

    if sys.version_info[:2] == (3, 11):
        assert PySide6.__version__ != "6.12.0"

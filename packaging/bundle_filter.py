"""What the PyInstaller bundle leaves out, as data, so the spec stays short and a test can
check the rules without building (tests/packaging/test_bundle_filter.py).

Rules are about what MedView does not use, not about today's file list: the app grows while
it is packaged, and everything under medview/ (code, resources, bundled models, the demo
generator) is collected whole by the spec. Measured here (NOTES.md): the plain build is
1.14 GB; torch's tests, test binaries and headers are most of what these rules remove.
Never remove torch/bin/torch_shm_manager: torch starts it for shared memory, and the app
dies without it."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

# Qt modules the app never imports (PySide6-Essentials ships some of them, PySide6-Addons
# the rest; naming them all keeps a build from a full PySide6 as lean). QtSvg stays (icons),
# and so do QtOpenGL and QtOpenGLWidgets: pyqtgraph's PlotCurveItem imports QtOpenGL.
UNUSED_QT = (
    "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender",
    "QtAxContainer", "QtBluetooth", "QtCharts", "QtConcurrent", "QtDataVisualization",
    "QtDBus", "QtDesigner", "QtGraphs", "QtGraphsWidgets", "QtHelp", "QtHttpServer",
    "QtLocation", "QtMultimedia", "QtMultimediaWidgets", "QtNetwork", "QtNetworkAuth",
    "QtNfc", "QtPdf", "QtPdfWidgets", "QtPositioning",
    "QtPrintSupport", "QtQml", "QtQuick",
    "QtQuick3D", "QtQuickControls2", "QtQuickTest", "QtQuickWidgets", "QtRemoteObjects",
    "QtScxml", "QtSensors", "QtSerialBus", "QtSerialPort", "QtSpatialAudio", "QtSql",
    "QtStateMachine", "QtTest", "QtTextToSpeech", "QtUiTools", "QtWebChannel",
    "QtWebEngineCore", "QtWebEngineQuick", "QtWebEngineWidgets", "QtWebSockets",
    "QtWebView", "QtXml",
)

# Python packages the app does not need at run time: test tools, notebooks, plotting,
# and the parts of torch / onnxruntime that are for developers of those libraries.
EXCLUDED_MODULES = (
    *(f"PySide6.{m}" for m in UNUSED_QT),
    "tkinter", "_tkinter", "matplotlib", "IPython", "ipykernel", "jupyter_client",
    "notebook", "pytest", "_pytest", "pytestqt", "hypothesis", "expecttest",
    "nibabel", "onnx", "tensorboard", "torch.utils.tensorboard", "data_store",
    "torchvision", "onnxruntime.tools",
    "onnxruntime.transformers", "onnxruntime.quantization", "setuptools", "pip",
)

# Files dropped from the collected binaries and data (paths as inside the bundle, with
# forward slashes; fnmatch patterns, "*" crosses folders).
DROPPED_FILES = (
    "torch/test/*",        # C++ test programs and their data (83 MB)
    "torch/bin/*",         # test programs and protoc; torch_shm_manager is kept below
    "torch/include/*",     # C++ headers (62 MB)
    "torch/share/cmake/*",
    "*.a", "*.lib", "*.pyi", "*.cmake",
    "*/tests/data/*", "*/test_files/*",  # libraries' own test data (pydicom: 10 MB)
    "PySide6/Qt/translations/*",  # Qt's own dialogs in other languages; MedView is English
    "PySide6/Qt/qml/*",    # Qt Quick: the app is all widgets
    # Qt platforms for embedded devices and remote framebuffers (xcb, wayland and
    # offscreen stay: desktops and the headless self-test)
    "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
    "PySide6/Qt/plugins/platforms/libqminimal*.so", "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so", "PySide6/Qt/plugins/generic/*",
    "PySide6/Qt/plugins/egldeviceintegrations/*", "PySide6/Qt/lib/libQt6EglFs*",
    # torch's own test libraries
    "torch/lib/*test*.so", "torch/lib/libaoti_custom_ops.so",
    "torch/lib/libbackend_with_compiler.so",
)

# Shared libraries whose symbol tables (not needed to run: the dynamic symbols stay) are
# stripped after the build: libtorch_cpu.so goes from 435 to 345 MB, libpython from 23 to
# 6 MB (a pyenv build), the DICOM decoders lose 18 MB. Only these: libraries repaired by
# auditwheel (numpy.libs, scipy.libs) are patched ELF files that strip can break.
STRIPPED_FILES = ("torch/lib/*.so", "torch/lib/*.so.*", "libpython3*.so*",
                  "_CharLS.*.so", "_openjpeg.*.so", "_libjpeg.*.so")

# Always kept, whatever matches above.
KEPT_FILES = (
    "torch/bin/torch_shm_manager",
    "torch/bin/torch_shm_manager.exe",
)


def keep(dest: str) -> bool:
    """Whether the bundle keeps the file that PyInstaller would put at `dest`."""
    path = dest.replace("\\", "/")
    if any(fnmatch(path, pattern) for pattern in KEPT_FILES):
        return True
    return not any(fnmatch(path, pattern) for pattern in DROPPED_FILES)


def filter_toc(toc: list) -> list:
    """A PyInstaller TOC (dest, source, kind) without the files the rules above drop."""
    return [entry for entry in toc if keep(entry[0])]


def strip_symbols(bundle: Path) -> int:
    """Strip the symbol tables of STRIPPED_FILES under `bundle` (Linux, GNU strip) and
    return the bytes saved; nothing happens where strip is missing."""
    import shutil
    import subprocess

    strip = shutil.which("strip")
    if strip is None:
        return 0
    saved = 0
    for path in sorted(p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(bundle).as_posix()
        if any(fnmatch(rel, f"*{pattern}") for pattern in STRIPPED_FILES):
            before = path.stat().st_size
            subprocess.run([strip, "--strip-unneeded", str(path)], check=True)
            saved += before - path.stat().st_size
    return saved

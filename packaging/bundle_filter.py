"""What the PyInstaller bundle leaves out, as data, so the spec stays short and a test can
check the rules without building (tests/bundle/test_bundle_rules.py).

Rules are about what MedView does not use, not about today's file list: the app grows while
it is packaged, and everything under medview/ (code, resources, bundled models, the demo
generator) is collected whole by the spec. Never remove torch/bin/torch_shm_manager: torch
starts it for shared memory, and the app dies without it.

How "not used" was found (packaging/README.md, "What is left out and why"): every module
imported and every shared library mapped was recorded (an atexit hook in sitecustomize)
in each process of the ui, io, ai and commands tests, `medview --selftest` and the training
runs those tests start (92 processes, 4400 modules); each rule below names something that
no process loaded, or a part whose only users are ones no process loaded, and says why no
MedView path needs it. The built app's self-test and decoder/NIfTI/ONNX/training checks
then prove the result."""

from __future__ import annotations

import json
import os
import re
from fnmatch import fnmatch
from importlib.util import find_spec
from pathlib import Path

# Qt modules the app never imports (PySide6-Essentials ships some of them, PySide6-Addons
# the rest; naming them all keeps a build from a full PySide6 as lean). QtSvg stays (icons),
# and so do QtOpenGL and QtOpenGLWidgets: pyqtgraph's PlotCurveItem imports QtOpenGL.
UNUSED_QT = (
    "Qt3DAnimation",
    "Qt3DCore",
    "Qt3DExtras",
    "Qt3DInput",
    "Qt3DLogic",
    "Qt3DRender",
    "QtAxContainer",
    "QtBluetooth",
    "QtCharts",
    "QtConcurrent",
    "QtDataVisualization",
    "QtDBus",
    "QtDesigner",
    "QtGraphs",
    "QtGraphsWidgets",
    "QtHelp",
    "QtHttpServer",
    "QtLocation",
    "QtMultimedia",
    "QtMultimediaWidgets",
    "QtNetwork",
    "QtNetworkAuth",
    "QtNfc",
    "QtPdf",
    "QtPdfWidgets",
    "QtPositioning",
    "QtPrintSupport",
    "QtQml",
    "QtQuick",
    "QtQuick3D",
    "QtQuickControls2",
    "QtQuickTest",
    "QtQuickWidgets",
    "QtRemoteObjects",
    "QtScxml",
    "QtSensors",
    "QtSerialBus",
    "QtSerialPort",
    "QtSpatialAudio",
    "QtSql",
    "QtStateMachine",
    "QtTest",
    "QtTextToSpeech",
    "QtUiTools",
    "QtWebChannel",
    "QtWebEngineCore",
    "QtWebEngineQuick",
    "QtWebEngineWidgets",
    "QtWebSockets",
    "QtWebView",
    "QtXml",
)

# torch.testing._internal is torch's own test suite (6.7 MB); torch itself imports only
# these at run time (torch.utils.checkpoint, torch._refs, torch.distributed; grep of torch
# outside torch/testing, and the recorded runs: nothing else was loaded).
TORCH_TESTING_KEPT = ("common_dtype", "logging_tensor", "distributed", "distributed.fake_pg")

# Parts of torch for compiling (torch.compile / AOTInductor code generators), quantising,
# distributed checkpointing and pipelining, and torch developers' tools. MedView runs
# networks eagerly, trains with plain DDP and loads torch.export programs: none was loaded
# by any recorded process (training and .pt2 import included).
TORCH_UNUSED = (
    "torch._inductor.kernel",
    "torch._inductor.scheduler",
    "torch._inductor.lowering",
    "torch._inductor.select_algorithm",
    "torch._inductor.graph",
    "torch._inductor.compile_fx",
    "torch._inductor.codegen.triton",
    "torch._inductor.codegen.cpp",
    "torch._inductor.codegen.cutlass",
    "torch._inductor.codegen.wrapper",
    "torch._inductor.codegen.pallas",
    "torch._inductor.codegen.simd",
    "torch._inductor.fx_passes.serialized_patterns",
    "torch._inductor.autoheuristic",
    "torch._inductor.cudagraph_trees",
    "torch._inductor.pattern_matcher",
    "torch._inductor.template_heuristics",
    "torch._inductor.runtime.triton_heuristics",
    "torch._vendor.quack",
    "torch.sparse._triton_ops",
    "torch.sparse._triton_ops_meta",
    "torch.distributed.checkpoint",
    "torch.distributed.pipelining",
    "torch.distributed._tools",
    "torch.distributed.flight_recorder",
    "torch.ao.quantization.fx",
    "torch.ao.ns",
    "torch.ao.pruning",
    "torch.utils.benchmark",
    "torch.utils.hipify",
    "torch.backends._nnapi",
    "torch._dynamo.repro",
    "functorch",  # the old standalone name of torch.func
    # sympy (torch's symbolic shapes) without physics, vectors, code printers, its tests
    "sympy.physics",
    "sympy.vector",
    "sympy.testing",
    "sympy.codegen",
    "sympy.categories",
)

# The VTK modules the 3D view (medview/ui/volume_scene.py) loads: what it imports and what
# those import in turn (tests/bundle/test_bundle_rules.py checks the list against a real
# import, so a new import that pulls in more is seen here). PyInstaller's VTK hooks collect
# exactly the modules imported, with the libraries they link; nothing may import VTK whole
# (`import vtk`, vtkmodules.all: 563 MB unstripped), so those entry points are excluded below.
# Measured (VTK 9.7.2 wheel, CPython 3.11, Linux x86-64): these modules and the libvtk*.so they
# link are 87 files, 243 MB after strip; libvtkCommonCore (62 MB) and libvtkFiltersCore
# (39 MB) are over 40 % of it, and any VTK rendering needs both.
VTK_MODULES = (
    "vtkCommonCore",
    "vtkCommonDataModel",
    "vtkCommonExecutionModel",
    "vtkCommonMath",
    "vtkCommonMisc",
    "vtkCommonSystem",
    "vtkCommonTransforms",
    "vtkFiltersCore",
    "vtkFiltersGeneral",
    "vtkFiltersSources",
    "vtkIOCore",
    "vtkIOImage",
    "vtkImagingCore",
    "vtkImagingMath",
    "vtkInteractionStyle",
    "vtkParallelCore",
    "vtkRenderingCore",
    "vtkRenderingFreeType",
    "vtkRenderingHyperTreeGrid",
    "vtkRenderingLabel",
    "vtkRenderingOpenGL2",
    "vtkRenderingUI",
    "vtkRenderingVolume",
    "vtkRenderingVolumeOpenGL2",
)
# VTK's entry points that import every module, and its bindings to other toolkits (MedView
# paints VTK's frames in its own Qt widget: ui/volume_view.py)
VTK_UNUSED = (
    "vtk",
    "vtkmodules.all",
    "vtkmodules.qt",
    "vtkmodules.tk",
    "vtkmodules.wx",
    "vtkmodules.gtk",
    "vtkmodules.web",
    "vtkmodules.test",
    "vtkmodules.generate_pyi",
)

# Python packages the app does not need at run time: test tools, notebooks, plotting,
# the parts of torch / onnxruntime that are for developers of those libraries, and
# packages no MedView code path imported: rich / markdown_it / pygments (pretty printing
# for torch's debug tools; pygments was loaded only by pytest; no bundled library imports
# it), jinja2 (torch._inductor's code templates), fsspec
# (torch.distributed.checkpoint), pydoc_data (help() texts); scipy.io and scipy.signal
# (file formats and filters MedView does not use; monai reaches scipy.signal only through
# optional_import, which tolerates its absence).
EXCLUDED_MODULES = (
    *(f"PySide6.{m}" for m in UNUSED_QT),
    "tkinter",
    "_tkinter",
    "matplotlib",
    "IPython",
    "ipykernel",
    "jupyter_client",
    "notebook",
    "pytest",
    "_pytest",
    "pytestqt",
    "hypothesis",
    "expecttest",
    "nibabel",
    "onnx",
    "tensorboard",
    "torch.utils.tensorboard",
    "data_store",
    "torchvision",
    "onnxruntime.tools",
    "onnxruntime.transformers",
    "onnxruntime.quantization",
    "setuptools",
    "pip",
    "rich",
    "markdown_it",
    "mdurl",
    "pygments",
    "jinja2",
    "markupsafe",
    "fsspec",
    "pydoc_data",
    "scipy.io",
    "scipy.signal",
    "readline",  # line editing for an interactive prompt; the app has none
    *TORCH_UNUSED,
    *VTK_UNUSED,
)

# Files dropped from the collected binaries and data (paths as inside the bundle, with
# forward slashes; fnmatch patterns, "*" crosses folders). A link PyInstaller makes to a
# dropped file goes with it.
DROPPED_FILES = (
    "torch/test/*",  # C++ test programs and their data (83 MB)
    "torch/bin/*",  # test programs and protoc; torch_shm_manager is kept below
    "torch/include/*",  # C++ headers (62 MB)
    "torch/share/cmake/*",
    "*.a",
    "*.lib",
    "*.pyi",
    "*.cmake",
    "*/tests/data/*",
    "*/test_files/*",  # libraries' own test data (pydicom: 10 MB)
    "PySide6/Qt/translations/*",  # Qt's own dialogs in other languages; MedView is English
    "PySide6/Qt/qml/*",  # Qt Quick: the app is all widgets
    # Qt platforms for embedded devices and remote framebuffers (xcb, wayland and
    # offscreen stay: desktops and the headless self-test)
    "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
    "PySide6/Qt/plugins/platforms/libqminimal*.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so",
    "PySide6/Qt/plugins/generic/*",
    "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/lib/libQt6EglFs*",
    "PySide6/Qt/lib/libQt6EglFS*",  # libQt6EglFSDeviceIntegration: eglfs only
    # QtNetwork's library: no bundled library or plugin needs it (readelf) and the Python
    # module is excluded; with it go the Kerberos libraries only it needs (3.7 MB)
    "PySide6/Qt/lib/libQt6Network.so*",
    "libgssapi_krb5.so*",
    "libkrb5.so*",
    "libkrb5support.so*",
    "libk5crypto.so*",
    "libcom_err.so*",
    "libkeyutils.so*",
    # image formats MedView never reads or writes: it draws PNG (built into QtGui) and
    # SVG (icons); DICOM pixels never go through Qt's image plugins
    "PySide6/Qt/plugins/imageformats/libq[!s]*.so",
    # Pillow is imported by highdicom and pydicom, but never for AVIF, fonts or Tk: its
    # AVIF codec (libavif 4.9 MB) and font renderer (FreeType, HarfBuzz) stay out;
    # PIL.AvifImagePlugin and ImageFont report them as unavailable
    "PIL/_avif.*",
    "pillow.libs/libavif-*",
    "PIL/_imagingft.*",
    "pillow.libs/libfreetype-*",
    "pillow.libs/libharfbuzz-*",
    "pillow.libs/libbrotli*",
    "PIL/_imagingtk.*",
    # install records and SBOMs of the bundled distributions: nothing reads them at run
    # time (versions and entry points come from METADATA and entry_points.txt, kept)
    "*.dist-info/RECORD",
    "*.dist-info/sboms/*",
    "*.dist-info/*.cdx.json",
    # readline's terminal libraries (the module is excluded above)
    "libreadline.so*",
    "libtinfo.so*",
    # Qt's GTK 3 platform theme (native GTK dialogs and colours on GNOME-like desktops) and
    # the GTK stack libraries only it needs (9.5 MB; readelf: no other bundled file needs
    # them). It cannot work from a bundle: it needs the desktop's own libgtk-3, which
    # PyInstaller does not bundle, and would load it against the build machine's pango,
    # cairo and gio from the bundle. MedView draws with Fusion and its own palette; its
    # file dialogs come from the XDG desktop portal (libqxdgdesktopportal, kept) or Qt.
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "libatk-1.0.so*",
    "libcairo*.so*",
    "libgdk_pixbuf-2.0.so*",
    "libgio-2.0.so*",
    "libgobject-2.0.so*",
    "libgmodule-2.0.so*",
    "libharfbuzz.so*",
    "libpango*.so*",
    "libpixman-1.so*",
    "libXext.so*",
    "libXrender.so*",
    "libfribidi.so*",
    "libthai.so*",
    "libdatrie.so*",
    "libgraphite2.so*",
    "libmount.so*",
    "libblkid.so*",
    "libselinux.so*",
    "libjpeg.so.62*",
    # torch.testing._internal beyond TORCH_TESTING_KEPT: data files of its tests
    "torch/testing/_internal/data/*",
    "torch/testing/_internal/generated/*",
    # torch's own test libraries
    "torch/lib/*test*.so",
    "torch/lib/libaoti_custom_ops.so",
    "torch/lib/libbackend_with_compiler.so",
)

# Symbol tables of shared libraries and extension modules are not needed to run (the
# dynamic symbols stay): libtorch_cpu.so goes from 435 to 345 MB, the Python standard
# library's extension modules (a pyenv build) lose 7 MB, scipy's 7 MB. Never the libraries
# auditwheel grafted into a wheel's "*.libs" folder (numpy.libs, scipy.libs, pillow.libs):
# strip breaks them (measured: numpy's OpenBLAS then fails to load with "ELF load command
# address/offset not page-aligned").
NOT_STRIPPED = ("*.libs/*",)

# Always kept, whatever matches above.
KEPT_FILES = (
    "torch/bin/torch_shm_manager",
    "torch/bin/torch_shm_manager.exe",
)

# JSON data collected minified (same json.load result, no indentation): highdicom's copy
# of the DICOM standard is 22.7 MB pretty-printed, 15.7 MB minified.
MINIFIED_JSON = ("highdicom/_standard/*.json",)

# A module keeps its .py source in the bundle (beside its byte code) when torch reads that
# source at run time: torch's config modules parse their own source when imported
# (install_config_module), TorchScript compiles functions from source (torch.nn.functional
# and the rnn modules when imported, monai's DiNTS), and a few modules inspect their own
# source. Every other module of torch and monai is byte code only (46 MB of torch sources
# otherwise; the recorded runs read no other torch or monai source, apart from tracebacks
# and inspect.stack(), which do without).
SOURCE_PACKAGES = ("torch", "monai")
NEEDS_SOURCE = re.compile(
    r"install_config_module|jit\.script|jit\.interface|jit\.ignore|jit\.unused|jit\.export"
    r"|jit\.trace|(?<!\w)_overload\b|_overload_method|boolean_dispatch|script_if_tracing"
    r"|getsource|findsource"
)


def _package_dir(package: str) -> Path | None:
    spec = find_spec(package)
    return (
        Path(spec.submodule_search_locations[0])
        if spec and spec.submodule_search_locations
        else None
    )


def module_collection_mode(packages: tuple[str, ...] = SOURCE_PACKAGES) -> dict[str, str]:
    """PyInstaller's module_collection_mode for every module of `packages`: "pyz+py" (byte
    code and source) where NEEDS_SOURCE matches the module's text, "pyz" (byte code only)
    elsewhere. Every module is named, so a package's setting never reaches its children."""
    modes: dict[str, str] = {}
    for package in packages:
        root = _package_dir(package)
        if root is None:
            continue
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            text = path.read_text(encoding="utf-8", errors="replace")
            modes[name] = "pyz+py" if NEEDS_SOURCE.search(text) else "pyz"
    return modes


def excluded_modules() -> list[str]:
    """EXCLUDED_MODULES and the modules of torch.testing._internal beyond what torch needs;
    with MEDVIEW_BUNDLE_VTK=0 in the environment all of VTK too (243 MB: a bundle without the
    3D view, whose cell then says so)."""
    out = list(EXCLUDED_MODULES)
    if os.environ.get("MEDVIEW_BUNDLE_VTK", "1") == "0":
        out.append("vtkmodules")
    root = _package_dir("torch")
    internal = root / "testing" / "_internal" if root else None
    if internal and internal.is_dir():
        for path in sorted(internal.rglob("*.py")):
            rel = path.relative_to(internal).with_suffix("").parts
            rel = rel[:-1] if rel[-1] == "__init__" else rel
            name = ".".join(rel)
            if rel and not any(name == k or k.startswith(name + ".") for k in TORCH_TESTING_KEPT):
                out.append("torch.testing._internal." + name)
    return out


def keep(dest: str) -> bool:
    """Whether the bundle keeps the file that PyInstaller would put at `dest`."""
    path = dest.replace("\\", "/")
    if any(fnmatch(path, pattern) for pattern in KEPT_FILES):
        return True
    return not any(fnmatch(path, pattern) for pattern in DROPPED_FILES)


def filter_toc(toc: list) -> list:
    """A PyInstaller TOC (dest, source, kind) without the files the rules above drop, and
    without the links (kind SYMLINK, source = the bundle path linked to) to them."""
    return [entry for entry in toc if keep(entry[0]) and (entry[2] != "SYMLINK" or keep(entry[1]))]


def needed_but_dropped(before: list, after: list) -> list[str]:
    """ "BINARY needs LIBRARY" for each library that a kept binary links to (PyInstaller's
    own dependency reader: ldd, pefile or macholib) and the rules dropped; the spec fails
    the build unless this is empty, so a rule can never cut a library out from under a
    part that stays, whatever the build machine links."""
    from PyInstaller.depend.bindepend import get_imports

    kept = {Path(entry[0]).name for entry in after}
    dropped = {Path(entry[0]).name for entry in before} - kept
    problems = []
    for dest, source, kind in after:
        if kind in ("BINARY", "EXTENSION"):
            problems += [
                f"{dest} needs {name}"
                for name, _ in get_imports(source)
                if Path(name).name in dropped
            ]
    return problems


def minify_json(toc: list, workdir: Path) -> list:
    """The data TOC with each MINIFIED_JSON file replaced by a minified copy in `workdir`."""
    out = []
    for dest, source, kind in toc:
        if any(fnmatch(dest.replace("\\", "/"), p) for p in MINIFIED_JSON):
            target = Path(workdir, "minified", dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            data = json.loads(Path(source).read_text(encoding="utf-8"))
            target.write_text(
                json.dumps(data, separators=(",", ":"), ensure_ascii=False), encoding="utf-8"
            )
            source = str(target)
        out.append((dest, source, kind))
    return out


def _elf_files(bundle: Path) -> list[Path]:
    out = []
    for path in sorted(p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()):
        with path.open("rb") as f:
            if f.read(4) == b"\x7fELF":
                out.append(path)
    return out


def strip_symbols(bundle: Path) -> int:
    """Strip the symbol tables of the ELF files under `bundle` (Linux, GNU strip) except
    NOT_STRIPPED and the executables at its top (PyInstaller appends the app's archive to
    them, which strip would cut off); return the bytes saved (0 where strip is missing)."""
    import shutil
    import subprocess

    strip = shutil.which("strip")
    if strip is None:
        return 0
    saved = 0
    for path in _elf_files(bundle):
        rel = path.relative_to(bundle).as_posix()
        if path.parent == bundle or any(fnmatch(rel, f"*{p}") for p in NOT_STRIPPED):
            continue
        before = path.stat().st_size
        subprocess.run([strip, "--strip-unneeded", str(path)], check=True)
        saved += before - path.stat().st_size
    return saved


def link_duplicates(bundle: Path) -> int:
    """Replace each shared library that is a byte-for-byte copy of another with the same
    name elsewhere in `bundle` (numpy.libs and scipy.libs carry the same libgfortran and
    libquadmath) by a relative symbolic link to the first; return the bytes saved."""
    groups: dict[tuple[str, int], list[Path]] = {}
    for path in _elf_files(bundle):
        groups.setdefault((path.name, path.stat().st_size), []).append(path)
    saved = 0
    for paths in groups.values():
        first, data = paths[0], None
        for other in paths[1:]:
            data = data if data is not None else first.read_bytes()
            if other.read_bytes() == data:
                size = other.stat().st_size
                other.unlink()
                other.symlink_to(os.path.relpath(first, other.parent))
                saved += size
    return saved

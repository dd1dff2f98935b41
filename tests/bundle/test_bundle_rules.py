"""The desktop bundle's rules, checked without building it (packaging/build builds and
self-tests the real thing): what is left out, the licence file, the desktop entry."""

import configparser
import importlib.util
import json
import os
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "packaging" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bundle_filter = _load("bundle_filter")
third_party_licenses = _load("third_party_licenses")


@pytest.mark.parametrize(
    "dest",
    [
        "torch/bin/torch_shm_manager",  # torch dies without it (docs/development.md)
        "torch/lib/libtorch_cpu.so",
        "medview/resources/models/lesion-seg/1.0/weights.safetensors",
        "medview/resources/icons/medview.png",
        "medview/demo/__init__.pyc",
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/lib/libQt6XcbQpa.so.6",
        "highdicom/_standard/module_attributes.json",
    ],
)
def test_kept(dest):
    assert bundle_filter.keep(dest)


@pytest.mark.parametrize(
    "dest",
    [
        "torch/test/test_api",
        "torch/bin/test_jit",
        "torch/bin/protoc",
        "torch/include/ATen/ATen.h",
        "torch/lib/libtorchbind_test.so",
        "torch/lib/libjitbackend_test.so",
        "torch\\lib\\c10.lib",
        "PySide6/Qt/plugins/platforms/libqeglfs.so",
        "PySide6/Qt/plugins/platforms/libqvnc.so",
        "PySide6/Qt/qml/QtQuick/Controls/libqtquickcontrols2plugin.so",
        "pydicom/data/test_files/CT_small.dcm",
        "PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6",
        "PySide6/Qt/lib/libQt6Network.so.6",
        "libgssapi_krb5.so.2",
        "libkrb5.so.3",
        "PySide6/Qt/plugins/imageformats/libqjpeg.so",
        "PySide6/Qt/plugins/imageformats/libqtiff.so",
        "PIL/_avif.cpython-311-x86_64-linux-gnu.so",
        "pillow.libs/libavif-c6062d5f.so.16.4.2",
        "PIL/_imagingft.cpython-311-x86_64-linux-gnu.so",
        "torch-2.13.0+cpu.dist-info/RECORD",
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
        "libgio-2.0.so.0",
        "libpango-1.0.so.0",
        "libcairo.so.2",
        "libreadline.so.8",
    ],
)
def test_dropped(dest):
    assert not bundle_filter.keep(dest)


def test_unused_qt_and_test_tools_are_excluded_but_not_what_the_app_imports():
    excluded = set(bundle_filter.excluded_modules())
    assert {
        "PySide6.QtWebEngineCore",
        "PySide6.QtQml",
        "PySide6.Qt3DCore",
        "PySide6.QtMultimedia",
        "pytest",
        "jinja2",
        "scipy.io",
        "torch._inductor.codegen.triton",
        "torch.distributed.checkpoint",
    } <= excluded
    for used in (
        "PySide6.QtCore",
        "PySide6.QtGui",
        "PySide6.QtWidgets",
        "PySide6.QtSvg",
        "PySide6.QtOpenGL",  # pyqtgraph.Qt.OpenGLHelpers imports it
        "torch",
        "torch.testing._internal",
        "monai",
        "SimpleITK",
        "onnxruntime",
        "torch.distributed",
        "torch._inductor",
        "torch._dynamo",
        "torch.export",
        "sympy",
        "mpmath",
        "networkx",  # torch.export.load needs networkx
        "PIL",
        "scipy.ndimage",
        "scipy.spatial",
        "scipy.stats",
        "scipy.sparse",
        "highdicom",
        "pydicom",
    ):
        assert used not in excluded  # torch.utils.checkpoint imports torch.testing._internal
        assert not any(used.startswith(e + ".") for e in excluded)


def test_a_library_a_kept_binary_needs_is_reported_if_dropped(monkeypatch):
    import PyInstaller.depend.bindepend as bindepend

    needs = {
        "/v/libqxcb.so": [("libX11.so.6", "/lib/libX11.so.6")],
        "/v/libqgtk3.so": [("libgio-2.0.so.0", "/lib/libgio-2.0.so.0")],
        "/lib/libX11.so.6": [],
        "/lib/libgio-2.0.so.0": [],
    }
    monkeypatch.setattr(bindepend, "get_imports", lambda source: needs[source])
    before = [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/v/libqxcb.so", "BINARY"),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "/v/libqgtk3.so", "BINARY"),
        ("libX11.so.6", "/lib/libX11.so.6", "BINARY"),
        ("libgio-2.0.so.0", "/lib/libgio-2.0.so.0", "BINARY"),
    ]
    after = bundle_filter.filter_toc(before)
    assert [e[0] for e in after] == ["PySide6/Qt/plugins/platforms/libqxcb.so", "libX11.so.6"]
    assert bundle_filter.needed_but_dropped(before, after) == []
    broken = [before[0], ("libgio-2.0.so.0", "/lib/libgio-2.0.so.0", "BINARY")]
    assert bundle_filter.needed_but_dropped(before, broken) == [
        "PySide6/Qt/plugins/platforms/libqxcb.so needs libX11.so.6"
    ]


def test_links_to_dropped_files_go_with_them():
    toc = [
        ("libQt6Network.so.6", "PySide6/Qt/lib/libQt6Network.so.6", "SYMLINK"),
        ("libQt6Core.so.6", "PySide6/Qt/lib/libQt6Core.so.6", "SYMLINK"),
        ("PySide6/Qt/lib/libQt6Core.so.6", "/venv/PySide6/Qt/lib/libQt6Core.so.6", "BINARY"),
    ]
    assert [e[0] for e in bundle_filter.filter_toc(toc)] == [
        "libQt6Core.so.6",
        "PySide6/Qt/lib/libQt6Core.so.6",
    ]


def test_only_modules_that_read_their_source_keep_it():
    modes = bundle_filter.module_collection_mode()
    # config modules parse their own source; TorchScript compiles these from source
    for name in (
        "torch._inductor.config",
        "torch._dynamo.config",
        "torch.distributed.config",
        "torch.nn.functional",
        "torch.functional",
        "torch.nn.modules.rnn",
        "monai.networks.nets.dints",
    ):
        assert modes[name] == "pyz+py", name
    for name in (
        "torch._inductor.ir",
        "torch.distributed.distributed_c10d",
        "torch.nn",
        "torch.nn.modules.conv",
        "monai.networks.nets.unet",
    ):
        assert modes[name] == "pyz", name
    assert sum(m == "pyz+py" for m in modes.values()) < len(modes) // 5


def test_torch_testing_internal_keeps_what_torch_imports_at_run_time():
    excluded = set(bundle_filter.excluded_modules())
    assert "torch.testing._internal.common_methods_invocations" in excluded
    assert "torch.testing._internal.distributed.rpc" in excluded
    for kept in (
        "torch.testing._internal",
        "torch.testing._internal.common_dtype",
        "torch.testing._internal.logging_tensor",
        "torch.testing._internal.distributed",
        "torch.testing._internal.distributed.fake_pg",
        "torch.testing",
    ):
        assert kept not in excluded


def test_minified_json_loads_the_same(tmp_path):
    source = tmp_path / "module_attribute_map.json"
    data = {"seg": [{"keyword": "PatientName", "type": "2", "path": []}], "µ": [1.5, None]}
    source.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    toc = [
        ("highdicom/_standard/module_attribute_map.json", str(source), "DATA"),
        ("pydicom/data/urls.json", str(source), "DATA"),
    ]
    out = bundle_filter.minify_json(toc, tmp_path / "work")
    assert out[1] == toc[1]
    minified = Path(out[0][1])
    assert json.loads(minified.read_text(encoding="utf-8")) == data
    assert minified.stat().st_size < source.stat().st_size


def test_identical_libraries_become_links_and_grafted_ones_are_never_stripped(tmp_path):
    for folder in ("numpy.libs", "scipy.libs"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "libgfortran-0352e75f.so.5.0.0").write_bytes(b"\x7fELF" + b"x" * 99)
    (tmp_path / "scipy.libs" / "libother.so").write_bytes(b"\x7fELF" + b"y" * 99)
    assert bundle_filter.link_duplicates(tmp_path) == 103
    link = tmp_path / "scipy.libs" / "libgfortran-0352e75f.so.5.0.0"
    assert link.is_symlink() and link.read_bytes() == b"\x7fELF" + b"x" * 99
    assert os.readlink(link) == "../numpy.libs/libgfortran-0352e75f.so.5.0.0"
    assert not (tmp_path / "scipy.libs" / "libother.so").is_symlink()
    assert any(
        fnmatch("scipy.libs/libscipy_openblas.so", f"*{p}") for p in bundle_filter.NOT_STRIPPED
    )


def test_licence_file_names_every_bundled_distribution_with_its_text():
    text = third_party_licenses.render()
    for name in (
        "torch",
        "PySide6",
        "shiboken6",
        "pydicom",
        "SimpleITK",
        "monai",
        "highdicom",
        "numpy",
        "scipy",
        "onnxruntime",
        "pylibjpeg-libjpeg",
    ):
        assert name.lower() in text.lower()
    assert "LGPL-3.0-only" in text and "GPL-3.0-only" in text
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in text  # PySide6's own licence text
    listed = [d.metadata["Name"].lower() for d in third_party_licenses.bundled_distributions()]
    assert "pytest" not in listed and "ruff" not in listed  # test and dev extras stay out


def test_desktop_entry_starts_medview_with_the_files_given():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(ROOT / "packaging" / "linux" / "medview.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"] == "medview %F"
    assert d["Icon"] == "medview" and d["Terminal"] == "false"
    assert "not a medical device" in d["Comment"]
    assert (ROOT / "medview" / "resources" / "icons" / "medview.png").is_file()


def test_the_vtk_modules_declared_are_those_the_3d_view_loads():
    """bundle_filter.VTK_MODULES names (and measures) what the bundle carries of VTK: an
    import in the 3D view that pulls in another module must be seen there, and nothing the
    view loads may be excluded."""
    import subprocess

    code = (
        "import sys, medview.ui.volume_view; "
        "print(' '.join(sorted(m.split('.')[1] for m in sys.modules "
        "if m.startswith('vtkmodules.vtk'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == sorted(bundle_filter.VTK_MODULES)
    excluded = set(bundle_filter.excluded_modules())
    assert {"vtk", "vtkmodules.all", "vtkmodules.qt"} <= excluded
    for name in ("vtkmodules", "vtkmodules.util.numpy_support", *bundle_filter.VTK_MODULES):
        full = name if name.startswith("vtkmodules") else f"vtkmodules.{name}"
        assert full not in excluded
        assert not any(full.startswith(e + ".") for e in excluded)


def test_a_bundle_without_vtk_on_request(monkeypatch):
    monkeypatch.setenv("MEDVIEW_BUNDLE_VTK", "0")
    assert "vtkmodules" in bundle_filter.excluded_modules()
    monkeypatch.delenv("MEDVIEW_BUNDLE_VTK")
    assert "vtkmodules" not in bundle_filter.excluded_modules()

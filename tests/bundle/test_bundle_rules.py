"""The desktop bundle's rules, checked without building it (packaging/build builds and
self-tests the real thing): what is left out, the licence file, the desktop entry."""

import configparser
import importlib.util
import sys
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


@pytest.mark.parametrize("dest", [
    "torch/bin/torch_shm_manager",  # torch dies without it (NOTES.md)
    "torch/lib/libtorch_cpu.so",
    "medview/resources/models/lesion-seg/1.0/weights.safetensors",
    "medview/resources/icons/medview.png",
    "medview/io/demo/__init__.pyc",
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/lib/libQt6XcbQpa.so.6",
    "highdicom/_standard/module_attributes.json",
])
def test_kept(dest):
    assert bundle_filter.keep(dest)


@pytest.mark.parametrize("dest", [
    "torch/test/test_api", "torch/bin/test_jit", "torch/bin/protoc",
    "torch/include/ATen/ATen.h", "torch/lib/libtorchbind_test.so",
    "torch/lib/libjitbackend_test.so", "torch\\lib\\c10.lib",
    "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/qml/QtQuick/Controls/libqtquickcontrols2plugin.so",
    "pydicom/data/test_files/CT_small.dcm",
])
def test_dropped(dest):
    assert not bundle_filter.keep(dest)


def test_unused_qt_and_test_tools_are_excluded_but_not_what_the_app_imports():
    excluded = set(bundle_filter.EXCLUDED_MODULES)
    assert {"PySide6.QtWebEngineCore", "PySide6.QtQml", "PySide6.Qt3DCore",
            "PySide6.QtMultimedia", "pytest"} <= excluded
    for used in ("PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtSvg",
                 "PySide6.QtOpenGL",  # pyqtgraph.Qt.OpenGLHelpers imports it
                 "torch", "torch.testing._internal", "monai", "SimpleITK", "onnxruntime"):
        assert used not in excluded  # torch.utils.checkpoint imports torch.testing._internal


def test_licence_file_names_every_bundled_distribution_with_its_text():
    text = third_party_licenses.render()
    for name in ("torch", "PySide6", "shiboken6", "pydicom", "SimpleITK", "monai",
                 "highdicom", "numpy", "scipy", "onnxruntime", "pylibjpeg-libjpeg"):
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

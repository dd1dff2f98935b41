"""The list of Debian packages scripts/setup.sh installs for Qt's window
(medview/resources/qt-debian-packages.txt) cannot go stale: ldd says which system libraries
the installed PySide6's xcb plugin and Qt modules load, dpkg -S which package each comes from,
and the list must name them all. Whatever this machine has installed: a library ldd cannot
find fails the test with its name, since setup.sh was to install it (issue 14: CI passed on a
machine with the libraries from an earlier install by hand, and a fresh one aborted)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from medview.ui.qt_platform import debian_packages, package_list_path, qt_platform_plugin_dir

pytestmark = pytest.mark.skipif(
    shutil.which("ldd") is None or shutil.which("dpkg") is None,
    reason="needs ldd and dpkg (a Debian system)",
)


def _qt_binaries() -> list[Path]:
    """The xcb platform plugin and the PySide6 modules MedView imports."""
    import PySide6

    pyside = Path(PySide6.__file__).parent
    modules = [next(pyside.glob(f"{name}.*.so")) for name in ("QtCore", "QtGui", "QtWidgets")]
    return [qt_platform_plugin_dir({}) / "libqxcb.so", *modules]


def _system_libraries() -> tuple[dict[str, str], list[str]]:
    """soname -> path of each library the binaries load from outside the Python packages
    (PySide6 and shiboken6 ship Qt's own), and the sonames ldd reports "not found"."""
    import PySide6

    own = os.path.realpath(Path(PySide6.__file__).parent.parent)
    found: dict[str, str] = {}
    not_found: list[str] = []
    for binary in _qt_binaries():
        out = subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        for line in out.splitlines():
            name, arrow, where = line.strip().partition(" => ")
            if not arrow:
                continue  # linux-vdso, the dynamic loader itself
            if where.strip() == "not found":
                not_found.append(name)
                continue
            path = where.split(" (")[0].strip()
            if not os.path.realpath(path).startswith(own + os.sep):
                found[name] = path
    return found, sorted(set(not_found))


def _owners(paths: list[str]) -> dict[str, str]:
    """path -> Debian package that installed it (dpkg knows merged-/usr files by either
    name, so the resolved one is asked too)."""
    asked = {
        p: [p, os.path.realpath(p), "/usr" + p if not p.startswith("/usr/") else p] for p in paths
    }
    every = sorted({q for qs in asked.values() for q in qs})
    out = subprocess.run(
        ["dpkg", "-S", *every], capture_output=True, text=True, check=False, timeout=120
    ).stdout
    owner_of: dict[str, str] = {}
    for line in out.splitlines():
        package, _, path = line.rpartition(": ")
        owner_of[path.strip()] = package.split(":")[0].split(",")[0].strip()
    return {p: next((owner_of[q] for q in qs if q in owner_of), "") for p, qs in asked.items()}


def test_setup_installs_every_system_library_qt_loads():
    found, not_found = _system_libraries()
    assert not not_found, (
        f"ldd cannot find {', '.join(not_found)} for Qt's window on this machine: "
        f"scripts/setup.sh (as root) installs the packages of "
        f"{package_list_path().name}; add the missing ones there"
    )
    listed = debian_packages()
    owners = _owners(sorted(found.values()))
    unowned = sorted(name for name, path in found.items() if not owners[path])
    assert not unowned, f"no Debian package owns {', '.join(unowned)}"
    wanted = {name: owners[path] for name, path in found.items()}
    wrong = {name: package for name, package in wanted.items() if listed.get(name) != package}
    assert not wrong, (
        f"{package_list_path()} misses or mislabels {len(wrong)} libraries; the lines should "
        f"read: " + "; ".join(f"{name} {package}" for name, package in sorted(wrong.items()))
    )
    stale = sorted(set(listed) - set(wanted))
    assert not stale, f"{package_list_path().name} lists libraries Qt no longer loads: {stale}"

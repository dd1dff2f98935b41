"""`medview` says which library Qt's window is missing and how to install it, instead of the
core dump Qt ends in when no platform plugin can load (issue 14: a fresh Debian without
libxcb-cursor0 aborted `./scripts/run.sh` with exit 134)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medview.ui.qt_platform import (
    debian_packages,
    ldd_missing,
    platform_problem,
    platforms_to_try,
    qt_platform_plugin_dir,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="Qt's platform plugins are checked on Linux"
)

PACKAGES = {"libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4"}


def _plugins(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "platforms"
    folder.mkdir()
    for name in names:
        (folder / f"libq{name}.so").write_bytes(b"")
    return folder


def test_platforms_follow_qt_platform_then_the_session():
    assert platforms_to_try({"QT_QPA_PLATFORM": "offscreen"}) == ["offscreen"]
    assert platforms_to_try({"QT_QPA_PLATFORM": "wayland;xcb:nomitshm"}) == ["wayland", "xcb"]
    assert platforms_to_try({"XDG_SESSION_TYPE": "wayland"}) == ["wayland", "xcb"]
    assert platforms_to_try({"XDG_SESSION_TYPE": "x11"}) == ["xcb"]
    assert platforms_to_try({}) == ["xcb"]


def test_a_missing_library_is_named_with_the_package_and_the_command(tmp_path):
    plugins = _plugins(tmp_path, "xcb")
    seen = []

    def lookup(plugin: Path) -> list[str]:
        seen.append(plugin.name)
        return ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]

    problem = platform_problem({}, plugins, lookup, PACKAGES, is_root=False, has_apt=True)
    assert seen == ["libqxcb.so"]
    assert problem == (
        "Qt's xcb platform plugin cannot open a window: libxcb-cursor.so.0 and "
        "libxcb-icccm.so.4 are missing; install them with: sudo apt-get install "
        "libxcb-cursor0 libxcb-icccm4 (or run scripts/setup.sh as root)"
    )
    as_root = platform_problem({}, plugins, lookup, PACKAGES, is_root=True, has_apt=True)
    assert as_root is not None and "with: apt-get install libxcb-cursor0" in as_root


def test_a_library_not_in_the_list_or_no_apt_says_where_to_look(tmp_path):
    plugins = _plugins(tmp_path, "xcb")
    problem = platform_problem(
        {},
        plugins,
        lambda _: ["libfoo.so.3", "libxcb-cursor.so.0"],
        PACKAGES,
        is_root=False,
        has_apt=True,
    )
    assert problem is not None
    assert problem.endswith(
        "libfoo.so.3 and libxcb-cursor.so.0 are missing; install the "
        "package that provides libfoo.so.3 (apt-file search libfoo.so.3) "
        "and run: sudo apt-get install libxcb-cursor0"
    )
    no_apt = platform_problem(
        {}, plugins, lambda _: ["libxcb-cursor.so.0"], PACKAGES, is_root=False, has_apt=False
    )
    assert no_apt is not None
    assert no_apt.endswith(
        "libxcb-cursor.so.0 is missing; install the packages that provide "
        "them with your system's package manager"
    )


def test_one_loadable_plugin_is_enough_and_the_fallback_is_described(tmp_path):
    plugins = _plugins(tmp_path, "wayland", "xcb")
    env = {"QT_QPA_PLATFORM": "wayland;xcb"}
    missing = {"libqwayland.so": ["libwayland-cursor.so.0"], "libqxcb.so": []}
    assert platform_problem(env, plugins, lambda p: missing[p.name], PACKAGES) is None
    missing["libqxcb.so"] = ["libxcb-icccm.so.4"]
    problem = platform_problem(
        env, plugins, lambda p: missing[p.name], PACKAGES, is_root=True, has_apt=True
    )
    assert problem is not None
    assert problem.startswith(
        "Qt's xcb platform plugin cannot open a window (nor can "
        "wayland): libxcb-icccm.so.4 is missing;"
    )


def test_what_cannot_be_told_is_left_to_qt(tmp_path):
    plugins = _plugins(tmp_path, "xcb")

    def never(plugin: Path) -> list[str]:
        raise AssertionError(f"{plugin} was not to be checked")

    # a plugin this check does not know (Qt decides), and ldd missing (no answer)
    assert platform_problem({"QT_QPA_PLATFORM": "eglfs"}, plugins, never, PACKAGES) is None
    assert platform_problem({}, plugins, lambda _: None, PACKAGES) is None


def test_a_plugin_that_loads_is_not_looked_into():
    def never(plugin: Path) -> list[str]:
        raise AssertionError(f"ldd was run on {plugin}, which loads")

    plugins = qt_platform_plugin_dir({})
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, plugins, never, PACKAGES) is None


def test_the_list_maps_each_library_to_one_package():
    packages = debian_packages()
    assert packages["libxcb-cursor.so.0"] == "libxcb-cursor0"  # Qt 6.5+ needs it
    assert all(re.fullmatch(r"lib\S+\.so(\.\d+)*", name) for name in packages)


def _plugin_missing_a_library(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the installed xcb plugin whose first libxcb-* dependency is renamed to one no
    machine has, beside a link to Qt's own libraries (its RUNPATH is $ORIGIN/../../lib):
    a machine missing that library, whatever this one has."""
    real = qt_platform_plugin_dir({}) / "libqxcb.so"
    data = real.read_bytes()
    needed = re.search(rb"libxcb-[a-z-]+\.so\.\d+\x00", data)
    assert needed, f"{real} names no libxcb-* library"
    renamed = needed.group(0).replace(b"libxcb-", b"libxqq-")
    platforms = tmp_path / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (platforms / "libqxcb.so").write_bytes(data.replace(needed.group(0), renamed))
    (tmp_path / "lib").symlink_to(real.parent.parent.parent / "lib")
    return platforms, renamed.rstrip(b"\x00").decode()


@pytest.mark.skipif(shutil.which("ldd") is None, reason="ldd is not installed")
def test_ldd_finds_the_missing_library_of_a_real_plugin(tmp_path):
    platforms, missing = _plugin_missing_a_library(tmp_path)
    assert ldd_missing(platforms / "libqxcb.so") == [missing]


@pytest.mark.skipif(shutil.which("ldd") is None, reason="ldd is not installed")
def test_medview_prints_one_line_and_exits_1_instead_of_a_core_dump(tmp_path):
    platforms, missing = _plugin_missing_a_library(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "XDG_SESSION"))}
    env.update(
        QT_QPA_PLATFORM="xcb",
        QT_QPA_PLATFORM_PLUGIN_PATH=str(platforms),
        DISPLAY=":99",
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "medview"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"medview: Qt's xcb platform plugin cannot open a window: "
        f"{missing} is missing; install the package that provides "
        f"{missing}"
    )

"""Can Qt open a window here? Checked before the QApplication exists, because a platform
plugin that cannot load makes Qt abort the process (exit 134, a core dump) after a warning
that names neither the missing library nor the package to install. Qt 6.5+ needs
libxcb-cursor0 and other xcb libraries that a fresh Debian does not have.

The check loads each platform plugin Qt would try, in Qt's order, as Qt will (a few ms: Qt's
own libraries are loaded already); only where none loads does it run `ldd` (40-90 ms) to
name every library missing, with their Debian packages from resources/qt-debian-packages.txt
(the list scripts/setup.sh installs)."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# a plugin file -> the libraries it needs that cannot be found, or None when that cannot be told
MissingLookup = Callable[[Path], list[str] | None]


def package_list_path() -> Path:
    """The one list of system libraries the Qt window needs and their Debian packages.
    (The registry is imported here, not at start-up: its package costs 50 ms there.)"""
    from medview.ai.models.registry import resources_dir

    return resources_dir() / "qt-debian-packages.txt"


def debian_packages() -> dict[str, str]:
    """soname -> Debian package, from the list scripts/setup.sh installs."""
    packages: dict[str, str] = {}
    for line in package_list_path().read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 2 and not line.startswith("#"):
            packages[fields[0]] = fields[1]
    return packages


def platforms_to_try(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt tries, in order: QT_QPA_PLATFORM ("wayland;xcb",
    "xcb:option") when set, else wayland then xcb in a Wayland session, else xcb."""
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        names = [part.split(":", 1)[0].strip() for part in chosen.split(";")]
        return [name for name in names if name]
    if env.get("XDG_SESSION_TYPE") == "wayland":
        return ["wayland", "xcb"]
    return ["xcb"]


def loads(library: Path) -> bool:
    """Whether the dynamic loader can load `library` with everything it needs."""
    try:
        ctypes.CDLL(str(library))
    except OSError:
        return False
    return True


def ldd_missing(library: Path) -> list[str] | None:
    """The libraries `library` needs that the dynamic loader cannot find (ldd's "not found"
    lines, in order, once each); None when ldd is not there or fails."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        out = subprocess.run(
            [ldd, str(library)], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    missing: list[str] = []
    for line in out.splitlines():
        name, _, where = line.strip().partition("=>")
        if where.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def install_command(
    libraries: list[str], packages: Mapping[str, str], is_root: bool, has_apt: bool
) -> str:
    """What to run so that `libraries` can load: the apt-get line where their packages are in
    the list scripts/setup.sh installs, else where to look."""
    if not has_apt:
        return "install the packages that provide them with your system's package manager"
    known = list(dict.fromkeys(packages[lib] for lib in libraries if lib in packages))
    unknown = [lib for lib in libraries if lib not in packages]
    apt = f"{'' if is_root else 'sudo '}apt-get install {' '.join(known)}"
    if not unknown:
        return f"install them with: {apt} (or run scripts/setup.sh as root)"
    find = f"install the package that provides {unknown[0]} (apt-file search {unknown[0]})"
    return f"{find} and run: {apt}" if known else find


def platform_problem(
    env: Mapping[str, str],
    plugin_dir: Path,
    missing_of: MissingLookup = ldd_missing,
    packages: Mapping[str, str] | None = None,
    is_root: bool | None = None,
    has_apt: bool | None = None,
) -> str | None:
    """One sentence saying why no platform plugin Qt would try can load, naming the missing
    libraries and the command that installs them; None when one can load, and also when it
    cannot be told (not Linux, no ldd, a plugin this check does not know: Qt decides).
    Where several fail, the last one Qt tries (its fallback, xcb) is the one described."""
    if not sys.platform.startswith("linux"):
        return None
    failed: list[str] = []
    missing: list[str] = []
    for name in platforms_to_try(env):
        plugin = plugin_dir / f"libq{name}.so"
        if not plugin.is_file() or loads(plugin):
            return None
        missing = missing_of(plugin) or []
        if not missing:
            return None
        failed.append(name)
    if not failed:
        return None
    if packages is None:
        packages = debian_packages()
    if is_root is None:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if has_apt is None:
        has_apt = shutil.which("apt-get") is not None
    others = f" (nor can {', '.join(failed[:-1])})" if len(failed) > 1 else ""
    names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    verb = "are" if len(missing) > 1 else "is"
    return (
        f"Qt's {failed[-1]} platform plugin cannot open a window{others}: {names} {verb} "
        f"missing; {install_command(missing, packages, is_root, has_apt)}"
    )


def qt_platform_plugin_dir(env: Mapping[str, str]) -> Path:
    """Where Qt looks for platform plugins: QT_QPA_PLATFORM_PLUGIN_PATH, else the plugins
    folder of this Qt (PySide6's wheel, a frozen bundle's qt.conf)."""
    override = env.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if override:
        return Path(override)
    from PySide6 import QtCore

    plugins = QtCore.QLibraryInfo.path(QtCore.QLibraryInfo.LibraryPath.PluginsPath)
    return Path(plugins) / "platforms"

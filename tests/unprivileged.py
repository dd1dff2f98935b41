"""Run a test's checked step as an unprivileged user. Root writes into read-only folders, so a
test of "an unwritable folder ends in one sentence" proves nothing as root, and CI runs as
root: there the step runs under `setpriv` as nobody (uid and gid 65534); as any other user it
runs as that user. Either way in a child Python, so the test has one path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NOBODY = 65534
REPO = Path(__file__).resolve().parent.parent


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextmanager
def unprivileged_folder() -> Iterator[Path]:
    """An empty folder the unprivileged user owns (pytest's tmp_path is private to root),
    removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="medview-unprivileged-"))
    try:
        if _as_root():
            os.chown(folder, NOBODY, NOBODY)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_unprivileged(
    code: str, folder: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a child Python (the folder is sys.argv[1] and its HOME) as nobody when
    this process is root, else as this user; stdout and stderr come back as text."""
    argv = [sys.executable, "-c", code, str(folder)]
    if _as_root():
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is not installed: cannot drop root")
        argv = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    child_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(folder),
        "PYTHONPATH": str(REPO),
        "QT_QPA_PLATFORM": "offscreen",
        **(env or {}),
    }
    return subprocess.run(
        argv,
        env=child_env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

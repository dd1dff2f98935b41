"""pyproject's import-linter contracts are checks that can fail: a copy of the package with a
viewer module that imports io, or a file system module, breaks "The viewer does no disk IO"
and `lint-imports` exits non-zero; the untouched copy keeps every contract. The copy lives in
a temporary folder (nothing is written into the repository, not even lint-imports' cache).
What an import contract cannot say, a Path method that writes, is checked on the source."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
VIEWER_CONTRACTS = (
    "The viewer does no disk IO: it never imports io",
    "The viewer does no disk IO: its code imports no file system module",
)


def lint_copy(tmp_path: Path, leak: str | None) -> subprocess.CompletedProcess:
    """lint-imports on a copy of the package (plus `leak` as medview/viewer/_leak.py)."""
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "medview",
        tree / "medview",
        ignore=shutil.ignore_patterns("__pycache__", "resources"),
    )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    if leak is not None:
        (tree / "medview" / "viewer" / "_leak.py").write_text(leak, "utf-8")
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy, not the checkout, is medview
    return subprocess.run(
        [str(LINT), "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def verdicts(output: str) -> list[str]:
    """KEPT or BROKEN for each of the viewer's contracts (a long name wraps in the report)."""
    flat = " ".join(output.split())
    out = []
    for name in VIEWER_CONTRACTS:
        end = flat.index(name) + len(name)
        out.append(flat[end:].split()[0])
    return out


@pytest.mark.skipif(
    not LINT.exists(), reason="import-linter is not installed (pip install -e .[dev])"
)
@pytest.mark.parametrize(
    ("leak", "expected"),
    [
        (None, ["KEPT", "KEPT"]),
        ("from medview.io import saved\n", ["BROKEN", "KEPT"]),  # a store finding its own file
        ("from medview.jobs import labels\n", ["BROKEN", "KEPT"]),  # io through another layer
        ("import shutil\n", ["KEPT", "BROKEN"]),  # a store copying a file aside itself
        ("from medview.core import limits\n", ["KEPT", "KEPT"]),  # core may use os itself
    ],
)
def test_a_viewer_that_reaches_the_disk_breaks_the_contract(tmp_path, leak, expected):
    before = sorted(p.name for p in ROOT.iterdir())
    r = lint_copy(tmp_path, leak)
    assert verdicts(r.stdout) == expected, r.stdout + r.stderr
    assert (r.returncode != 0) == ("BROKEN" in expected), r.stdout + r.stderr
    if "BROKEN" in expected:
        assert "medview.viewer._leak" in r.stdout  # the report names the offending import
    assert sorted(p.name for p in ROOT.iterdir()) == before  # nothing left in the repo


# Path and file methods that touch the disk; the viewer may only name files
DISK_CALLS = {
    "write_text",
    "write_bytes",
    "read_text",
    "read_bytes",
    "mkdir",
    "unlink",
    "rename",
    "rmdir",
    "touch",
    "iterdir",
    "glob",
    "rglob",
    "exists",
    "is_file",
    "is_dir",
    "stat",
    "open",
    "chmod",
    "symlink_to",
    "hardlink_to",
}


def test_the_viewer_makes_no_disk_call():
    calls = []
    for path in (ROOT / "medview" / "viewer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                if name in DISK_CALLS:
                    calls.append(f"{path.name}:{node.lineno} {name}()")
    assert calls == []

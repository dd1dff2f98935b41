"""`pip install .` gives a working MedView: the wheel carries the resources and bundled
models, installs the `medview` and `medview-gui` commands, and `medview --selftest` passes
from a fresh virtual environment, run from outside the source tree.

The fresh environment does not download its dependencies (torch alone is hundreds of MB):
it sees this environment's site-packages through a .pth file, and pip installs the wheel
with --no-index, so the install also proves that every dependency the wheel declares is
satisfied here. What it does not prove is that PyPI resolves them (scripts/setup.sh does
that on a fresh machine). About 20-30 s, most of it the self-test; marked slow, run in CI."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _copy_source(dest: Path) -> Path:
    """The files a wheel is built from, copied so the build writes nothing in the checkout
    (build/, egg-info) that other work shares."""
    import shutil

    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "medview", src / "medview", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_source(tmp)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (found,) = (tmp / "dist").glob("medview-*.whl")
    return found


def test_wheel_carries_resources_and_every_bundled_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    bundled = sorted((ROOT / "medview" / "resources").rglob("*"))
    for path in bundled:
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.relative_to(ROOT).as_posix() in names
    cards = [
        n
        for n in names
        if n.startswith("medview/resources/models/") and n.endswith("/metadata.json")
    ]
    assert len(cards) >= 2
    for card in cards:
        assert card.replace("metadata.json", "weights.safetensors") in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "medview = medview.cli:main" in text and "medview-gui = medview.cli:gui_main" in text


@pytest.mark.slow
def test_selftest_passes_from_a_fresh_venv_with_the_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = bindir / ("python.exe" if sys.platform == "win32" else "python")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "medview-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-index",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr

    env = {
        "MEDVIEW_DATA_DIR": str(tmp_path / "data"),
        "QT_QPA_PLATFORM": "offscreen",
        "PATH": str(bindir),
        "HOME": str(tmp_path),
    }
    where = subprocess.run(
        [str(python), "-m", "medview", "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip().startswith("medview ")
    origin = subprocess.run(
        [str(python), "-c", "import medview; print(medview.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert Path(origin.strip()).is_relative_to(venv)  # the wheel's copy, not the checkout's

    medview = bindir / ("medview.exe" if sys.platform == "win32" else "medview")
    assert (bindir / ("medview-gui.exe" if sys.platform == "win32" else "medview-gui")).exists()
    run = subprocess.run(
        [str(medview), "--log-file", str(tmp_path / "medview.log"), "--selftest"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "self-test passed" in run.stdout
    assert str(venv) in run.stdout  # the header names the installed package it checked

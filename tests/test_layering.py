"""docs/architecture.md's layers as a check: core, io, jobs and viewer load with Qt and torch made
unimportable (pyproject's import-linter contracts check the same statically)."""

import subprocess
import sys

BLOCKER = """
import importlib.abc, pkgutil, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'PySide6', 'pyqtgraph', 'torch', 'monai'}:
            raise ImportError('blocked: ' + name)
        return None
sys.meta_path.insert(0, Block())
import medview.core, medview.io, medview.jobs, medview.viewer
for pkg in (medview.core, medview.io, medview.jobs, medview.viewer):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):
        __import__(m.name)
import medview.cli, medview.commands.info, medview.commands.convert
print('OK')
"""


def test_headless_layers_import_without_qt_or_torch():
    r = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


def test_core_imports_only_stdlib_and_numpy():
    code = (
        "import sys, pkgutil, medview.core\n"
        "for m in pkgutil.iter_modules(medview.core.__path__, 'medview.core.'):\n"
        "    __import__(m.name)\n"
        "print(sorted(n for n in ('pydicom', 'SimpleITK', 'highdicom') if n in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"

"""medview.io.dicom imports pydicom without its download helpers (requests, tqdm), and
leaves them importable afterwards (issue 19: start-up and `medview convert` time)."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_pydicom_comes_without_requests_and_tqdm_which_stay_importable():
    code = (
        "import sys\nimport medview.io.dicom.index\n"
        "print(sorted(m for m in ('pydicom', 'requests', 'tqdm', 'urllib3') if m in sys.modules), "
        "end=' ')\nimport requests, tqdm\n"
        "print(requests.Session is not None, tqdm.tqdm is not None)"
    )
    assert _run(code) == "['pydicom'] True True"


def test_modules_loaded_before_are_left_as_they_are():
    code = (
        "import sys, requests\nimport medview.io.dicom.index\n"
        "import pydicom.data.download as d\n"
        "print(sys.modules['requests'] is requests, d.HAVE_REQUESTS)"
    )
    assert _run(code) == "True True"


def test_the_package_and_its_lazy_modules_do_not_import_pydicom():
    """io.dicom.seg and io.dicom.tags (imported by the main window's panels) load pydicom
    only when used; the start-up without a path must not pay for it."""
    code = (
        "import sys\nimport medview.io.dicom.seg, medview.io.dicom.tags\n"
        "print('pydicom' in sys.modules)"
    )
    assert _run(code) == "False"

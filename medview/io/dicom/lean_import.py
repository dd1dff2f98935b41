"""Importing this module imports pydicom without the download helpers it never needs here.

pydicom's import loads pydicom.data.download, which imports `requests` (with urllib3,
charset_normalizer, idna, certifi) and `tqdm` only to fetch its own test files from the
internet; each is optional there (pydicom falls back to urllib and no progress bar). That
was about 0.1 s of the 0.2-0.3 s pydicom's import costs, paid by every `medview convert` and
by the viewer's first image (its preview read imports pydicom on a thread while Qt loads,
and both hold the GIL in turn), for code MedView never calls (issue 19).

So the first import of pydicom runs with those two marked as absent in sys.modules (Python
then raises ImportError for them, which pydicom catches), and the marks are taken away at
once: a later `import requests` (medview.net.web) loads it as usual. Modules already loaded
are left alone. Another thread importing requests or tqdm for the first time during those
0.2 s would see them absent; nothing in MedView does (its first pydicom import comes before
any network or AI work).

io.dicom.index, which every scan (the viewer's preview and its scan, `medview convert`,
`medview info`) imports first, imports this module before pydicom. The package itself does
not: io.dicom.seg and io.dicom.tags, which the main window's panels import, load pydicom
only when used."""

from __future__ import annotations

import sys

# Optional imports of pydicom.data.download that MedView has no use for.
DOWNLOAD_ONLY = ("requests", "tqdm")


def import_pydicom() -> None:
    """Import pydicom (once) without DOWNLOAD_ONLY, unless something loaded them already."""
    if "pydicom" in sys.modules:
        return
    absent = [name for name in DOWNLOAD_ONLY if name not in sys.modules]
    for name in absent:
        sys.modules[name] = None  # type: ignore[assignment]  # "not installed", for this import
    try:
        import pydicom  # noqa: F401
    finally:
        for name in absent:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


import_pydicom()

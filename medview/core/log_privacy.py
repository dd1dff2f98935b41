"""What reaches MedView's log file: paths relative to the folders the reader opened, and no
raw values quoted by libraries.

File paths in exports from a PACS are often patient names ("DOE^JOHN/CT/IM0001.dcm"), and
pydicom quotes raw element values in what it logs. The log file stays for days and goes
into bug reports, so every record that reaches it — MedView's and other libraries' loggers
alike, at every level, tracebacks included — is formatted by `ScrubbingFormatter`:

- a path inside a folder the reader opened (or chose for output) is written relative to it
  ("CT/IM0001.dcm"), the folder or file itself as "<opened>";
- a path inside MedView's data folder as "<data>/..."; Python's and MedView's own source
  files (traceback lines) as they are; any other absolute path as "<path>";
- quoted text as '<value>' (pydicom quotes the values it complains about), except quoted
  source file names in traceback lines.

The scrubbing is textual, on the formatted record: it cannot know every way a name can be
spelt, so code still logs series keys and counts rather than names."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

OPENED = "<opened>"
_QUOTED = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")
# an absolute path without spaces (paths with spaces are caught when they are opened ones)
_ABSOLUTE = re.compile(r"(?<![\w.~<>-])/[^\s'\"<>|;,()\[\]{}]+")
_SOURCE = (".py", ".pyc", ".so")

_opened: dict[str, None] = {}  # spellings of opened paths, insertion-ordered


def note_opened(path: str | os.PathLike[str]) -> None:
    """Remember a file or folder the reader opened or chose (as given and absolute, links
    resolved): paths inside it reach the log relative to it."""
    given = os.fspath(path).rstrip("/\\")
    if not given or given in (".", ".."):
        return
    for spelling in (given, os.path.abspath(given), os.path.realpath(given)):
        _opened[spelling] = None


def forget_opened() -> None:
    """Forget the opened paths (tests; a process that opens a new set)."""
    _opened.clear()


def _keep_roots() -> tuple[str, ...]:
    """Folders whose paths are code, not data: Python's install and MedView's source."""
    medview_src = str(Path(__file__).resolve().parents[2])
    return tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, medview_src})


def scrub(text: str, data_folder: str = "") -> str:
    """`text` with paths made relative to the opened folders and quoted values hidden (the
    module docstring says how)."""
    for root in sorted(_opened, key=len, reverse=True):
        inside = r"(?<![\w./\\-])" + re.escape(root) + r"(?![\w.^-])(?P<sep>[/\\])?"
        text = re.sub(inside, lambda m: "" if m.group("sep") else OPENED, text)
    if data_folder:
        text = text.replace(data_folder.rstrip("/") + "/", "<data>/")
    keep = _keep_roots()

    def path(match: re.Match[str]) -> str:
        p = match.group(0)
        return p if p.startswith(keep) or p.endswith(_SOURCE) else "<path>"

    def quoted(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if inner.endswith(_SOURCE) or inner == OPENED else "'<value>'"

    return _QUOTED.sub(quoted, _ABSOLUTE.sub(path, text))


class ScrubbingFormatter(logging.Formatter):
    """A Formatter whose whole output (message, traceback, stack) passes through `scrub`."""

    def __init__(self, fmt: str, data_folder: str = "") -> None:
        super().__init__(fmt)
        self.data_folder = data_folder

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), self.data_folder)

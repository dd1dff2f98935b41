"""One file's DICOM tags as rows for a tag browser: "(0010,0010)", keyword, VR, value text.

Read-only and header-only: the file is opened for reading through SourceOpener (zip members
included) and parsed by `dicom_parse.parse_header`, the same guarded reader the scan uses
(stop_before_pixels, capped inflation, truncation checks), so showing the tags of the image
under the cursor costs a header read and never touches, let alone changes, the pixels or the
file. Large values are not read at all: pixel data and other deferred values show their
size, "<N bytes>". Sequences are flattened into indented rows, as dcmdump and the tag
windows of Horos and RadiAnt show them.

pydicom is imported inside `read_tags` so the viewer can import this module at start-up."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from medview.core.errors import InvalidInputError
from medview.core.series import SourceRef

MAX_VALUE_CHARS = 160
# An enhanced multi-frame header can hold hundreds of thousands of per-frame elements;
# a browser needs the first ones, not a frozen window.
MAX_ROWS = 20_000
DEFERRED_BYTES = 4096  # values longer than this are not read, only measured
_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW", "US or OW"}
_TAG_QUERY = re.compile(r"^\(?\s*([0-9a-f]{4})\s*,?\s*([0-9a-f]{4})\s*\)?$", re.IGNORECASE)


@dataclass(frozen=True)
class TagRow:
    tag: str  # "(0010,0010)"; item rows of a sequence have ""
    keyword: str  # "PatientName", or the dictionary name for private and unknown tags
    vr: str
    value: str  # display text, truncated to MAX_VALUE_CHARS
    depth: int = 0  # nesting level inside sequences

    @property
    def label(self) -> str:
        """The keyword indented by its depth, for the browser's keyword column."""
        return "    " * self.depth + self.keyword


def format_tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _truncate(text: str) -> str:
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _value_text(value: Any, vr: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if vr in _BINARY_VRS and isinstance(value, (list, tuple)):
        return f"<{len(value)} values>"
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return _truncate("\\".join(str(v) for v in value))
    return _truncate(str(value))


def _rows(ds: Any, depth: int, out: list[TagRow]) -> None:
    """Append the rows of `ds` (and of its sequences, indented) to `out`."""
    from pydicom.datadict import dictionary_VR, keyword_for_tag
    from pydicom.dataelem import RawDataElement

    for tag in sorted(ds.keys()):
        if len(out) >= MAX_ROWS:
            return
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.value is None and raw.length:
            # deferred: larger than DEFERRED_BYTES, and the file is closed; size only
            vr = raw.VR or _dictionary_vr(dictionary_VR, tag)
            text = (
                f"<sequence of {raw.length} bytes, not expanded>"
                if vr == "SQ"
                else f"<{raw.length} bytes>"
            )
            out.append(
                TagRow(format_tag(tag), keyword_for_tag(tag) or "Private tag", vr, text, depth)
            )
            continue
        try:
            elem = ds[tag]
        except Exception as exc:  # a damaged element must not hide the others
            out.append(
                TagRow(
                    format_tag(tag),
                    keyword_for_tag(tag) or "",
                    "??",
                    f"<unreadable: {type(exc).__name__}>",
                    depth,
                )
            )
            continue
        name = elem.keyword or elem.name
        if elem.VR == "SQ":
            items = elem.value or []
            out.append(TagRow(format_tag(tag), name, "SQ", f"{len(items)} item(s)", depth))
            for k, item in enumerate(items, start=1):
                if len(out) >= MAX_ROWS:
                    return
                out.append(TagRow("", f"> Item {k}", "", "", depth + 1))
                _rows(item, depth + 2, out)
            continue
        try:
            text = _value_text(elem.value, elem.VR)
        except Exception as exc:
            text = f"<unreadable: {type(exc).__name__}>"
        out.append(TagRow(format_tag(tag), name, elem.VR, text, depth))


def _dictionary_vr(lookup: Any, tag: int) -> str:
    try:
        return lookup(tag)
    except KeyError:
        return "UN"


def read_tags(source: SourceRef | str) -> list[TagRow]:
    """The rows of one file: file meta first, then the dataset in tag order, pixel data as
    its size. Raises MedviewError (one sentence naming the file) when it cannot be read."""
    from medview.io.dicom.parse import parse_header
    from medview.io.sources import SourceOpener

    ref = source if isinstance(source, SourceRef) else SourceRef(str(source))
    with SourceOpener() as opener:
        try:
            size = opener.size(ref)
        except (OSError, KeyError) as exc:
            raise InvalidInputError(
                str(ref), "cannot be opened; it was moved or deleted since the study was scanned"
            ) from exc
        with opener.open(ref) as fp:
            ph = parse_header(fp, ref, size)
    rows: list[TagRow] = []
    meta = getattr(ph.dataset, "file_meta", None)
    if meta is not None:
        _rows(meta, 0, rows)
    _rows(ph.dataset, 0, rows)
    if ph.pixel_tag is not None and len(rows) < MAX_ROWS:
        if ph.pixel_length is not None:
            text = f"<{ph.pixel_length} bytes>"
        elif ph.deflated:
            text = "<inside the deflated data>"
        else:
            text = "<compressed frames (encapsulated)>"
        tag = {
            "PixelData": 0x7FE00010,
            "FloatPixelData": 0x7FE00008,
            "DoubleFloatPixelData": 0x7FE00009,
        }[ph.pixel_tag]
        vr = {"PixelData": "OB or OW", "FloatPixelData": "OF"}.get(ph.pixel_tag, "OD")
        rows.append(TagRow(format_tag(tag), ph.pixel_tag, vr, text))
    return rows


def filter_rows(rows: Iterable[TagRow], query: str) -> list[TagRow]:
    """Rows matching a search: a tag number ("(0010,0010)", "0010,0010", "00100010") finds
    that tag, anything else is a case-insensitive substring of keyword, tag or value
    ("PatientName", "slice", "0010"). Empty query: every row."""
    rows = list(rows)
    q = query.strip()
    if not q:
        return rows
    m = _TAG_QUERY.match(q)
    if m:
        wanted = f"({m.group(1)},{m.group(2)})".upper()
        return [r for r in rows if r.tag == wanted]
    q = q.lower()
    return [r for r in rows if q in r.keyword.lower() or q in r.tag.lower() or q in r.value.lower()]

"""Parse one DICOM file's header safely: classify it, validate the pixel description
against the file and the memory limit, and find where native pixel data starts.

pydicom alone would inflate a deflated dataset all at once (a 1 MB bomb peaked at 2 GB) and
can return an empty dataset for a truncated file without complaint (docs/development.md),
so both are checked here before any pixels are touched."""

from __future__ import annotations

import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from medview.core.errors import InvalidInputError, ResourceLimitError
from medview.core.limits import format_bytes, max_volume_bytes
from medview.core.series import LoadWarning, PixelFormat, SourceRef
from medview.io.dicom.frames import value

PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
# Objects that carry pixel data but are not images to stack into a volume.
NON_IMAGE_WITH_PIXELS = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UN", b"UC", b"UR", b"UT"}
INFLATE_CHUNK = 1 << 20
# Deflated data that grows more than this many times, past the floor, is a bomb.
MAX_INFLATE_RATIO = 200
INFLATE_RATIO_FLOOR = 64 * 1024 * 1024


# File names that claim DICOM: such a file that does not parse is broken, not "other".
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")


class NotDicomError(InvalidInputError):
    """A file that does not claim to be DICOM (no DICM marker, no DICOM data at its start,
    no DICOM file name): beside a series it is one of the "other files", not an error."""


def claims_dicom_name(ref: SourceRef) -> bool:
    return (ref.member or ref.path).lower().endswith(DICOM_SUFFIXES)


@dataclass
class ParsedHeader:
    """A header read with `stop_before_pixels`, plus what was learnt about its pixels."""

    dataset: Dataset
    transfer_syntax_uid: str
    pixel_tag: str | None  # "PixelData", "FloatPixelData", ... or None
    pixel_offset: int | None  # byte offset of the native pixel value in the file
    pixel_length: int | None  # None when encapsulated (undefined length)
    file_size: int
    deflated: bool
    warnings: list[LoadWarning] = field(default_factory=list)


def _sniff_not_dicom(head: bytes) -> str | None:
    """A reason the first bytes show this is not DICOM at all, or None if it may be."""
    if head.startswith(b"\x89PNG"):
        return "is not a DICOM file (it is a PNG image)"
    if head.startswith(b"\xff\xd8\xff"):
        return "is not a DICOM file (it is a JPEG image)"
    if head.startswith(b"%PDF"):
        return "is not a DICOM file (it is a PDF document)"
    if head.startswith(b"PK\x03\x04"):
        return "is a zip archive inside the folder; open the archive itself"
    # A raw dataset without preamble begins with a group 0x0002 or 0x0008 tag, in either
    # byte order (ExplVR_BigEndNoMeta.dcm is a big-endian one).
    if len(head) >= 4 and {struct.unpack("<H", head[:2])[0], struct.unpack(">H", head[:2])[0]} & {
        0x0002,
        0x0008,
    }:
        return None
    sample = head[:128]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "is not a DICOM file (it is a text file)"
    return "is not a DICOM file (no 'DICM' marker and no DICOM data at its start)"


def inflate_capped(fp: BinaryIO, where: str, out: BinaryIO) -> None:
    """Inflate a raw-deflate stream from `fp` into `out`, refusing bombs: memory stays
    bounded because `out` is a spooled temporary file and inflation stops at the caps."""
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    read_in = written = 0
    limit = max_volume_bytes()
    while True:
        chunk = fp.read(INFLATE_CHUNK)
        if not chunk:
            break
        read_in += len(chunk)
        data = d.decompress(chunk, INFLATE_CHUNK * 4)
        while True:
            written += len(data)
            if written > limit or (
                written > INFLATE_RATIO_FLOOR and written > MAX_INFLATE_RATIO * read_in
            ):
                raise ResourceLimitError(
                    where,
                    f"deflated data inflates past {format_bytes(written)} from "
                    f"{format_bytes(read_in)}; refused as a possible deflate bomb",
                )
            out.write(data)
            if not d.unconsumed_tail:
                break
            data = d.decompress(d.unconsumed_tail, INFLATE_CHUNK * 4)
        if d.eof:
            break
    out.write(d.flush())
    out.seek(0)


def _stop_at_pixels(tag, vr, length) -> bool:
    return int(tag) in PIXEL_TAGS


def _meta_transfer_syntax(meta: bytes) -> str | None:
    """TransferSyntaxUID from the bytes of an explicit-VR little-endian meta group, or None
    if they do not parse (then pydicom reads the meta)."""
    pos = 0
    while pos + 8 <= len(meta):
        group, elem = struct.unpack_from("<HH", meta, pos)
        if group != 2:
            return None
        vr = meta[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", meta, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", meta, pos + 6)
            start = pos + 8
        if elem == 0x0010:
            return meta[start : start + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos = start + length
    return None


def is_deflated(fp: BinaryIO) -> bool:
    """Whether the file meta declares Deflated Explicit VR Little Endian, read from the meta
    group alone: pydicom's dcmread inflates the whole dataset before it returns (a bomb).
    The usual layout starts with a group length, so the meta is walked here from its bytes,
    cheaper than a second pydicom parse (which was a third of a header scan's time)."""
    fp.seek(0)
    head = fp.read(144)
    fp.seek(0)
    if head[128:132] != b"DICM":
        return False
    ts = None
    if head[132:138] == b"\x02\x00\x00\x00UL" and len(head) == 144:
        (length,) = struct.unpack("<I", head[140:144])
        fp.seek(144)
        ts = _meta_transfer_syntax(fp.read(min(length, 1 << 16)))
        fp.seek(0)
    if ts is None:
        read_preamble(fp, force=True)
        ts = _read_file_meta_info(fp).get("TransferSyntaxUID", "")
        fp.seek(0)
    return ts == DeflatedExplicitVRLittleEndian


def read_deflated(fp: BinaryIO, where: str, stop_before_pixels: bool) -> Dataset:
    """Read a Deflated Explicit VR Little Endian file with capped inflation."""
    fp.seek(0)
    read_preamble(fp, force=True)
    meta = _read_file_meta_info(fp)
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115
    try:
        inflate_capped(fp, where, spool)
    except zlib.error as exc:
        spool.close()
        raise InvalidInputError(where, f"has corrupt deflated data ({exc})") from exc
    ds = read_dataset(
        spool,
        is_implicit_VR=False,
        is_little_endian=True,
        stop_when=_stop_at_pixels if stop_before_pixels else None,
    )
    ds.file_meta = meta
    ds.set_original_encoding(False, True)
    if stop_before_pixels:
        spool.close()
    else:
        ds._medview_spool = spool  # keeps deferred values readable until the dataset dies
    return ds


def _pixel_element(
    fp: BinaryIO, implicit: bool, little: bool, file_size: int
) -> tuple[str | None, int | None, int | None]:
    """(tag name, value offset, value length) of the pixel element at fp's position."""
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8:
        return None, None, None
    endian = "<" if little else ">"
    group, elem = struct.unpack(endian + "HH", head[:4])
    tag = (group << 16) | elem
    name = PIXEL_TAGS.get(tag)
    if name is None:
        return None, None, None
    if implicit or not (head[4:6].isalpha() and head[4:6].isupper()):
        # implicit VR, or an implicit-VR element inside an explicit-VR dataset, which some
        # writers emit and pydicom accepts (SC_rgb_jpeg.dcm)
        (length,) = struct.unpack(endian + "I", head[4:8])
        offset = start + 8
    elif head[4:6] in _LONG_VRS:
        (length,) = struct.unpack(endian + "I", head[8:12])
        offset = start + 12
    else:
        (length,) = struct.unpack(endian + "H", head[6:8])
        offset = start + 8
    if length == 0xFFFFFFFF:
        return name, None, None
    return name, offset, length


def parse_header(fp: BinaryIO, ref: SourceRef, file_size: int) -> ParsedHeader:
    """Read everything but the pixels; raise InvalidInputError with the reason otherwise."""
    where = str(ref)
    if file_size == 0:
        raise InvalidInputError(where, "is empty (0 bytes)")
    head = fp.read(132)
    warnings: list[LoadWarning] = []
    if len(head) == 132 and head[128:132] == b"DICM":
        if head[:2] == b"MZ" or head[:4] == b"\x7fELF":
            warnings.append(
                LoadWarning(
                    "executable_preamble",
                    f"{where} carries an executable header in its preamble (a DICOM/executable "
                    f"polyglot); its image was read but nothing in it was run — check where it "
                    f"came from",
                )
            )
    else:
        reason = _sniff_not_dicom(head)
        if reason:
            kind = InvalidInputError if claims_dicom_name(ref) else NotDicomError
            raise kind(where, reason)
    try:
        deflated = is_deflated(fp)
        ds = (
            read_deflated(fp, where, stop_before_pixels=True)
            if deflated
            else pydicom.dcmread(fp, stop_before_pixels=True, defer_size=4096, force=True)
        )
    except (InvalidInputError, ResourceLimitError):
        raise
    except Exception as exc:  # pydicom raises many types for damaged files
        raise InvalidInputError(
            where, f"could not be read as DICOM ({_short(exc)}); the file is damaged or truncated"
        ) from exc
    if len(ds) == 0:
        raise InvalidInputError(
            where, "holds no readable DICOM data; it is truncated or not a DICOM file"
        )
    if not deflated and fp.tell() > file_size:
        raise InvalidInputError(
            where,
            f"has a data element whose length runs past the end of "
            f"the file ({fp.tell()} bytes needed, {file_size} "
            f"present); the file is truncated or damaged",
        )
    implicit, little = ds.original_encoding
    ts = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
    if not ts:
        ts = str(
            UID(
                "1.2.840.10008.1.2"
                if implicit
                else "1.2.840.10008.1.2.1"
                if little
                else "1.2.840.10008.1.2.2"
            )
        )
    pixel_tag = pixel_offset = pixel_length = None
    if deflated:
        pixel_tag = "PixelData" if ds.get("Rows") else None
    else:
        pixel_tag, pixel_offset, pixel_length = _pixel_element(
            fp, bool(implicit), bool(little), file_size
        )
    return ParsedHeader(
        ds, ts, pixel_tag, pixel_offset, pixel_length, file_size, deflated, warnings
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    try:
        v = value(ds, keyword)
        return default if v is None or v == "" else int(v)
    except (TypeError, ValueError):
        return default


def pixel_format(ph: ParsedHeader, where: str) -> PixelFormat:
    """Validate the Image Pixel module against itself, the file and the memory limit."""
    ds = ph.dataset
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    ba, bs = _int(ds, "BitsAllocated", 0), _int(ds, "BitsStored")
    spp = _int(ds, "SamplesPerPixel", 1)
    frames = _int(ds, "NumberOfFrames", 1) or 1
    if not rows or not cols or rows < 0 or cols < 0:
        raise InvalidInputError(
            where, f"declares an image of {rows} x {cols} pixels, which holds nothing to show"
        )
    if ba not in (1, 8, 16, 32, 64):
        raise InvalidInputError(
            where, f"declares BitsAllocated {ba}, which DICOM does not allow (1, 8, 16, 32 or 64)"
        )
    bs = ba if bs is None else bs
    if not 1 <= bs <= ba:
        raise InvalidInputError(
            where,
            f"declares BitsStored {bs} with BitsAllocated {ba}; "
            f"BitsStored must lie between 1 and BitsAllocated",
        )
    if spp not in (1, 3):
        raise InvalidInputError(
            where,
            f"declares SamplesPerPixel {spp}; only grey (1) and colour (3) images can be shown",
        )
    if frames < 1:
        raise InvalidInputError(where, f"declares {frames} frames")
    photometric = str(value(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    # native YBR_FULL_422 stores two chroma samples per pixel pair: 2 samples a pixel, not 3
    stored_spp = 2 if photometric == "YBR_FULL_422" and spp == 3 else spp
    expected = (
        rows * cols * frames * stored_spp * ba // 8 if ba >= 8 else (rows * cols * frames + 7) // 8
    )
    out_bytes = rows * cols * frames * spp * max(ba // 8, 1)
    if out_bytes > max_volume_bytes():
        raise ResourceLimitError(
            where,
            f"declares {rows} x {cols} pixels x {frames} frames "
            f"({format_bytes(out_bytes)}), more than MedView can load here "
            f"(limit {format_bytes(max_volume_bytes())})",
        )
    offset, length = ph.pixel_offset, ph.pixel_length
    if offset is not None and length is not None:
        available = ph.file_size - offset
        if length > available:
            raise InvalidInputError(
                where,
                f"pixel data is shorter than its length field says ({available} of "
                f"{length} bytes); the file is truncated",
            )
        if length < expected:
            raise InvalidInputError(
                where,
                f"pixel data is shorter than the image needs ({length} of {expected} "
                f"bytes); the file is truncated or damaged",
            )
    ts = UID(ph.transfer_syntax_uid)
    native = (
        not ph.deflated
        and offset is not None
        and ts.is_little_endian
        and not ts.is_compressed
        and ba in (8, 16, 32, 64)
        and ph.pixel_tag == "PixelData"
    )
    return PixelFormat(
        transfer_syntax_uid=str(ts),
        rows=rows,
        cols=cols,
        samples_per_pixel=spp,
        bits_allocated=ba,
        bits_stored=bs,
        pixel_representation=_int(ds, "PixelRepresentation", 0) or 0,
        photometric=photometric,
        planar_configuration=_int(ds, "PlanarConfiguration", 0) or 0,
        n_frames=frames,
        pixel_data_offset=offset if native else None,
        pixel_data_length=length if native else None,
        has_modality_lut_sequence=value(ds, "ModalityLUTSequence") is not None,
        float_pixels=ph.pixel_tag in ("FloatPixelData", "DoubleFloatPixelData"),
    )

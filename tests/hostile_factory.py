"""Hostile and broken DICOM inputs, and a memory-capped subprocess to read them in.

Each builder writes one file that real archives or attackers produce: empty, cut short,
not DICOM at all, lying about its size, a deflate bomb, paths escaping their folder. The
reader must list such files with a specific reason, keep memory bounded and never write
anywhere. Good files come from tests/dicom_factory.py.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
from dicom_factory import base_dataset, save, set_pixels, uid_for, write_ct_series, write_dicomdir
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, RLELossless

MIB = 1024 * 1024


def one_good_file(folder: Path, label: str, **kwargs: object) -> Path:
    """A valid one-slice CT in its own series, the raw material for a broken copy."""
    return write_ct_series(folder, n=1, label=label, names=f"{label}.dcm", **kwargs).paths[0]


def write_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def write_truncated_header(src: Path, dst: Path) -> Path:
    """A copy of `src` cut in the middle of the PatientName value."""
    data = src.read_bytes()
    dst.write_bytes(data[: data.index(b"Synthetic^Patient") + 5])
    return dst


def write_truncated_pixels(src: Path, dst: Path, missing: int = 100) -> Path:
    """A copy of `src` whose pixel data ends `missing` bytes before its declared length."""
    dst.write_bytes(src.read_bytes()[:-missing])
    return dst


def write_random(path: Path, *, with_dicm: bool, size: int = 4096) -> Path:
    """Deterministic noise, optionally with a 'DICM' marker at offset 128 so only a real
    parse (not a magic-number check) can tell it is not DICOM."""
    data = bytearray(random.Random(f"{path.name}-{with_dicm}").randbytes(size))
    if with_dicm:
        data[128:132] = b"DICM"
    path.write_bytes(bytes(data))
    return path


def write_text(path: Path) -> Path:
    path.write_text("Patient list exported 2024-01-31\nSYN001; Synthetic^Patient\n")
    return path


def write_png(path: Path, width: int = 4, height: int = 3) -> Path:
    """A real (tiny, greyscale) PNG image, as users drop into DICOM folders."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + bytes(range(y * width, (y + 1) * width)) for y in range(height))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def write_ds_store(folder: Path) -> Path:
    """The start of a macOS Finder .DS_Store file (a 'Bud1' buddy allocator header)."""
    path = folder / ".DS_Store"
    path.write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(2040))
    return path


def write_huge_header(
    path: Path,
    *,
    encapsulated: bool = False,
    rows: int = 65535,
    cols: int = 65535,
    frames: int = 10000,
) -> Path:
    """A header declaring rows x cols x frames 16-bit pixels (86 TB by default) over a few
    bytes of pixel data: native, or RLE-encapsulated so the size cannot be checked against
    the file and must be refused from the header alone before allocating."""
    ds = base_dataset(
        "1.2.840.10008.5.1.4.1.1.2",
        "CT",
        study_uid=uid_for("study"),
        series_uid=uid_for(path.name, "series"),
        sop_uid=uid_for(path.name, 0),
    )
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    set_pixels(ds, np.zeros((2, 2), np.int16))
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    if encapsulated:
        ds.file_meta.TransferSyntaxUID = RLELossless
        ds.PixelData = encapsulate([bytes(64)])
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def write_length_beyond_file(path: Path, length: int = 0xF0000000) -> Path:
    """A file whose private OB element declares `length` bytes (3.75 GB) in a 2 kB file: a
    reader that trusts the length allocates gigabytes or reads garbage as the header."""
    ds = base_dataset(
        "1.2.840.10008.5.1.4.1.1.2",
        "CT",
        study_uid=uid_for("study"),
        series_uid=uid_for(path.name, "series"),
        sop_uid=uid_for(path.name, 0),
    )
    block = ds.private_block(0x0009, "MEDVIEW HOSTILE", create=True)
    block.add_new(0x10, "OB", b"MARK" * 2)
    set_pixels(ds, np.zeros((4, 4), np.int16))
    save(ds, path)
    data = bytearray(path.read_bytes())
    at = data.index(b"\x09\x00\x10\x10OB\x00\x00") + 8
    data[at : at + 4] = struct.pack("<I", length)
    path.write_bytes(bytes(data))
    return path


def write_deflate_bomb(path: Path, inflated_bytes: int = 1200 * MIB) -> Path:
    """Deflated Explicit VR LE whose dataset inflates to `inflated_bytes` (> 1 GB) from
    about 1 MB: a private OB element of zeros sits between the 0008 group and the patient
    data, so a header-only read must inflate through it. Built from one compressed 16 MiB
    block repeated (a full flush resets the compressor, so the block bytes repeat)."""
    ds = base_dataset(
        "1.2.840.10008.5.1.4.1.1.2",
        "CT",
        study_uid=uid_for("study"),
        series_uid=uid_for(path.name, "series"),
        sop_uid=uid_for(path.name, 0),
    )
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    set_pixels(ds, np.zeros((4, 4), np.int16))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    front, back = Dataset(), Dataset()
    for elem in ds:
        (front if elem.tag.group < 0x0009 else back).add(elem)
    block = 16 * MIB
    n_blocks = inflated_bytes // block
    creator = b"MEDVIEW BOMB"
    bomb_header = (
        struct.pack("<HH", 0x0009, 0x0010)
        + b"LO"
        + struct.pack("<H", len(creator))
        + creator
        + struct.pack("<HH", 0x0009, 0x1010)
        + b"OB\x00\x00"
        + struct.pack("<I", n_blocks * block)
    )
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = z.compress(_encode(front) + bomb_header) + z.flush(zlib.Z_FULL_FLUSH)
    zeros = z.compress(bytes(block)) + z.flush(zlib.Z_FULL_FLUSH)
    tail = z.compress(_encode(back)) + z.flush()
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    path.write_bytes(bytes(128) + b"DICM" + meta.getvalue() + head + zeros * n_blocks + tail)
    return path


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def write_bad_pixel_module(folder: Path, label: str, **attrs: object) -> Path:
    """A one-slice CT whose Image Pixel module is impossible (e.g. BitsStored=20)."""
    return one_good_file(folder, label, extra=dict(attrs))


def write_without_transfer_syntax(src: Path, dst: Path) -> Path:
    """`src` rewritten with a file meta group that lacks (0002,0010) TransferSyntaxUID;
    the dataset itself stays explicit VR little endian."""
    ds = pydicom.dcmread(src)
    del ds.file_meta.TransferSyntaxUID
    dcmwrite(dst, ds, implicit_vr=False, little_endian=True)
    return dst


def write_raw_dataset(src: Path, dst: Path) -> Path:
    """`src` as old ACR-NEMA-style files are: no preamble, no 'DICM', no file meta, just
    an implicit VR little endian dataset."""
    ds = pydicom.dcmread(src)
    del ds.file_meta
    ds.preamble = None
    dcmwrite(dst, ds, implicit_vr=True, little_endian=True)
    return dst


def write_executable_preamble(src: Path, dst: Path, kind: str = "MZ") -> Path:
    """`src` with a Windows PE ('MZ') or ELF header in its 128-byte preamble: a valid DICOM
    file that is also an executable (a known malware vector, CVE-2019-11687)."""
    ds = pydicom.dcmread(src)
    magic = b"MZ\x90\x00\x03" if kind == "MZ" else b"\x7fELF\x02\x01\x01"
    ds.preamble = magic.ljust(128, b"\x00")
    ds.save_as(dst, enforce_file_format=True)
    return dst


def write_hostile_dicomdir(folder: Path, sources: list[Path], file_id: list[str]) -> Path:
    """A DICOMDIR set of `sources` whose last IMAGE record references `file_id` instead
    (e.g. ['..', 'outside', 'x.dcm'] or an absolute path). Only the last record changes, so
    every record offset stays valid and the rest of the set is readable."""
    dicomdir = write_dicomdir(folder, sources)
    ds = pydicom.dcmread(dicomdir)
    ds.DirectoryRecordSequence[-1].ReferencedFileID = file_id
    ds.save_as(dicomdir)
    return dicomdir


def write_hostile_zip(zip_path: Path, good: list[Path], evil: dict[str, Path]) -> Path:
    """A zip holding `good` files by name and the files in `evil` under hostile member
    names such as '../evil.dcm' or '/abs.dcm' (zip slip)."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as zf:
        for p in good:
            zf.write(p, p.name)
        for name, src in evil.items():
            zf.writestr(zipfile.ZipInfo(name), src.read_bytes())
    return zip_path


def write_many_tiny(folder: Path, n: int = 3000) -> list[Path]:
    """`n` valid 2x2 CT slices of one series, made by patching the instance UID (fixed
    width, twice: meta and dataset) into one template's bytes, so 3000 files take
    milliseconds to write."""
    folder.mkdir(parents=True, exist_ok=True)
    template_uid = "1.2.826.0.1.3680043.8.498.77.000000"
    ds = base_dataset(
        "1.2.840.10008.5.1.4.1.1.2",
        "CT",
        study_uid=uid_for("study"),
        series_uid=uid_for("tiny", "series"),
        sop_uid=template_uid,
    )
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    set_pixels(ds, np.arange(4, dtype=np.int16).reshape(2, 2))
    template = DicomBytesIO()
    ds.save_as(template, enforce_file_format=True)
    data = template.getvalue()
    paths = []
    for i in range(n):
        p = folder / f"t{i:05d}"
        p.write_bytes(
            data.replace(template_uid.encode(), template_uid[:-6].encode() + f"{i:06d}".encode())
        )
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------------------
# Reading in a child process under an address-space cap, reporting peak memory.

_CHILD = r"""
import json, os, resource, sys
import numpy, pydicom
from medview.io.dicom import index as dicom_index
from medview.io.dicom import volume as dicom_volume

writes = []

def audit(event, args):
    if event == "open" and not isinstance(args[0], int) and args[0] is not None and (
            set(str(args[1] or "")) & set("wax+")
            or (args[2] or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
        writes.append(os.path.abspath(os.fsdecode(args[0])))

sys.addaudithook(audit)

def vm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cap = vm_bytes() + int(sys.argv[1]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
out = {"series": [], "skipped": [], "non_image": [], "loads": {}}

def failure(exc):
    return {"error": type(exc).__name__, "message": str(exc)}

try:
    result = dicom_index.scan(sys.argv[3:])
    out["skipped"] = [[s.path, s.reason] for s in result.skipped]
    out["other_files"] = list(result.other_files)
    out["non_image"] = [o.path for o in result.non_image_objects]
    for s in result.series:
        out["series"].append({"uid": s.series_instance_uid, "key": s.key,
                              "n_slices": len(s.slices), "shape": list(s.shape),
                              "paths": [str(f.source) for f in s.frames],
                              "warnings": [w.code for w in s.warnings]})
        if sys.argv[2] == "load":
            try:
                vol = dicom_volume.load_series(s)
                out["loads"][s.key] = {"shape": list(vol.array.shape),
                                       "dtype": str(vol.array.dtype)}
            except Exception as exc:
                out["loads"][s.key] = failure(exc)
except Exception as exc:
    out.update(failure(exc))
out["writes"] = writes
out["base_rss_mb"] = base_rss / 1024
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def scan_in_capped_process(
    paths: list[Path], *, load: bool = True, headroom_mb: int = 1024, timeout_s: float = 60
) -> dict:
    """Scan (and load every series found) in a fresh interpreter whose address space may
    grow only `headroom_mb` past what its imports took, so a reader that allocates what a
    hostile header declares fails there instead of swapping this machine. Returns the
    child's report: series, skipped, loads (shape/dtype or error/message per series key),
    writes (every file it opened for writing), base_rss_mb and peak_rss_mb. glibc's
    per-thread malloc arenas reserve 64 MB of address space each, so they are limited to
    keep a threaded reader from hitting the cap without using the memory."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(headroom_mb),
            "load" if load else "scan",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "MALLOC_ARENA_MAX": "2"},
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise AssertionError(f"child crashed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")

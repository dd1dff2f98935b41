"""Vetting a .pt2 archive against hand-made hostile zips: two members of one name or two root
folders (the vetting would read one, torch's reader may take the other), a zip bomb (the cap
is checked on the declared sizes before anything is decompressed), a member that unpacks to
more than it declares, and a format this vetting was not written for (an archive or program
version it does not know, or a torch that reads another) — each refused in one sentence."""

from __future__ import annotations

import io
import json
import re
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement

import medview.ai.runtime.pt2_check as pt2_check
from medview.core.errors import InvalidInputError, ResourceLimitError, UnsupportedInputError
from tests.ai.tiny_models import export_pt2, tiny_unet

EVIL_TARGET = "torch.serialization.os.system"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> bytes:
    return export_pt2(tiny_unet(), tmp_path_factory.mktemp("pt2") / "tiny.pt2").read_bytes()


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as z:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate names we write
        for name, content in members:
            z.writestr(name, content)
    return buf.getvalue()


def _evil_program(clean_program: bytes) -> bytes:
    program = json.loads(clean_program)
    program["graph_module"]["graph"]["nodes"][0]["target"] = EVIL_TARGET
    return json.dumps(program).encode()


def _program(members: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    return next((n, c) for n, c in members if "/models/" in n and n.endswith(".json"))


def _edited(data: bytes, rel: str, change) -> bytes:
    return _zip([(n, change(c) if n.partition("/")[2] == rel else c) for n, c in _members(data)])


def test_a_plain_export_passes(clean):
    pt2_check.check_pt2(clean, "tiny.pt2")


def test_two_members_of_one_name_are_refused(clean):
    members = _members(clean)
    name, program = _program(members)
    # the vetting used to read the last of the two; torch's own reader may take the first
    hostile = _zip([(name, _evil_program(program)), *members])
    with pytest.raises(
        InvalidInputError,
        match=r"^bad\.pt2: holds two files named "
        r"'tiny/models/model\.json'; refused$",
    ):
        pt2_check.check_pt2(hostile, "bad.pt2")


def test_two_root_folders_are_refused(clean):
    members = _members(clean)
    other = [("evil/" + n.partition("/")[2], c) for n, c in members]
    other = [(n, _evil_program(c) if n == "evil/models/model.json" else c) for n, c in other]
    with pytest.raises(InvalidInputError, match=r"^bad\.pt2: holds 2 root folders"):
        pt2_check.check_pt2(_zip(other + members), "bad.pt2")
    with pytest.raises(InvalidInputError, match="root folders"):
        pt2_check.check_pt2(_zip([("stray.json", b"{}"), *members]), "bad.pt2")


def test_the_size_cap_is_checked_before_anything_is_decompressed(clean, monkeypatch):
    bomb = _zip(
        [*_members(clean), ("tiny/data/weights/weight_9", bytes(4 << 20))], zipfile.ZIP_DEFLATED
    )
    assert len(bomb) < 1 << 20
    monkeypatch.setattr(pt2_check, "MAX_UNPACKED_BYTES", 2 << 20)
    reads = []
    real_read = zipfile.ZipExtFile.read
    monkeypatch.setattr(
        zipfile.ZipExtFile, "read", lambda self, n=-1: reads.append(n) or real_read(self, n)
    )
    with pytest.raises(ResourceLimitError, match=r"^bomb\.pt2: unpacks to more than 8 GiB"):
        pt2_check.check_pt2(bomb, "bomb.pt2")
    assert reads == []


def _declare_size(data: bytes, size: int) -> bytes:
    """The zip with its one member's uncompressed size rewritten in both headers."""
    out = bytearray(data)
    local = out.index(b"PK\x03\x04")
    struct.pack_into("<I", out, local + 22, size)
    central = out.index(b"PK\x01\x02")
    struct.pack_into("<I", out, central + 24, size)
    return bytes(out)


def test_a_member_is_decompressed_no_further_than_it_declares(monkeypatch):
    lying = _declare_size(
        _zip([("tiny/data/weights/weight_0", bytes(64 << 20))], zipfile.ZIP_DEFLATED), 1000
    )
    got = []
    real_read = zipfile.ZipExtFile.read
    monkeypatch.setattr(
        zipfile.ZipExtFile,
        "read",
        lambda self, n=-1: got.append(len(out := real_read(self, n))) or out,
    )
    with pytest.raises(
        InvalidInputError,
        match=r"^lying\.pt2: (is truncated or damaged "
        r"\(tiny/data/weights/weight_0 fails its "
        r"checksum\)|.* unpacks to more than it)",
    ):
        pt2_check.check_pt2(lying, "lying.pt2")
    assert sum(got) <= 1001


@pytest.mark.parametrize(
    ("rel", "change", "words"),
    [
        (
            "archive_version",
            lambda c: b"1",
            r"is a \.pt2 of format 'pt2' version '1', which MedView's vetting does not know",
        ),
        (
            "archive_format",
            lambda c: b"pt3",
            r"is a \.pt2 of format 'pt3' version '0', which MedView's vetting does not know",
        ),
        (
            "models/model.json",
            lambda c: json.dumps(
                {**json.loads(c), "schema_version": {"major": 9, "minor": 0}}
            ).encode(),
            r"holds a program of schema version 9, which MedView's vetting does not know",
        ),
    ],
)
def test_a_format_the_vetting_does_not_know_is_refused(clean, rel, change, words):
    with pytest.raises(
        UnsupportedInputError,
        match=rf"^new\.pt2: {words}; refused rather "
        rf"than trusted$",
    ):
        pt2_check.check_pt2(_edited(clean, rel, change), "new.pt2")


def test_an_archive_without_its_version_is_refused(clean):
    stripped = _zip([(n, c) for n, c in _members(clean) if not n.endswith("archive_version")])
    with pytest.raises(UnsupportedInputError, match=r"version \(none\)"):
        pt2_check.check_pt2(stripped, "old.pt2")


def test_a_torch_that_reads_another_format_is_not_trusted(clean, monkeypatch):
    from torch.export.pt2_archive import constants

    monkeypatch.setattr(constants, "ARCHIVE_VERSION_VALUE", "1")
    with pytest.raises(
        UnsupportedInputError,
        match=rf"^tiny\.pt2: torch {re.escape(torch.__version__)} reads "
        rf"\.pt2 archive version 1 with program schema 8, which MedView "
        rf"has not vetted; refused rather than trusted$",
    ):
        pt2_check.check_pt2(clean, "tiny.pt2")


def test_torch_versions_whose_weights_only_can_be_bypassed_are_not_allowed():
    """CVE-2025-32434: torch.load(weights_only=True) ran code before torch 2.6."""
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    torch_req = Requirement(re.findall(r'^\s*"(torch[<>=!~ ].*)",', pyproject, re.M)[0])
    assert not torch_req.specifier.contains("2.5.1")
    assert torch_req.specifier.contains("2.6.0")

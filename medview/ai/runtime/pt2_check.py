"""Vetting a `torch.export` archive (.pt2) before torch reads it, because torch.export.load
is not safe on a file from elsewhere (torch 2.13, read in torch/export/pt2_archive/_package.py
and torch/_export/serde/serialize.py):

- tensors flagged `use_pickle`, legacy `.pt` weights and opaque constants go through
  torch's full unpickler (weights-only switched off) or `pickle.loads`;
- the sample inputs are read with weights_only=True but silently retried with False;
- every shape expression (`expr_str`) goes through `sympy.sympify`, which is `eval`;
- `guards_code` strings are compiled into Python and run on every call;
- a node's target is any attribute chain under `torch`, `operator` or `math`
  ("torch.serialization.os.system" resolves), plus aten ops such as `from_file`, which
  maps any file on disk.

So an archive is accepted only when it holds nothing but raw weights, JSON, sample inputs
that load as plain tensors with weights_only=True, expressions and guards made of a small
vocabulary, and graph nodes calling aten operators (minus file access) or a few arithmetic
functions. Plain exports of ordinary networks pass; anything else is refused in one
sentence. The caller hands torch the same bytes this module vetted.

The zip itself is read as hostile too: member names must be unique under one root folder
(else this module and torch's own zip reader could read different entries), the unpacked
size is capped on the declared sizes before anything is decompressed, and no member is
decompressed beyond its declared size. The vetting knows one export format (archive version
and program schema of torch 2.13); a file, or an installed torch, of another is refused
rather than trusted."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

from medview.core.errors import (
    InvalidInputError,
    ResourceLimitError,
    UnsupportedInputError,
)

MAX_UNPACKED_BYTES = 8 << 30  # a CT model far beyond this is a zip bomb, not a model
MAX_MEMBERS = 100_000
# the one format this vetting was written against (torch 2.13): .pt2 archive version "0"
# (archive_format "pt2") holding programs of serialisation schema major version 8
_KNOWN_FORMAT = ("0", 8)
_CODE = "contains code or objects that are not plain weights; refused"
_FORBIDDEN_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia", "xl_model_weights/")

_ATEN = re.compile(r"^torch\.ops\.aten\.(?!__)(\w+)(\.(?!__)\w+)?$")
_ATEN_BLOCKED = {"from_file"}
_TORCH_SYM = re.compile(r"^torch\._?sym_[a-z_]+$")
_OPERATORS = {
    "getitem",
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "neg",
    "pos",
    "abs",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and_",
    "or_",
    "xor",
    "not_",
    "invert",
}
_MATH = {"floor", "ceil", "trunc", "sqrt", "exp", "log", "sin", "cos", "tan", "pi", "e"}

_QUOTED_NAME = re.compile(r"'[A-Za-z_]\w*'|\"[A-Za-z_]\w*\"")
_NUMBER = re.compile(r"(?<![\w.])\d+(\.\d*)?(e[+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_SYMBOL = re.compile(r"^[a-z]+\d+$")
_EXPR_CHARS = re.compile(r"^[\w\s()+\-*/%,=<>!&|~^]*$")
_EXPR_WORDS = {
    "Symbol",
    "Integer",
    "Float",
    "Rational",
    "Add",
    "Mul",
    "Pow",
    "Max",
    "Min",
    "Abs",
    "Mod",
    "Eq",
    "Ne",
    "Lt",
    "Le",
    "Gt",
    "Ge",
    "And",
    "Or",
    "Not",
    "True",
    "False",
    "oo",
    "S",
    "floor",
    "ceiling",
    "sqrt",
    "Piecewise",
    "ITE",
    "positive",
    "negative",
    "nonnegative",
    "nonpositive",
    "integer",
    "real",
    "finite",
    "nonzero",
    "zero",
    "FloorDiv",
    "ModularIndexing",
    "Where",
    "PythonMod",
    "CleanDiv",
    "CeilToInt",
    "FloorToInt",
    "CeilDiv",
    "LShift",
    "RShift",
    "PowByNatural",
    "FloatPow",
    "FloatTrueDiv",
    "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat",
    "TruncToInt",
    "RoundToInt",
    "RoundDecimal",
    "ToFloat",
    "Identity",
    "int_oo",
}
_GUARD_CHARS = re.compile(r"^[\w\s()\[\].+\-*/%,=<>!&|~^]*$")
_GUARD_WORDS = {
    "L",
    "size",
    "stride",
    "storage_offset",
    "dim",
    "numel",
    "and",
    "or",
    "not",
    "True",
    "False",
}


def _refuse(where: str, problem: str = _CODE) -> InvalidInputError:
    return InvalidInputError(where, problem)


def _words_ok(text: str, chars: re.Pattern, words: set[str], symbols: bool) -> bool:
    """Whether a Python/sympy snippet uses only harmless pieces: quoted names, numbers,
    operators and the given words (plus shape symbols like s0 when `symbols`)."""
    rest = _NUMBER.sub(" ", _QUOTED_NAME.sub(" ", text))
    if not chars.match(rest) or "__" in rest:
        return False
    return all(w in words or (symbols and _SYMBOL.match(w)) for w in _IDENT.findall(rest))


def _target_ok(target: str) -> bool:
    aten = _ATEN.match(target)
    if aten:
        return aten.group(1) not in _ATEN_BLOCKED
    if _TORCH_SYM.match(target):
        return True
    module, _, name = target.partition(".")
    return (module == "_operator" and name in _OPERATORS) or (module == "math" and name in _MATH)


def _check_program(node: Any, where: str) -> None:
    """Walk the serialised program (models/<name>.json) and vet every string torch would
    evaluate, compile or resolve."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key == "target" and isinstance(value, str) and not _target_ok(value):
                raise _refuse(
                    where,
                    f"calls {value!r}, which MedView does not run from an "
                    f"imported program; refused",
                )
            if key == "expr_str" and not (
                isinstance(value, str) and _words_ok(value, _EXPR_CHARS, _EXPR_WORDS, True)
            ):
                raise _refuse(where)
            if (
                key == "range_constraints"
                and isinstance(value, dict)
                and not all(_words_ok(k, _EXPR_CHARS, _EXPR_WORDS, True) for k in value)
            ):
                raise _refuse(where)
            if key == "guards_code" and not all(
                isinstance(g, str) and _words_ok(g, _GUARD_CHARS, _GUARD_WORDS, False)
                for g in value or []
            ):
                raise _refuse(where)
            stack.append(value)


def _check_payload_config(data: bytes, where: str) -> None:
    """Weights and constants configs: every payload must be raw tensor bytes."""
    try:
        config = json.loads(data).get("config", {})
    except (ValueError, AttributeError) as exc:
        raise _refuse(where, "is truncated or damaged (a payload table is not JSON)") from exc
    for meta in config.values():
        path = str(meta.get("path_name", "")) if isinstance(meta, dict) else ""
        if (
            not isinstance(meta, dict)
            or meta.get("use_pickle")
            or path.startswith(("custom_obj_", "opaque_obj_"))
        ):
            raise _refuse(where)


def _check_plain_tensors(data: bytes, where: str) -> None:
    """A pickled member torch would read with weights_only=True (and, failing that, False):
    it must load with weights_only=True here, so torch never reaches its fallback."""
    import pickle

    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise _refuse(where) from exc
    except Exception as exc:
        raise _refuse(where, "is truncated or damaged (its sample inputs do not load)") from exc


def _torch_format_known() -> str:
    """ "" when the installed torch reads the .pt2 format this vetting was written against,
    else a few words naming the format it reads instead."""
    import torch

    try:
        from torch._export.serde.schema import SCHEMA_VERSION
        from torch.export.pt2_archive.constants import ARCHIVE_VERSION_VALUE
    except ImportError:
        return f"torch {torch.__version__} reads a .pt2 format older than MedView knows"
    if (str(ARCHIVE_VERSION_VALUE), int(SCHEMA_VERSION[0])) != _KNOWN_FORMAT:
        return (
            f"torch {torch.__version__} reads .pt2 archive version {ARCHIVE_VERSION_VALUE}"
            f" with program schema {SCHEMA_VERSION[0]}, which MedView has not vetted"
        )
    return ""


def _members(archive: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    """The members by their name inside the one root folder, from the central directory
    alone (nothing decompressed yet). Duplicate names or several roots are refused: the
    vetting would see one entry and torch's own reader might take the other."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ResourceLimitError(where, f"holds more than {MAX_MEMBERS} files; refused")
    if sum(info.file_size for info in infos) > MAX_UNPACKED_BYTES:
        raise ResourceLimitError(where, "unpacks to more than 8 GiB; refused")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise _refuse(where, f"holds two files named {twice!r}; refused")
    roots = {name.partition("/")[0] for name in names}
    if len(roots) != 1 or any("/" not in name for name in names):
        raise _refuse(
            where,
            f"holds {len(roots)} root folders; a file made by torch.export.save has one; refused",
        )
    return {info.filename.partition("/")[2]: info for info in infos}


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """A member's bytes, decompressing no more than it declares (the declared sizes are what
    the cap was checked on) and verifying its checksum."""
    chunks, left = [], info.file_size
    try:
        with archive.open(info) as member:
            while chunk := member.read(min(left + 1, 1 << 20)):
                left -= len(chunk)
                if left < 0:
                    raise ResourceLimitError(
                        where, f"{info.filename} unpacks to more than it declares; refused"
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise _refuse(
            where, f"is truncated or damaged ({info.filename} fails its checksum)"
        ) from exc
    return b"".join(chunks)


def check_pt2(data: bytes, where: str) -> None:
    """Refuse a .pt2 archive (its bytes) that torch.export.load could not read without
    running code from it; `where` names the file in the message."""
    unknown = _torch_format_known()
    if unknown:
        raise UnsupportedInputError(where, f"{unknown}; refused rather than trusted")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _refuse(where, "is truncated or damaged (not a complete .pt2 archive)") from exc
    members = _members(archive, where)
    contents = {}
    for rel, info in members.items():  # every checksum; the bytes of what is vetted below
        content = _read(archive, info, where)
        if rel.endswith(".json") or not rel.startswith(("data/weights/", "data/constants/")):
            contents[rel] = content
    form, version = contents.get("archive_format"), contents.get("archive_version")
    if (form, version) != (b"pt2", _KNOWN_FORMAT[0].encode()):
        raise UnsupportedInputError(
            where,
            f"is a .pt2 of format {_shown(form)} version "
            f"{_shown(version)}, which MedView's vetting does "
            f"not know; refused rather than trusted",
        )
    programs = [m for m in members if m.startswith("models/") and m.endswith(".json")]
    if len(programs) != 1:
        raise _refuse(
            where,
            f"holds {len(programs)} exported programs; MedView imports a "
            f"file made by torch.export.save of one program",
        )
    for rel in members:
        content = contents.get(rel, b"")
        if rel.startswith(_FORBIDDEN_DIRS):
            raise _refuse(where, "contains compiled code (AOTInductor or similar); refused")
        if rel.startswith("data/sample_inputs/"):
            _check_plain_tensors(content, where)
        elif rel.endswith(".pt"):
            raise _refuse(where)
        elif rel.endswith(("_weights_config.json", "_constants_config.json")):
            _check_payload_config(content, where)
    try:
        program = json.loads(contents[programs[0]])
    except ValueError as exc:
        raise _refuse(where, "is truncated or damaged (its program is not JSON)") from exc
    schema = program.get("schema_version") if isinstance(program, dict) else None
    major = schema.get("major") if isinstance(schema, dict) else None
    if major != _KNOWN_FORMAT[1]:
        raise UnsupportedInputError(
            where,
            f"holds a program of schema version {major}, "
            f"which MedView's vetting does not know; refused "
            f"rather than trusted",
        )
    _check_program(program, where)


def _shown(value: bytes | None) -> str:
    return "(none)" if value is None else repr(value.decode("utf-8", "replace")[:20])

"""DIMSE: C-ECHO, C-GET, C-MOVE to our own storage SCP and C-STORE with pynetdicom; C-FIND
(study, series, instance level) in the caller's thread (net.find_scu). Every failure is one
NetworkError sentence: the node is down, refused our AE title, did not answer in time, or
answered with something malformed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import Any

from medview.core.jobs import CancelToken, JobCancelled
from medview.net import find_scu, pdu_limit
from medview.net.errors import NetworkError
from medview.net.logs import quiet_pynetdicom
from medview.net.nodes import DimseNode
from medview.net.query import (
    Attribute,
    SeriesRow,
    StudyQuery,
    StudyRow,
    series_row,
    study_row,
)

VERIFICATION = "1.2.840.10008.1.1"
FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND
MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"
GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"

# The storage classes a retrieval accepts (pynetdicom allows 128 contexts in all): the images
# MedView shows and the objects it reads and writes beside them.
RETRIEVED_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
)


def accepted_transfer_syntaxes() -> list[str]:
    """Uncompressed, deflate, and every compressed syntax the installed codecs decode, so
    a PACS that keeps JPEG-LS or JPEG 2000 can send as it stores."""
    from pydicom import uid

    from medview.io.dicom.pixel_codecs import decodable

    base = [
        uid.ExplicitVRLittleEndian,
        uid.ImplicitVRLittleEndian,
        uid.DeflatedExplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
    ]
    compressed = [
        uid.JPEGLSLossless,
        uid.JPEGLSNearLossless,
        uid.JPEGLossless,
        uid.JPEGLosslessSV1,
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
        uid.JPEG2000Lossless,
        uid.JPEG2000,
        uid.RLELossless,
        uid.HTJ2KLossless,
        uid.HTJ2KLosslessRPCL,
        uid.HTJ2K,
    ]
    return [str(t) for t in base] + [str(t) for t in compressed if decodable(t)]


def _ae(node: DimseNode) -> Any:
    from pynetdicom import AE

    quiet_pynetdicom()
    pdu_limit.install()
    ae = AE(ae_title=node.our_ae)
    ae.acse_timeout = node.timeout_s
    ae.dimse_timeout = node.timeout_s
    ae.network_timeout = node.timeout_s
    ae.connection_timeout = node.timeout_s
    return ae


def _reachable(node: DimseNode) -> None:
    """Tell 'down' from 'unknown host' from 'no answer' before pynetdicom, which reports
    them all as an abort."""
    find_scu.connect(node).close()


@contextmanager
def association(
    node: DimseNode,
    contexts: Iterable[tuple[str, list[str] | None]],
    handlers: list | None = None,
    roles: list | None = None,
) -> Iterator[Any]:
    """An established association with the node, released on leaving; otherwise a
    NetworkError that says why."""
    from pynetdicom import evt
    from pynetdicom.pdu import A_ASSOCIATE_RJ

    ae = _ae(node)
    for abstract, syntaxes in contexts:
        if syntaxes:
            ae.add_requested_context(abstract, syntaxes)
        else:
            ae.add_requested_context(abstract)
    _reachable(node)
    # A peer that rejects and closes the connection at once (Orthanc does) can close it
    # before pynetdicom's requesting thread looks at it: the association then reads as
    # aborted, not rejected (about 2 in 100 tries). The reactor thread decodes the
    # A-ASSOCIATE-RJ before it closes, so it is noted here as it arrives.
    rejected: list[Any] = []

    def note_rejection(event: Any) -> None:
        if isinstance(event.pdu, A_ASSOCIATE_RJ):
            rejected.append(event.pdu)

    started = time.monotonic()
    assoc = ae.associate(
        node.host,
        node.port,
        ae_title=node.called_ae,
        ext_neg=roles or None,
        evt_handlers=[(evt.EVT_PDU_RECV, note_rejection), *(handlers or [])],
    )
    if not assoc.is_established:
        oversized = pdu_limit.problem(assoc)
        if oversized:
            raise NetworkError(node.name, oversized)
        if assoc.is_rejected or rejected:
            raise NetworkError(
                node.name,
                f"refused the association: it does not accept our "
                f"AE title {node.our_ae} or its own called AE "
                f"title {node.called_ae}",
            )
        if time.monotonic() - started >= node.timeout_s * 0.9:
            raise NetworkError(
                node.name, f"did not answer the association request within {node.timeout_s:g} s"
            )
        raise NetworkError(
            node.name,
            "closed the connection without accepting the association; is it a DICOM node?",
        )
    assoc.unbind(evt.EVT_PDU_RECV, note_rejection)  # no call per PDU from here on
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _check_status(node: DimseNode, assoc: Any, status: Any, what: str) -> int:
    if status is None or "Status" not in status:
        oversized = pdu_limit.problem(assoc)
        if oversized:
            raise NetworkError(node.name, oversized)
        raise NetworkError(
            node.name,
            f"gave no answer to the {what} within {node.timeout_s:g} s, or the connection broke",
        )
    return int(status.Status)


def echo(node: DimseNode) -> float:
    """A C-ECHO round trip in seconds (association included)."""
    started = time.monotonic()
    with association(node, [(VERIFICATION, None)]) as assoc:
        code = _check_status(node, assoc, assoc.send_c_echo(), "C-ECHO")
    if code != 0:
        raise NetworkError(node.name, f"answered the C-ECHO with status 0x{code:04X}")
    return time.monotonic() - started


def _find(node: DimseNode, identifier: Any) -> Iterator[Attribute]:
    """Each matching identifier of a Study Root C-FIND as it arrives, as the accessor
    study_row / series_row read it through (_answer_value). The query runs in this thread
    (net.find_scu: pynetdicom's reactor doubled the time of a long list). Closed before
    the end (the search was cancelled), the association is aborted: a release would wait
    for the node to finish answering."""
    from pynetdicom.dsutils import encode

    request = encode(identifier, True, True)
    assert request is not None  # the identifiers built here always encode
    for answer in find_scu.find(node, FIND_MODEL, request):
        yield _answer_value(answer)


def _text(ds: Any, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")
    except Exception:  # a value that does not decode is left out, not fatal
        return ""
    if value is None:
        return ""
    from pydicom.multival import MultiValue

    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(str(v) for v in value)
    return str(value)


# Specific Character Sets decoded by one codec without escape sequences (none, ASCII,
# Latin-1, UTF-8): what PACSs answer with nearly always
_ONE_CODEC_CHARSETS = ("", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192")
# the VRs the Specific Character Set applies to; the others are read as pydicom's default
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})


@cache
def _tag_and_vr(keyword: str) -> tuple[int, str]:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"{keyword} is not a DICOM keyword")
    return tag, dictionary_VR(tag)


def _answer_value(answer: bytes) -> Attribute:
    """The accessor study_row / series_row read a C-FIND answer (Implicit VR Little Endian
    bytes) through. It decodes only the asked-for elements, from their bytes, when the
    character set is one codec: pydicom's element conversion (value types, validation)
    cost a third of the time of listing 1,000 studies. Another character set, a sequence of
    undefined length, or bytes that do not decode go through pydicom (_text); either way
    the text is the element's values joined by backslashes, padding stripped."""
    from io import BytesIO

    from pydicom import charset
    from pynetdicom.dsutils import decode

    from medview.net.find_scu import elements

    found = elements(answer)
    specific = None
    if found is not None:
        specific = found.get((0x0008, 0x0005), b"").decode("ascii", "replace").strip(" \0")
    if found is None or specific not in _ONE_CODEC_CHARSETS:
        try:
            return partial(_text, decode(BytesIO(answer), True, True))
        except Exception:  # an answer pydicom cannot read either
            return lambda _keyword: ""
    codec = charset.python_encoding[specific]

    def value(keyword: str) -> str:
        tag, vr = _tag_and_vr(keyword)
        raw = found.get((tag >> 16, tag & 0xFFFF))
        if raw is None:
            return ""
        try:
            text = raw.decode(codec if vr in _CHARSET_VRS else charset.default_encoding)
        except UnicodeDecodeError:
            return _text(decode(BytesIO(answer), True, True), keyword)
        return "\\".join(v.rstrip(" \0") for v in text.split("\\"))

    return value


def study_identifier(q: StudyQuery) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = q.study_uid
    ds.PatientName = f"*{q.name}*" if q.name and "*" not in q.name else q.name
    ds.PatientID = q.patient_id
    ds.StudyDate = q.date_range
    ds.ModalitiesInStudy = q.modality
    ds.AccessionNumber = q.accession
    ds.StudyDescription = f"*{q.description}*" if q.description else ""
    ds.NumberOfStudyRelatedSeries = ""
    ds.NumberOfStudyRelatedInstances = ""
    return ds


def iter_studies(node: DimseNode, q: StudyQuery) -> Iterator[StudyRow]:
    """Each matching study as its answer arrives, so a long list can be shown while the
    rest comes (the first of 1,000 arrives in a fifth of the time of the whole list)."""
    for value in _find(node, study_identifier(q)):
        row = study_row(value, node.name)
        if row is None:
            raise NetworkError(node.name, "answered the C-FIND with a study without a UID")
        yield row


def find_studies(node: DimseNode, q: StudyQuery) -> list[StudyRow]:
    return list(iter_studies(node, q))


def find_series(node: DimseNode, study_uid: str) -> list[SeriesRow]:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = ""
    ds.SeriesNumber = ""
    ds.SeriesDescription = ""
    ds.NumberOfSeriesRelatedInstances = ""
    return [series_row(value) for value in _find(node, ds)]


def find_instances(node: DimseNode, study_uid: str, series_uid: str) -> list[str]:
    """The SOP Instance UIDs of a series (what a resumed retrieval compares with)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = ""
    return [value("SOPInstanceUID") for value in _find(node, ds)]


def _retrieve_identifier(study_uid: str, series_uid: str | None, sop_uids: list[str] | None) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.StudyInstanceUID = study_uid
    ds.QueryRetrieveLevel = "STUDY"
    if series_uid:
        ds.QueryRetrieveLevel = "SERIES"
        ds.SeriesInstanceUID = series_uid
    if sop_uids:
        ds.QueryRetrieveLevel = "IMAGE"
        ds.SOPInstanceUID = list(sop_uids)
    return ds


# what the store handler does with an arrived instance: (study, series, sop, Part 10 bytes)
Sink = Callable[[str, str, str, bytes], None]


def store_handler(sink: Sink, on_error: Callable[[BaseException], None]) -> Callable:
    """An EVT_C_STORE handler: reads the UIDs, hands the encoded file to `sink`, answers
    success, 0xA700 (out of resources: disk full) or 0xC000 (refused: not a valid UID)."""
    from medview.net.errors import DiskFullError
    from medview.net.storage import InvalidUidError

    def handle(event: Any) -> int:
        try:
            ds = event.dataset
            sop = str(event.request.AffectedSOPInstanceUID)
            encoded = event.encoded_dataset(include_meta=True)
            sink(_text(ds, "StudyInstanceUID"), _text(ds, "SeriesInstanceUID"), sop, encoded)
        except DiskFullError as err:
            on_error(err)
            return 0xA700
        except InvalidUidError as err:
            on_error(err)
            return 0xC000
        except Exception as err:  # a dataset that does not decode is refused, not fatal
            on_error(err)
            return 0xC000
        return 0x0000

    return handle


# told the number of instances a retrieval will bring, from the node's first pending status
OnTotal = Callable[[int], None]


def _run_retrieve(
    node: DimseNode,
    responses: Iterator,
    assoc: Any,
    what: str,
    cancel: CancelToken | None,
    on_total: OnTotal | None = None,
) -> tuple[int, int]:
    """Follow C-GET / C-MOVE responses to the end; (completed, failed) sub-operations."""
    completed = failed = 0
    for status, _ident in responses:
        if cancel is not None and cancel.cancelled:
            assoc.abort()
            raise JobCancelled()
        code = _check_status(node, assoc, status, what)
        counts = [
            int(status.get(f"Number{k}Suboperations", 0) or 0)
            for k in ("OfRemaining", "OfCompleted", "OfFailed", "OfWarning")
        ]
        completed, failed = counts[1], counts[2]
        if code in (0xFF00, 0xFF01):
            if on_total is not None:
                on_total(sum(counts))
                on_total = None
            continue
        if code in (0x0000, 0xB000):
            break
        if code == 0xA801:
            raise NetworkError(
                node.name,
                f"does not know the destination {node.our_ae} "
                f"for C-MOVE; add it there with port "
                f"{node.our_port}",
            )
        if code == 0xFE00:
            raise JobCancelled()
        raise NetworkError(node.name, f"refused the {what} (status 0x{code:04X})")
    return completed, failed


def get(
    node: DimseNode,
    study_uid: str,
    sink: Sink,
    *,
    series_uid: str | None = None,
    sop_uids: list[str] | None = None,
    cancel: CancelToken | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_total: OnTotal | None = None,
) -> tuple[int, int]:
    """C-GET: the node sends the instances back on the same association."""
    from pynetdicom import build_role, evt

    errors: list[BaseException] = []
    handler = store_handler(sink, on_error or errors.append)
    syntaxes = accepted_transfer_syntaxes()
    contexts = [(GET_MODEL, None)] + [(c, syntaxes) for c in RETRIEVED_CLASSES]
    roles = [build_role(c, scp_role=True) for c in RETRIEVED_CLASSES]
    ident = _retrieve_identifier(study_uid, series_uid, sop_uids)
    with association(node, contexts, handlers=[(evt.EVT_C_STORE, handler)], roles=roles) as assoc:
        result = _run_retrieve(
            node, assoc.send_c_get(ident, GET_MODEL), assoc, "C-GET", cancel, on_total
        )
    _raise_first(errors)
    return result


def _raise_first(errors: list[BaseException]) -> None:
    from medview.net.errors import DiskFullError

    for err in errors:
        if isinstance(err, DiskFullError):
            raise err


def move(
    node: DimseNode,
    study_uid: str,
    *,
    series_uid: str | None = None,
    sop_uids: list[str] | None = None,
    cancel: CancelToken | None = None,
    on_total: OnTotal | None = None,
) -> tuple[int, int]:
    """C-MOVE to our AE title: the node opens its own association to our storage SCP
    (which must be listening on node.our_port: net.scp)."""
    ident = _retrieve_identifier(study_uid, series_uid, sop_uids)
    with association(node, [(MOVE_MODEL, None)]) as assoc:
        return _run_retrieve(
            node,
            assoc.send_c_move(ident, node.our_ae, MOVE_MODEL),
            assoc,
            "C-MOVE",
            cancel,
            on_total,
        )


def send(
    node: DimseNode,
    paths: list[Path],
    *,
    cancel: CancelToken | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """C-STORE each file (Part 10) in its own transfer syntax; the number stored. A file the
    node refuses is one sentence naming it."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    headers = []
    for p in paths:
        try:
            meta = dcmread(p, stop_before_pixels=True, specific_tags=["SOPClassUID"])
            headers.append(
                (
                    p,
                    str(meta.file_meta.MediaStorageSOPClassUID),
                    str(meta.file_meta.TransferSyntaxUID),
                )
            )
        except (InvalidDicomError, OSError, AttributeError) as err:
            raise NetworkError(str(p), f"is not a DICOM file that can be sent ({err})") from None
    pairs: dict[str, set[str]] = {}
    for _p, sop_class, ts in headers:
        pairs.setdefault(sop_class, set()).add(ts)
    if len(pairs) > 120:
        raise NetworkError(
            node.name, "the files hold more than 120 kinds of object; send them in smaller groups"
        )
    contexts = [
        (c, sorted(ts | {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"})) for c, ts in pairs.items()
    ]
    sent = 0
    with association(node, contexts) as assoc:
        for i, (p, _c, _t) in enumerate(headers):
            if cancel is not None and cancel.cancelled:
                raise JobCancelled()
            ds = dcmread(p)
            code = _check_status(node, assoc, assoc.send_c_store(ds), "C-STORE")
            if code not in (0x0000, 0xB000, 0xB006, 0xB007):
                raise NetworkError(node.name, f"refused {p.name} (C-STORE status 0x{code:04X})")
            sent += 1
            if progress is not None:
                progress(i + 1, len(headers))
    return sent

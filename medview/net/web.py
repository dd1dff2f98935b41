"""DICOMweb with dicomweb-client: QIDO-RS search, WADO-RS retrieve (in whatever transfer
syntax the server keeps, when MedView decodes it), STOW-RS send. TLS is verified with the
system's certificates or the node's chosen CA; authentication is none, basic or a bearer
token, the secret coming from the keyring (or the caller, when there is none)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from medview.core.jobs import CancelToken, JobCancelled
from medview.net.credentials import load_secret
from medview.net.errors import NetworkError
from medview.net.logs import quiet_network_loggers
from medview.net.nodes import WebNode
from medview.net.query import SeriesRow, StudyQuery, StudyRow, series_row, study_row

STUDY_FIELDS = (
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)


def _session(node: WebNode, secret: str | None) -> Any:
    import requests

    s = requests.Session()
    s.verify = node.ca_file or node.verify_tls
    if s.verify is not True:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify`,
        # which would drop the reader's CA (or explicit choice): keep only the environment's
        # proxies for this URL
        s.trust_env = False
        s.proxies = requests.utils.get_environ_proxies(node.url)
    if node.auth != "none":
        secret = secret if secret is not None else load_secret(node.name)
        if secret is None:
            what = "password" if node.auth == "basic" else "token"
            raise NetworkError(
                node.name, f"needs a {what} and none is stored; enter it in the node's settings"
            )
        if node.auth == "basic":
            s.auth = (node.username, secret)
        else:
            s.headers["Authorization"] = f"Bearer {secret}"
    return s


def client(node: WebNode, secret: str | None = None) -> Any:
    from dicomweb_client import DICOMwebClient

    quiet_network_loggers()
    if node.insecure:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    c = DICOMwebClient(node.url, session=_session(node, secret), timeout=node.timeout_s)
    # its default retries every failure (a refused connection, an unverified certificate)
    # five times over 31 s of back-off: the reader would wait half a minute for a sentence
    c.set_http_retry_params(retry=True, max_attempts=2, wait_exponential_multiplier=250)
    return c


@contextmanager
def _errors(node: WebNode, what: str) -> Iterator[None]:
    """requests' and dicomweb-client's exceptions as one sentence each."""
    import requests

    try:
        yield
    except requests.exceptions.SSLError:
        raise NetworkError(
            node.name,
            "its TLS certificate could not be verified (choose its CA in the node's settings)",
        ) from None
    except requests.exceptions.ConnectTimeout:
        raise NetworkError(node.name, f"did not answer within {node.timeout_s:g} s") from None
    except requests.exceptions.ReadTimeout:
        raise NetworkError(
            node.name, f"stopped answering the {what} for {node.timeout_s:g} s"
        ) from None
    except requests.exceptions.ConnectionError:
        raise NetworkError(
            node.name, "cannot be reached; the server is down or the URL is wrong"
        ) from None
    except requests.exceptions.HTTPError as err:
        code = err.response.status_code if err.response is not None else 0
        if code in (401, 403):
            raise NetworkError(
                node.name, f"refused our credentials for the {what} (HTTP {code})"
            ) from None
        if code == 404:
            raise NetworkError(
                node.name, f"has no DICOMweb service at {node.url} or not what was asked (HTTP 404)"
            ) from None
        raise NetworkError(node.name, f"answered the {what} with HTTP {code}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise NetworkError(
            node.name, f"answered the {what} with a malformed response ({type(err).__name__})"
        ) from None


def _value(item: dict, keyword: str) -> str:
    from pydicom.datadict import tag_for_keyword

    tag = f"{tag_for_keyword(keyword):08X}"
    element = item.get(tag) or {}
    values = element.get("Value") or []
    out = []
    for v in values:
        if isinstance(v, dict):  # PersonName in JSON
            out.append(str(v.get("Alphabetic", "")))
        else:
            out.append(str(v))
    return "\\".join(out)


def search_filters(q: StudyQuery) -> dict[str, str]:
    filters = {}
    if q.study_uid:
        filters["StudyInstanceUID"] = q.study_uid
    if q.patient_id:
        filters["PatientID"] = q.patient_id
    if q.name:
        filters["PatientName"] = q.name if "*" in q.name else f"*{q.name}*"
    if q.date_range:
        filters["StudyDate"] = q.date_range
    if q.modality:
        filters["ModalitiesInStudy"] = q.modality
    if q.accession:
        filters["AccessionNumber"] = q.accession
    if q.description:
        filters["StudyDescription"] = f"*{q.description}*"
    return filters


def find_studies(node: WebNode, q: StudyQuery, secret: str | None = None) -> list[StudyRow]:
    with _errors(node, "QIDO-RS search"):
        found = client(node, secret).search_for_studies(
            search_filters=search_filters(q), fields=list(STUDY_FIELDS), get_remaining=True
        )
        rows = []
        for item in found:
            row = study_row(partial(_value, item), node.name)
            if row is None:
                raise ValueError("a study without a UID")
            rows.append(row)
    return rows


def find_series(node: WebNode, study_uid: str, secret: str | None = None) -> list[SeriesRow]:
    with _errors(node, "QIDO-RS search"):
        found = client(node, secret).search_for_series(study_uid, get_remaining=True)
        return [series_row(partial(_value, i)) for i in found]


def find_instances(
    node: WebNode, study_uid: str, series_uid: str, secret: str | None = None
) -> list[str]:
    with _errors(node, "QIDO-RS search"):
        found = client(node, secret).search_for_instances(
            study_uid, series_uid, fields=["SOPInstanceUID"], get_remaining=True
        )
        return [_value(i, "SOPInstanceUID") for i in found]


def echo(node: WebNode, secret: str | None = None) -> float:
    """A DICOMweb 'echo': one QIDO-RS search asking for a single study; seconds taken."""
    import time

    started = time.monotonic()
    with _errors(node, "test search"):
        client(node, secret).search_for_studies(limit=1)
    return time.monotonic() - started


def _media_types() -> tuple:
    """application/dicom in any transfer syntax (the server's own): MedView decodes the
    compressed ones the installed codecs handle; the rest are refused when read."""
    return (("application/dicom", "*"),)


def _encode(ds: Any) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def get(
    node: WebNode,
    study_uid: str,
    sink: Callable[[str, str, str, bytes], None],
    *,
    series_uid: str,
    sop_uids: list[str] | None = None,
    cancel: CancelToken | None = None,
    secret: str | None = None,
) -> int:
    """WADO-RS: a whole series in one multipart stream, or only the chosen instances one by
    one (a resumed series). Each arrives at `sink` as Part 10 bytes; the count received."""
    count = 0
    with _errors(node, "WADO-RS retrieval"):
        c = client(node, secret)
        if sop_uids is None:
            stream = c.iter_series(study_uid, series_uid, media_types=_media_types())
        else:
            stream = (
                c.retrieve_instance(study_uid, series_uid, sop, media_types=_media_types())
                for sop in sop_uids
            )
        for ds in stream:
            if cancel is not None and cancel.cancelled:
                raise JobCancelled()
            sink(
                str(ds.get("StudyInstanceUID", "")),
                str(ds.get("SeriesInstanceUID", "")),
                str(ds.get("SOPInstanceUID", "")),
                _encode(ds),
            )
            count += 1
    return count


def send(
    node: WebNode,
    paths: list[Path],
    *,
    secret: str | None = None,
    cancel: CancelToken | None = None,
) -> int:
    """STOW-RS, one request per study; the number of instances stored."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    by_study: dict[str, list[Any]] = {}
    for p in paths:
        try:
            ds = dcmread(p)
        except (InvalidDicomError, OSError) as err:
            raise NetworkError(str(p), f"is not a DICOM file that can be sent ({err})") from None
        by_study.setdefault(str(ds.get("StudyInstanceUID", "")), []).append(ds)
    sent = 0
    with _errors(node, "STOW-RS send"):
        c = client(node, secret)
        for study, datasets in by_study.items():
            if cancel is not None and cancel.cancelled:
                raise JobCancelled()
            answer = c.store_instances(datasets, study_instance_uid=study or None)
            failed = answer.get("FailedSOPSequence") or []
            if failed:
                raise NetworkError(
                    node.name,
                    f"refused {len(failed)} of {len(datasets)} instances of the STOW-RS send",
                )
            sent += len(datasets)
    return sent

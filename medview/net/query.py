"""What the reader searches for and what a node (or the local database) answers, in one shape
for DIMSE, DICOMweb and the local study database, so the browser lists them in one list."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from medview.core.errors import InvalidInputError

_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True)
class StudyQuery:
    """Search terms; empty ones match everything. `name` may hold * wildcards; dates are
    YYYYMMDD and inclusive."""

    patient_id: str = ""
    name: str = ""
    date_from: str = ""
    date_to: str = ""
    modality: str = ""
    accession: str = ""
    description: str = ""
    study_uid: str = ""

    def __post_init__(self) -> None:
        for what, value in (("from", self.date_from), ("to", self.date_to)):
            if value and not _DATE.match(value):
                raise InvalidInputError(None, f"the date {what} {value!r} is not YYYYMMDD")

    @property
    def date_range(self) -> str:
        """The DICOM range matching form: FROM-TO, FROM-, -TO, or empty."""
        if not self.date_from and not self.date_to:
            return ""
        if self.date_from == self.date_to:
            return self.date_from
        return f"{self.date_from}-{self.date_to}"


def parse_date_range(text: str) -> tuple[str, str]:
    """`--date FROM-TO` (either side may be empty; one date alone means that day)."""
    text = text.strip()
    if "-" in text:
        lo, hi = (p.strip() for p in text.split("-", 1))
    else:
        lo = hi = text
    StudyQuery(date_from=lo, date_to=hi)  # the check
    return lo, hi


@dataclass(frozen=True)
class SeriesRow:
    series_uid: str
    modality: str = ""
    number: str = ""
    description: str = ""
    instances: int | None = None


@dataclass(frozen=True)
class StudyRow:
    """One study as the browser lists it; `source` is "local" or the node's name."""

    study_uid: str
    source: str
    patient_name: str = ""
    patient_id: str = ""
    date: str = ""
    description: str = ""
    accession: str = ""
    modalities: tuple[str, ...] = ()
    series_count: int | None = None
    instance_count: int | None = None
    series: tuple[SeriesRow, ...] = field(default=())

    def public(self, show_phi: bool) -> dict:
        """As JSON for `pacs find --json`; name and ID only when asked for."""
        out = {
            "study_uid": self.study_uid,
            "source": self.source,
            "date": self.date,
            "description": self.description,
            "accession": self.accession,
            "modalities": list(self.modalities),
            "series": self.series_count,
            "instances": self.instance_count,
        }
        if show_phi:
            out |= {"patient_name": self.patient_name, "patient_id": self.patient_id}
        return out


def _contains(value: str, needle: str) -> bool:
    if not needle:
        return True
    pattern = re.escape(needle.lower()).replace(r"\*", ".*").replace(r"\?", ".")
    return re.search(pattern, value.lower()) is not None


def matches(row: StudyRow, q: StudyQuery) -> bool:
    """The same test the local database and the browser's filter apply: substring (with *
    wildcards) for text, exact for IDs and UIDs, inclusive date range."""
    if q.study_uid and row.study_uid != q.study_uid:
        return False
    if q.patient_id and not _contains(row.patient_id, q.patient_id):
        return False
    if not _contains(row.patient_name.replace("^", " "), q.name.replace("^", " ")):
        return False
    if q.accession and not _contains(row.accession, q.accession):
        return False
    if not _contains(row.description, q.description):
        return False
    if q.modality and q.modality.upper() not in {m.upper() for m in row.modalities}:
        return False
    if q.date_from and (not row.date or row.date < q.date_from):
        return False
    return not (q.date_to and (not row.date or row.date > q.date_to))


Attribute = Callable[[str], str]  # a keyword's value as text ("" when absent)


def _number(value: Attribute, keyword: str) -> int | None:
    try:
        return int(value(keyword))
    except ValueError:
        return None


def study_row(value: Attribute, source: str) -> StudyRow | None:
    """A study-level answer as a row, read through `value` (a C-FIND identifier's or a
    QIDO-RS JSON item's accessor, so both protocols list the same fields the same way);
    None when it carries no Study Instance UID."""
    uid = value("StudyInstanceUID")
    if not uid:
        return None
    return StudyRow(
        study_uid=uid,
        source=source,
        patient_name=value("PatientName"),
        patient_id=value("PatientID"),
        date=value("StudyDate"),
        description=value("StudyDescription"),
        accession=value("AccessionNumber"),
        modalities=tuple(m for m in value("ModalitiesInStudy").split("\\") if m),
        series_count=_number(value, "NumberOfStudyRelatedSeries"),
        instance_count=_number(value, "NumberOfStudyRelatedInstances"),
    )


def series_row(value: Attribute) -> SeriesRow:
    """A series-level answer as a row (see study_row)."""
    return SeriesRow(
        series_uid=value("SeriesInstanceUID"),
        modality=value("Modality"),
        number=value("SeriesNumber"),
        description=value("SeriesDescription"),
        instances=_number(value, "NumberOfSeriesRelatedInstances"),
    )

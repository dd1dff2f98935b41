"""The local study database: every study opened, retrieved or received, as SQLite in
<data>/pacs/studies.sqlite: patient, study, series, instance counts, where each file is, when
and from where. Never pixels. It is an index of files, so when it is damaged it is set aside
and rebuilt from the received files, and `notice` says so in one sentence."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from medview.io.workspace import keep_aside
from medview.net.nodes import pacs_dir
from medview.net.query import SeriesRow, StudyQuery, StudyRow, matches

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY, patient_name TEXT, patient_id TEXT, date TEXT,
    description TEXT, accession TEXT, source TEXT, added REAL);
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT PRIMARY KEY, study_uid TEXT, modality TEXT, number TEXT,
    description TEXT);
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY, series_uid TEXT, path TEXT, source TEXT, added REAL);
CREATE INDEX IF NOT EXISTS instances_series ON instances (series_uid);
CREATE INDEX IF NOT EXISTS series_study ON series (study_uid);
"""

_HEADER_TAGS = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "PatientName",
    "PatientID",
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
]


def database_file() -> Path:
    return pacs_dir() / "studies.sqlite"


class StudyDB:
    """Thread-safe (the storage SCP adds files from its own threads)."""

    def __init__(self, path: Path | None = None, received: Path | None = None) -> None:
        from medview.net.storage import received_dir

        self.path = path or database_file()
        self.received = received or received_dir()
        self.notice = ""
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            aside = keep_aside(self.path, move=True)
            self._db = self._open()
            n = self.rebuild()
            self.notice = (
                f"The study database was damaged (kept as {aside.name}) and was "
                f"rebuilt from the {n} received files."
            )
            log.warning("%s", self.notice)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        try:
            # WAL without a sync per commit: a commit lost in a power cut only means a file
            # is indexed again (rebuild) or fetched again (resume); one fsync per received
            # instance would double a retrieval's time
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            ok = db.execute("PRAGMA quick_check").fetchone()
            if not ok or ok[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def add_file(self, path: Path, source: str) -> bool:
        """Index one DICOM file (its header only); False when it is not one."""
        return self.add_files([path], source) == 1

    def add_files(self, paths: Iterable[Path], source: str) -> int:
        from pydicom import dcmread

        rows = []
        for p in paths:
            try:
                ds = dcmread(p, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
            except Exception:  # not DICOM, or damaged: simply not indexed
                continue
            g = {k: str(ds.get(k, "") or "") for k in _HEADER_TAGS}
            if not (g["StudyInstanceUID"] and g["SeriesInstanceUID"] and g["SOPInstanceUID"]):
                continue
            rows.append((g, str(Path(p).resolve())))
        now = time.time()
        with self._lock, self._db:
            for g, path in rows:
                self._db.execute(
                    "INSERT INTO studies VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(study_uid) DO "
                    "UPDATE SET patient_name=excluded.patient_name, "
                    "patient_id=excluded.patient_id, date=excluded.date, "
                    "description=excluded.description, accession=excluded.accession",
                    (
                        g["StudyInstanceUID"],
                        g["PatientName"],
                        g["PatientID"],
                        g["StudyDate"],
                        g["StudyDescription"],
                        g["AccessionNumber"],
                        source,
                        now,
                    ),
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO series VALUES (?,?,?,?,?)",
                    (
                        g["SeriesInstanceUID"],
                        g["StudyInstanceUID"],
                        g["Modality"],
                        g["SeriesNumber"],
                        g["SeriesDescription"],
                    ),
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?)",
                    (g["SOPInstanceUID"], g["SeriesInstanceUID"], path, source, now),
                )
        return len(rows)

    def rebuild(self) -> int:
        """Index every file under the received folder again; the number indexed."""
        files = [p for p in self.received.rglob("*.dcm")] if self.received.is_dir() else []
        with self._lock, self._db:
            for table in ("instances", "series", "studies"):
                self._db.execute(f"DELETE FROM {table}")
        return self.add_files(files, "received")

    def instances_of(self, series_uid: str) -> dict[str, Path]:
        """The instances of a series held here whose file still exists."""
        with self._lock:
            found = self._db.execute(
                "SELECT sop_uid, path FROM instances WHERE series_uid=?", (series_uid,)
            ).fetchall()
        return {sop: Path(p) for sop, p in found if Path(p).is_file()}

    def instances_in_study(self, study_uid: str) -> dict[str, Path]:
        """The instances of a study held here whose file still exists."""
        with self._lock:
            found = self._db.execute(
                "SELECT i.sop_uid, i.path FROM instances i JOIN series s "
                "ON s.series_uid = i.series_uid WHERE s.study_uid=?",
                (study_uid,),
            ).fetchall()
        return {sop: Path(p) for sop, p in found if Path(p).is_file()}

    def studies(self, q: StudyQuery | None = None) -> list[StudyRow]:
        with self._lock:
            studies = self._db.execute(
                "SELECT study_uid, patient_name, patient_id, date, description, accession "
                "FROM studies ORDER BY date DESC, study_uid"
            ).fetchall()
            series = self._db.execute(
                "SELECT s.study_uid, s.series_uid, s.modality, s.number, s.description, "
                "COUNT(i.sop_uid) FROM series s LEFT JOIN instances i "
                "ON i.series_uid = s.series_uid GROUP BY s.series_uid"
            ).fetchall()
        by_study: dict[str, list[SeriesRow]] = {}
        for study, uid, modality, number, desc, n in series:
            by_study.setdefault(study, []).append(SeriesRow(uid, modality, number, desc, n))
        rows = []
        for uid, name, pid, date, desc, acc in studies:
            ser = tuple(by_study.get(uid, []))
            rows.append(
                StudyRow(
                    study_uid=uid,
                    source="local",
                    patient_name=name,
                    patient_id=pid,
                    date=date,
                    description=desc,
                    accession=acc,
                    modalities=tuple(sorted({s.modality for s in ser if s.modality})),
                    series_count=len(ser),
                    instance_count=sum(s.instances or 0 for s in ser),
                    series=ser,
                )
            )
        return [r for r in rows if q is None or matches(r, q)]

    def series_files(self, series_uid: str) -> list[Path]:
        return sorted(self.instances_of(series_uid).values())

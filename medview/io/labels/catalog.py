"""What the workspace's label folders hold, across series: the series a crash left with
unsaved edits (offered for recovery at start), and the studies marked done — the list the
fine-tuning issue trains on. Reads only label.json and snapshot headers (no voxels), so
listing a few hundred studies is quick; nothing here names a patient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from medview.core.errors import MedviewError
from medview.io.labels import codec
from medview.io.labels.store import (
    DONE,
    FORMAT,
    VERSION,
    LabelSource,
    LabelStore,
    labels_root,
)
from medview.io.workspace import StoreFileProblem, read_store_file


@dataclass(frozen=True)
class Recoverable:
    """A series with edits newer than its last clean save (MedView did not close normally)."""

    series_key: str
    last_change: str  # ISO 8601, UTC: when its newest journal or snapshot was written
    edits: int  # journal records since the last snapshot (strokes and segment changes)
    folder: Path
    description: str = ""  # modality and study UID tail, never a patient name


@dataclass(frozen=True)
class DoneStudy:
    series_key: str
    source: LabelSource  # UIDs, source files, series folder, shape, affine, patient_key
    label_folder: Path
    segments: dict[int, str]  # value -> name
    counts: dict[int, int]  # voxels per value, as of the latest snapshot
    by: str
    at: str
    unsaved_edits: bool  # edits after that snapshot (a crash): counts may be out of date

    def load_labels(self, root: Path | None = None) -> np.ndarray:
        """The label map (uint8 (slice, row, col), on the source volume's grid)."""
        return load_done_labels(self, root)


def _stores(root: Path | None) -> list[tuple[Path, dict]]:
    """(folder, label.json document) of every readable label folder."""
    base = labels_root(root)
    out: list[tuple[Path, dict]] = []
    if not base.is_dir():
        return out
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            doc = read_store_file(folder / "label.json", FORMAT, VERSION, "labels")
        except StoreFileProblem:
            continue  # opening that series says what is wrong with it
        if doc is not None and isinstance(doc.get("series_key"), str):
            out.append((folder, doc))
    return out


def _mtime(paths: list[Path]) -> str:
    newest = max((p.stat().st_mtime for p in paths), default=0.0)
    return datetime.fromtimestamp(newest, timezone.utc).isoformat(timespec="seconds")


def pending_recovery(root: Path | None = None) -> list[Recoverable]:
    """Series whose saved state is newer than their last clean save, newest first."""
    out = []
    for folder, doc in _stores(root):
        try:
            store = LabelStore(doc["series_key"], root)
        except MedviewError:
            continue
        if not store.has_unsaved():
            continue
        journals = store.pending_journals()
        edits = sum(len(codec.read_records(p.read_bytes())[0]) for p in journals)
        files = journals + list(store.numbered("snapshot").values())
        src = doc.get("source") or {}
        uid = str(src.get("study_instance_uid", ""))
        desc = " ".join(
            x for x in (str(src.get("modality", "")), f"study …{uid[-8:]}" if uid else "") if x
        )
        out.append(Recoverable(doc["series_key"], _mtime(files), edits, folder, desc))
    return sorted(out, key=lambda r: r.last_change, reverse=True)


def done_studies(root: Path | None = None) -> list[DoneStudy]:
    """Every series marked done, oldest decision first."""
    out = []
    for folder, doc in _stores(root):
        st = doc.get("status") or {}
        if st.get("state") != DONE or not doc.get("source"):
            continue
        try:
            source = LabelSource.from_dict(doc["source"])
        except (KeyError, TypeError, ValueError):
            continue
        segments, counts = {}, {}
        snap = doc.get("snapshot")
        path = folder / f"snapshot-{snap}.mvl"
        try:
            with path.open("rb") as fh:
                head, _ = codec.snapshot_header(fh.read(1 << 20))
            segments = {int(s["value"]): str(s["name"]) for s in head.get("segments", [])}
            counts = {int(v): int(n) for v, n in head.get("counts", {}).items()}
        except (OSError, codec.DamagedData, KeyError, TypeError, ValueError):
            pass  # loading the labels says what is wrong
        try:
            unsaved = bool(LabelStore(doc["series_key"], root).pending_journals())
        except MedviewError:
            continue
        out.append(
            DoneStudy(
                doc["series_key"],
                source,
                folder,
                segments,
                counts,
                str(st.get("by", "")),
                str(st.get("at", "")),
                unsaved,
            )
        )
    return sorted(out, key=lambda d: d.at)


def load_done_labels(study: DoneStudy, root: Path | None = None) -> np.ndarray:
    """The label map of a done study as a uint8 array on its volume's grid; MedviewError
    when it cannot be read (the sentence names the file)."""
    store = LabelStore(study.series_key, root)
    loaded = store.load()
    if loaded is None:
        raise MedviewError(
            str(study.label_folder),
            "holds no label map; open the series and label it again, or mark it draft",
        )
    array = loaded.label_map.array
    if array.shape != study.source.shape:
        raise MedviewError(
            str(study.label_folder),
            f"holds a label map of shape {array.shape}, not the series' {study.source.shape}",
        )
    return array

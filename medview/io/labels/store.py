"""LabelStore: one series' label map in the workspace, kept so that nothing painted is lost.

Folder labels/<safe_name(series_key)>/ of the data folder (io.saved) (docs/architecture.md):
  label.json         what the labels are of (LabelSource: UIDs, source files, shape, affine,
                     never a patient name or ID), status (draft / done, by, when), its
                     history (status changes, clean saves with voxel counts, discarded
                     edits: by whom, when; the last HISTORY_KEEP), and which snapshot is
                     current and which was the last clean save; written atomically
  snapshot-<n>.mvl   a whole label map + segment table (io.label_codec), written atomically
  journal-<n>.log    edits made after snapshot n began, one fsynced, checked record each

The numbers n come from one counter, so "journal k applies after snapshot n" is k >= n. A
snapshot is begun on the GUI thread (the next edits go to a fresh journal-n) and written on
a worker from the live array; once label.json names it, older journals and snapshots go,
except the clean one. A kill at any moment leaves label.json naming a complete snapshot and
the journals since, so `load` replays to the last fsynced edit. A normal close takes a final
snapshot and marks it clean; a series whose current state is not its clean save is what
`pending_recovery` offers, and `discard_unsaved` goes back to the clean save (what it drops
is moved to a discarded-<n> folder, never deleted). Damaged files are kept aside as
<name>.damaged-<n> with one sentence in `messages`; the series still opens."""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from medview.core.errors import MedviewError
from medview.core.labels import LabelMap, Segment
from medview.io import saved
from medview.io.labels import codec
from medview.io.labels.source import LabelSource
from medview.io.workspace import (
    StoreFileProblem,
    atomic_write_bytes,
    atomic_write_text,
    keep_aside,
    read_store_file,
    reader_name,
    safe_name,
)

FORMAT = "medview-labels"
VERSION = 1
DRAFT, DONE = "draft", "done"
HISTORY_KEEP = 500
_NUMBERED = re.compile(r"^(snapshot|journal)-(\d+)\.(mvl|log)$")


def labels_root(root: Path | None = None) -> Path:
    return root if root is not None else saved.labels_dir()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LabelStatus:
    state: str = DRAFT  # "draft" | "done" (ready for training)
    by: str = ""
    at: str = ""  # ISO 8601, UTC


@dataclass
class LoadedLabels:
    label_map: LabelMap
    source: LabelSource | None
    status: LabelStatus
    replayed: int = 0  # journal records applied on top of the snapshot
    messages: list[str] = field(default_factory=list)


class LabelStore:
    """The stored labels of one series. Journal appends and `begin_snapshot` belong to one
    thread (the GUI's); `write_snapshot` may run on another. Problems end up in `messages`
    (one sentence each) or as MedviewError from the calls that write."""

    def __init__(self, series_key: str, root: Path | None = None) -> None:
        self.series_key = series_key
        self.folder = labels_root(root) / safe_name(series_key)
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._meta: dict[str, Any] = {}
        self._journal: int | None = None  # index of the journal edits go to
        self._fd: int | None = None
        self._last_number = 0  # numbers handed out but maybe not on disk yet
        self._read_meta()

    @property
    def meta_path(self) -> Path:
        return self.folder / "label.json"

    # --- label.json ----------------------------------------------------------------------
    def _read_meta(self) -> None:
        try:
            doc = read_store_file(self.meta_path, FORMAT, VERSION, "labels")
            if doc is not None and doc.get("series_key") != self.series_key:
                raise StoreFileProblem("it holds the labels of another series", False)
            if doc is not None and doc.get("source") is not None:
                LabelSource.from_dict(doc["source"])  # refuses a malformed source
        except StoreFileProblem as problem:
            if problem.damaged:
                self._aside(self.meta_path, problem.reason, move=True)
            else:
                raise MedviewError(
                    str(self.meta_path),
                    f"cannot be used: {problem.reason}; "
                    "it is left as it is and the labels are not saved",
                ) from None
            doc = None
        except (KeyError, TypeError, ValueError) as err:
            self._aside(self.meta_path, f"its source is not valid ({err})", move=True)
            doc = None
        self._meta = doc or {"format": FORMAT, "version": VERSION, "series_key": self.series_key}

    def _write_meta(self, event: dict[str, Any] | None = None, **changes: Any) -> None:
        with self._lock:
            if event is not None:
                kept = list(self._meta.get("history") or [])[-(HISTORY_KEEP - 1) :]
                changes["history"] = [*kept, {"at": now_iso(), "by": reader_name(), **event}]
            self._meta.update(changes, updated_at=now_iso())
            atomic_write_text(
                self.meta_path, json.dumps(self._meta, indent=1, ensure_ascii=False) + "\n"
            )

    def _aside(self, path: Path, reason: str, move: bool) -> None:
        try:
            kept = keep_aside(path, move=move)
            self.messages.append(
                f"The label file {path.name} of this series is damaged "
                f"({reason}); it is kept as {kept.name}."
            )
        except OSError as err:
            self.messages.append(
                f"The label file {path} is damaged ({reason}) and could not "
                f"be kept aside ({err.strerror or err})."
            )

    @property
    def source(self) -> LabelSource | None:
        src = self._meta.get("source")
        return LabelSource.from_dict(src) if src else None

    @property
    def history(self) -> list[dict[str, Any]]:
        """What happened to these labels, oldest first: {"at", "by", "event", ...}."""
        return [e for e in self._meta.get("history") or [] if isinstance(e, dict)]

    @property
    def status(self) -> LabelStatus:
        st = self._meta.get("status") or {}
        return LabelStatus(
            str(st.get("state", DRAFT)), str(st.get("by", "")), str(st.get("at", ""))
        )

    def set_status(self, state: str, by: str) -> LabelStatus:
        """Mark the labels draft or done (ready for training), by whom, now."""
        if state not in (DRAFT, DONE):
            raise ValueError(f"unknown label status {state!r}")
        status = LabelStatus(state, by, now_iso())
        self._write_meta({"event": f"marked {state}", "by": by}, status=asdict(status))
        return status

    # --- files ---------------------------------------------------------------------------
    def numbered(self, kind: str) -> dict[int, Path]:
        out = {}
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                m = _NUMBERED.match(p.name)
                if m and m.group(1) == kind:
                    out[int(m.group(2))] = p
        return dict(sorted(out.items()))

    def _next_number(self) -> int:
        used = [
            *self.numbered("snapshot"),
            *self.numbered("journal"),
            self._last_number,
            self._meta.get("snapshot") or 0,
            self._meta.get("clean_snapshot") or 0,
        ]
        self._last_number = 1 + max(used)
        return self._last_number

    def snapshot_path(self, n: int) -> Path:
        return self.folder / f"snapshot-{n}.mvl"

    def journal_path(self, n: int) -> Path:
        return self.folder / f"journal-{n}.log"

    def has_unsaved(self) -> bool:
        """Whether the current state differs from the last clean save: what a crash leaves."""
        return self._meta.get("snapshot") != self._meta.get("clean_snapshot") or bool(
            self.pending_journals()
        )

    def pending_journals(self) -> list[Path]:
        """Journals holding edits made after the current snapshot began."""
        snap = self._meta.get("snapshot") or 0
        out = []
        for k, p in self.numbered("journal").items():
            try:
                if k >= snap and p.stat().st_size > 0:
                    out.append(p)
            except FileNotFoundError:
                pass  # a snapshot just made it obsolete
        return out

    # --- the session: journal ------------------------------------------------------------
    def start(self, source: LabelSource) -> None:
        """Begin a session of edits on this series: records where the labels come from and
        sends the next edits to a new journal (never appended after a torn record)."""
        described = json.loads(json.dumps(source.to_dict()))  # tuples as JSON has them
        if not self.meta_path.exists() or self._meta.get("source") != described:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write_meta(source=described)
        for temp in self.folder.glob(".*.tmp"):  # a write a kill interrupted: never renamed,
            temp.unlink(missing_ok=True)  # so never the only copy of anything
        self._switch_journal(self._next_number())

    def _switch_journal(self, n: int) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._journal = None, n

    def append_voxels(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Journal one edit (voxels at flat `indices` now hold `values`): fsynced before it
        returns. Raises MedviewError when the disk refuses."""
        if len(indices):
            self._append(codec.voxel_record(indices, values))

    def append_segments(self, segments: dict[int, Segment]) -> None:
        self._append(codec.segments_record([s.to_dict() for s in segments.values()]))

    def _append(self, record: bytes) -> None:
        if self._journal is None:
            raise RuntimeError("LabelStore.start() must come before edits are journaled")
        path = self.journal_path(self._journal)
        try:
            if self._fd is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                _fsync_folder(self.folder)
            os.write(self._fd, record)
            os.fsync(self._fd)
        except OSError as err:
            why = err.strerror or err
            raise MedviewError(
                str(path),
                f"the last edit could not be saved ({why}); free "
                "some space or check the folder's permissions",
            ) from None

    def close_journal(self) -> None:
        self._switch_journal(self._journal or 0)
        self._journal = None

    # --- snapshots -----------------------------------------------------------------------
    def begin_snapshot(self) -> int:
        """GUI thread: number a new snapshot; edits from now on go to its journal."""
        n = self._next_number()
        self._switch_journal(n)
        return n

    def write_snapshot(
        self,
        n: int,
        array: np.ndarray,
        segments: dict[int, Segment],
        clean: bool = False,
        on_chunk: Any = None,
    ) -> dict[int, int]:
        """Any thread: write snapshot `n` of `array` (may be the live array: see
        io.label_codec) and make it current (and the clean save with `clean`); drops what
        it makes obsolete. Returns the voxel counts per value. MedviewError on failure."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "series_key": self.series_key,
            "saved_at": now_iso(),
            "segments": [s.to_dict() for s in segments.values()],
        }
        snap = codec.encode_snapshot(array, header, on_chunk)
        path = self.snapshot_path(n)
        try:
            atomic_write_bytes(path, snap.data)
            with self._lock:  # a later snapshot (a save at close) may have overtaken this one
                stale = (self._meta.get("snapshot") or 0) > n
            if stale:
                path.unlink(missing_ok=True)
                return snap.counts
            if clean:
                voxels = {str(v): c for v, c in sorted(snap.counts.items()) if v}
                self._write_meta({"event": "saved", "voxels": voxels}, snapshot=n, clean_snapshot=n)
            else:
                self._write_meta(snapshot=n)
        except OSError as err:
            why = err.strerror or err
            raise MedviewError(
                str(path),
                f"the labels could not be saved ({why}); free some "
                "space or check the folder's permissions",
            ) from None
        keep = {n, self._meta.get("clean_snapshot")}
        for k, p in self.numbered("snapshot").items():
            if k < n and k not in keep:
                p.unlink(missing_ok=True)
        for k, p in self.numbered("journal").items():
            if k < n:
                p.unlink(missing_ok=True)
        return snap.counts

    def save(self, label_map: LabelMap, clean: bool = False) -> dict[int, int]:
        """Snapshot now on this thread (a normal close passes clean=True)."""
        counts = self.write_snapshot(
            self.begin_snapshot(), label_map.array, label_map.segments, clean
        )
        if clean:  # the journal begun above holds nothing: no file is left behind
            self.close_journal()
        return counts

    def discard_unsaved(self) -> Path | None:
        """Go back to the last clean save; what is set aside goes to discarded-<n>/."""
        clean = self._meta.get("clean_snapshot")
        moving = [p for k, p in self.numbered("snapshot").items() if k != clean]
        moving += [
            p
            for k, p in self.numbered("journal").items()
            if p.stat().st_size > 0 or k >= (clean or 0)
        ]
        self.close_journal()
        if not moving:
            self._write_meta(snapshot=clean)
            return None
        n = 1
        while (dest := self.folder / f"discarded-{n}").exists():
            n += 1
        dest.mkdir()
        for p in moving:
            p.rename(dest / p.name)
        self._write_meta({"event": "discarded unsaved edits", "kept_in": dest.name}, snapshot=clean)
        return dest

    # --- loading -------------------------------------------------------------------------
    def load(self) -> LoadedLabels | None:
        """The labels as last saved: the current snapshot with every journal since replayed.
        None when nothing was ever saved for this series."""
        source = self.source
        base, n = self._base()
        journals = {k: p for k, p in self.numbered("journal").items() if k >= n}
        if base is None and not journals:
            return None
        if base is None:
            if source is None:
                self.messages.append(
                    f"The edits kept in {self.folder} cannot be replayed: "
                    "the series' grid is not known; they are left there."
                )
                return None
            base = LabelMap.empty(source.shape, self.series_key)
        loaded = LoadedLabels(base, source, self.status, messages=self.messages)
        for path in journals.values():
            self._replay(path, loaded)
        return loaded

    def _base(self) -> tuple[LabelMap | None, int]:
        """The newest usable snapshot (current first, then the clean one, then any other)
        and its number; (None, 0) when there is none."""
        snaps = self.numbered("snapshot")
        order = [
            self._meta.get("snapshot"),
            self._meta.get("clean_snapshot"),
            *sorted(snaps, reverse=True),
        ]
        first = True
        for k in dict.fromkeys(o for o in order if o in snaps):
            path = snaps[k]
            try:
                head, array = codec.decode_snapshot(path.read_bytes())
                segments = {}
                for d in head.get("segments", []):
                    seg = Segment.from_dict(d, path.name)
                    segments[seg.value] = seg
            except (codec.DamagedData, MedviewError, OSError) as err:
                self._aside(path, str(err), move=True)
                first = False
                continue
            if not first:
                self.messages.append(
                    f"The labels were restored from {path.name}; edits made "
                    "after it may be missing."
                )
            return LabelMap(array, segments, self.series_key), k
        return None, 0

    def _replay(self, path: Path, loaded: LoadedLabels) -> None:
        flat = loaded.label_map.array.reshape(-1)
        try:
            records, tail = codec.read_records(path.read_bytes())
            for kind, body in codec.iter_voxel_records(records):
                if kind == codec.VOXELS:
                    idx, values = body
                    if idx.size and (idx[0] < 0 or idx[-1] >= flat.size):
                        raise codec.DamagedData("an edit lies outside the label map")
                    flat[idx] = values
                else:
                    loaded.label_map.segments = {
                        s.value: s for s in (Segment.from_dict(d, path.name) for d in body)
                    }
                loaded.replayed += 1
        except (codec.DamagedData, MedviewError, OSError) as err:
            self._aside(path, str(err), move=False)
            return
        if tail.kind == "torn":
            loaded.messages.append(
                f"The last edit in {path.name} was cut off when MedView stopped; it is left out."
            )
        elif tail.kind == "damaged":
            self._aside(
                path,
                f"a record at byte {tail.offset} fails its check; the edits after it are left out",
                move=False,
            )


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder
    finally:
        os.close(fd)

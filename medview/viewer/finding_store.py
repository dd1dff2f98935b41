"""FindingStore: the reader's accept / reject decisions on AI findings, kept with the series.

The annotation and training issues build on these decisions (which model output a person
confirmed, which they threw out), so each one is kept with everything needed to find the
finding again without the model: the finding as it was decided (Finding.to_dict: id, label,
centroid in LPS and voxels, bounding box, slice range, measurements, model name and
version, threshold, decision), plus `model` (name:version), `decided_at` (ISO 8601, UTC)
and `by` (the operating-system user).

One document per series, rewritten whole on every decision: on disk findings/<series>.json
in the data folder (io.series_files, handed to the store as `file`; without one the
decisions are kept in memory only). Decisions of several models live side by side in it;
each model's findings only ever see their own. A damaged file is moved aside as
<name>.damaged-<n> (copied aside when only some entries are bad, so the good ones still
count) and one sentence says so; a file from a newer MedView, or one holding another series
(two keys that make the same file name), is left alone and nothing is saved over it.

Finding ids are renumbered whenever the threshold moves, so a decision is matched to a
finding by place, not id: same model and label, each one's centroid inside the other's
bounding box (`same_finding`) — the same lesion, grown or shrunk by the threshold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from medview.core.errors import MedviewError, StoreFileProblem
from medview.core.findings import Finding
from medview.viewer.store_file import StoreFile
from medview.viewer.store_problems import StoreProblems

FORMAT = "medview-ai-findings"
VERSION = 1


def _inside(point: Iterable[float], box: tuple[tuple[int, ...], tuple[int, ...]]) -> bool:
    return all(lo - 0.5 <= p <= hi + 0.5 for p, lo, hi in zip(point, *box, strict=True))


def same_finding(a: Finding, b: Finding) -> bool:
    """Whether two findings are the same lesion, possibly at different thresholds."""
    return (
        a.model_ref == b.model_ref
        and a.label_value == b.label_value
        and _inside(a.centroid_index, b.bbox_index)
        and _inside(b.centroid_index, a.bbox_index)
    )


@dataclass(frozen=True)
class Decision:
    finding: Finding  # as it was when decided; finding.decision is the decision
    decided_at: str
    by: str

    def to_dict(self) -> dict:
        return {
            **self.finding.to_dict(),
            "model": self.finding.model_ref,
            "decided_at": self.decided_at,
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> Decision:
        finding = Finding.from_dict(data, where)  # refuses a malformed entry in one sentence
        if finding.decision == "pending":
            raise ValueError("a decision that decides nothing")
        extra = data if isinstance(data, dict) else {}
        return cls(finding, str(extra.get("decided_at", "")), str(extra.get("by", "")))


class FindingStore(StoreProblems):
    FILE_NOUN = "findings"
    NOT_SAVED = "decisions made now are not saved"
    WITHOUT = "earlier decisions are not shown"

    """Decisions of one series. `message` is the last problem, one sentence for the reader
    ("" when none); the store keeps working in memory whatever happened to the file."""

    def __init__(self, series_key: str, file: StoreFile | None = None, by: str = "") -> None:
        """`by`: who decides (the operating-system user, for the record)."""
        self.series_key = series_key
        self.by = by
        self.decisions: list[Decision] = []  # oldest first: a later one overrides
        self.message = ""
        self.file = file if series_key else None
        self._writable = self.file is not None
        if self.file is not None:
            self.decisions = self._read(self.file)

    # -- queries
    def decision_for(self, finding: Finding) -> Decision | None:
        """The latest decision on this finding (at any threshold), or None."""
        return next((d for d in reversed(self.decisions) if same_finding(d.finding, finding)), None)

    def apply(self, findings: Iterable[Finding]) -> list[Finding]:
        """The findings with the decisions taken on them ("pending" where none)."""
        out = []
        for f in findings:
            d = self.decision_for(f)
            out.append(f.with_decision(d.finding.decision if d else "pending"))
        return out

    # -- changes
    def decide(self, finding: Finding, decision: str) -> Finding:
        """Accept, reject, or ("pending") take back the decision on `finding`; saved at
        once. Returns the finding with its new decision."""
        decided = finding.with_decision(decision)  # refuses an unknown decision
        self.decisions = [d for d in self.decisions if not same_finding(d.finding, finding)]
        if decision != "pending":
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.decisions.append(Decision(decided, now, self.by))
        self.save()
        return decided

    def save(self) -> None:
        if self.file is None or not self._writable:
            return
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "series_key": self.series_key,
            "decisions": [d.to_dict() for d in self.decisions],
        }
        try:
            self.file.write(doc)
        except OSError as err:
            self.message = (
                f"Decisions on AI findings could not be saved to {self.file.where} "
                f"({err.strerror or err}); free some space or check the folder's "
                f"permissions — they are kept until MedView closes."
            )

    # -- reading
    def _read(self, file: StoreFile) -> list[Decision]:
        try:
            doc = file.read(FORMAT, VERSION, "findings")
        except StoreFileProblem as problem:
            if problem.damaged:
                return self._damaged(file, problem.reason)
            return self._leave(f"The decisions file {file.where} is not used: {problem.reason}")
        if doc is None:
            return []
        if doc.get("series_key") != self.series_key:
            return self._leave(f"{file.where} holds the decisions of another series")
        entries = doc.get("decisions")
        if not isinstance(entries, list):
            return self._damaged(file, "it has no list of decisions")
        good, problems = [], []
        for entry in entries:
            try:
                good.append(Decision.from_dict(entry, file.name))
            except (MedviewError, ValueError) as err:
                problems.append(str(err))
        return self._partly_read(file, good, problems, len(entries), "decisions")

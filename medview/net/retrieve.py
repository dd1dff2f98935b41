"""A retrieval as a job: a study (or one series) from a node into the received folder, by
C-GET, C-MOVE or WADO-RS (whichever the node is set to; the reader need not know), with
progress by instance, cancel, and resume: a series partly here fetches only the instances
missing. Each stored file is emitted as it arrives, so the first slices can be shown while
the rest comes; a full disk stops with one sentence and keeps what arrived."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medview.core.jobs import CancelToken, JobCancelled, JobContext, report
from medview.net import dimse, web
from medview.net.errors import DiskFullError, NetworkError
from medview.net.nodes import DimseNode, Node
from medview.net.scp import StorageSCP
from medview.net.storage import store_instance
from medview.net.studydb import StudyDB


@dataclass(frozen=True)
class Retrieved:
    study_uid: str
    fetched: int  # instances that came over the network in this run
    already_here: int  # instances a resumed retrieval did not fetch again
    folder: Path


def _series(node: Node, study_uid: str, secret: str | None) -> list[str]:
    if isinstance(node, DimseNode):
        rows = dimse.find_series(node, study_uid)
    else:
        rows = web.find_series(node, study_uid, secret)
    return [r.series_uid for r in rows]


def _instances(node: Node, study_uid: str, series_uid: str, secret: str | None) -> list[str]:
    if isinstance(node, DimseNode):
        return dimse.find_instances(node, study_uid, series_uid)
    return web.find_instances(node, study_uid, series_uid, secret)


class _Progress:
    """Counts arrivals across series and threads; cancels the transfer on a full disk."""

    def __init__(
        self, ctx: JobContext, total: int, here: int, db: StudyDB, source: str, root: Path
    ) -> None:
        self.ctx, self.total, self.done, self.fetched = ctx, total, here, 0
        self.db, self.source, self.root = db, source, root
        self.stop = CancelToken()
        self.disk_full: DiskFullError | None = None

    def sink(self, study: str, series: str, sop: str, encoded: bytes) -> None:
        try:
            path = store_instance(self.root, study, series, sop, encoded)
        except DiskFullError as err:
            self.disk_full = err
            self.stop.cancel()
            raise
        self.arrived(path)

    def told(self, count: int) -> None:
        """The node said how many instances this transfer brings (DIMSE pending status)."""
        if not self.total:  # only a whole-study transfer leaves the total to the node
            self.total = self.done - self.fetched + count

    def arrived(self, path: Path) -> None:
        self.db.add_file(path, self.source)
        self.fetched += 1
        self.done += 1
        if self.total:
            report(
                self.ctx.progress,
                min(1.0, self.done / self.total),
                f"{self.done} of {self.total} instances",
            )
        else:
            report(self.ctx.progress, -1, f"{self.done} instances")
        self.ctx.emit(path)
        if self.ctx.cancel.cancelled:
            self.stop.cancel()


def retrieve(
    node: Node,
    study_uid: str,
    ctx: JobContext,
    *,
    series_uid: str | None = None,
    db: StudyDB | None = None,
    root: Path | None = None,
    secret: str | None = None,
) -> Retrieved:
    """Fetch what is missing of the study (or series) into `root` (the received folder)."""
    from medview.net.storage import instance_path, received_dir

    root = (root or received_dir()).resolve()
    db = db or StudyDB()
    instance_path(root, study_uid, "0", "0")  # the study UID must be a UID
    plan, total, here = _plan(node, study_uid, series_uid, db, root, secret)
    tracker = _Progress(ctx, total, here, db, node.name, root)
    if total:
        report(ctx.progress, here / total, f"{here} of {total} instances")
    try:
        for s, missing in plan:
            ctx.cancel.raise_if_cancelled()
            _fetch(node, study_uid, s, missing, tracker, secret)
    except JobCancelled:
        if tracker.disk_full is not None:
            raise tracker.disk_full from None
        raise
    if tracker.disk_full is not None:
        raise tracker.disk_full
    return Retrieved(study_uid, tracker.fetched, here, root / study_uid)


def _plan(
    node: Node, study_uid: str, series_uid: str | None, db: StudyDB, root: Path, secret: str | None
) -> tuple[list[tuple[str | None, list[str] | None]], int, int]:
    """What to fetch: [(series or None for the whole study, instances or None for all)],
    the instances in all (0 when the node will say), and those already here. Nothing of the
    study here: one retrieval of it all, without listing instances first (the first slice
    comes sooner); otherwise each series' instances are listed and only the missing asked
    for. Only files in `root` count (`pacs get --out` elsewhere fetches)."""
    here_study = {
        sop for sop, path in db.instances_in_study(study_uid).items() if path.is_relative_to(root)
    }
    if not here_study:
        if isinstance(node, DimseNode):  # the C-GET / C-MOVE status tells the total
            return [(series_uid, None)], 0, 0
        rows = [
            r
            for r in web.find_series(node, study_uid, secret)
            if series_uid in (None, r.series_uid)
        ]
        return [(r.series_uid, None) for r in rows], sum(r.instances or 0 for r in rows), 0
    plan: list[tuple[str | None, list[str] | None]] = []
    total = here = 0
    for s in [series_uid] if series_uid else _series(node, study_uid, secret):
        remote = _instances(node, study_uid, s, secret)
        missing = [u for u in remote if u not in here_study]
        total += len(remote)
        here += len(remote) - len(missing)
        if missing:
            plan.append((s, None if len(missing) == len(remote) else missing))
    return plan, total, here


def _fetch(
    node: Node,
    study_uid: str,
    series_uid: str | None,
    sops: list[str] | None,
    tracker: _Progress,
    secret: str | None,
) -> None:
    if not isinstance(node, DimseNode):
        assert series_uid is not None  # WADO-RS plans are by series
        web.get(
            node,
            study_uid,
            tracker.sink,
            series_uid=series_uid,
            sop_uids=sops,
            cancel=tracker.stop,
            secret=secret,
        )
        return
    if node.retrieve == "get":
        dimse.get(
            node,
            study_uid,
            tracker.sink,
            series_uid=series_uid,
            sop_uids=sops,
            cancel=tracker.stop,
            on_total=tracker.told,
        )
        return
    with StorageSCP(
        tracker.root,
        ae_title=node.our_ae,
        port=node.our_port,
        allowed_aes=[node.called_ae],
        on_stored=tracker.arrived,
    ) as scp:
        dimse.move(
            node,
            study_uid,
            series_uid=series_uid,
            sop_uids=sops,
            cancel=tracker.stop,
            on_total=tracker.told,
        )
    for problem in scp.received.problems:
        if isinstance(problem, DiskFullError):
            raise problem
    if scp.received.problems:
        raise NetworkError(
            node.name,
            f"sent {scp.received.refused} instances MedView "
            f"refused (the first: {scp.received.problems[0]})",
        )

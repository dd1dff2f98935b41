"""PACS work as jobs the UI runs on its thread pool (ui.workers): test a node, search the
local database and the nodes as one list, retrieve a study, send files. Each is a generator
over net; a node that fails a search becomes a note beside the others' results, not a
failed search; send the
viewer's results (labels, the AI's SEG, the findings report) back."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medview.core.errors import InvalidInputError, MedviewError
from medview.core.findings import Finding
from medview.core.jobs import JobContext, Progress
from medview.core.labels import LabelMap
from medview.core.series import SeriesInfo
from medview.net.nodes import Node
from medview.net.query import StudyQuery, StudyRow
from medview.net.retrieve import Retrieved


@dataclass(frozen=True)
class SearchResult:
    rows: list[StudyRow]
    notes: list[str]  # one sentence per source that could not answer


@dataclass(frozen=True)
class RowsSoFar:
    """Emitted while a DIMSE node is still answering: every row found so far (the local
    ones first), so the list is on screen before the last of 1,000 studies arrives."""

    rows: list[StudyRow]


# how often a search shows the rows found so far, after the first: each showing fills the
# table again on the GUI thread, which competes with the search for the interpreter
SHOW_EVERY_S = 0.5


def echo_job(
    node: Node, ctx: JobContext, secret: str | None = None
) -> Generator[Progress, None, float]:
    from medview.net import dimse, web

    yield Progress(-1, f"testing {node.name}")
    return dimse.echo(node) if node.kind == "dimse" else web.echo(node, secret)


def search_job(
    nodes: Sequence[Node], query: StudyQuery, ctx: JobContext, include_local: bool = True
) -> Generator[Progress, None, SearchResult]:
    """The local study database's matches first, then each node's, in one list."""
    from medview.net import web
    from medview.net.studydb import StudyDB

    rows: list[StudyRow] = []
    notes: list[str] = []
    if include_local:
        yield Progress(0.0, "searching the local studies")
        db = StudyDB()
        if db.notice:
            notes.append(db.notice)
        rows += db.studies(query)
        db.close()
    for k, node in enumerate(nodes):
        ctx.cancel.raise_if_cancelled()
        yield Progress(k / max(1, len(nodes)), f"searching {node.name}")
        try:
            if node.kind == "dimse":
                rows += _dimse_rows(node, query, rows, ctx)
            else:
                rows += web.find_studies(node, query)
        except MedviewError as err:
            notes.append(str(err))
    return SearchResult(rows, notes)


def _dimse_rows(
    node: Node, query: StudyQuery, before: list[StudyRow], ctx: JobContext
) -> list[StudyRow]:
    """A DIMSE node's rows, shown with `before` as they arrive (RowsSoFar): at the first,
    then every SHOW_EVERY_S. A node that fails part-way adds no row, as one that fails at
    once."""
    from contextlib import closing

    from medview.net import dimse

    found: list[StudyRow] = []
    shown = None
    with closing(dimse.iter_studies(node, query)) as answers:
        for row in answers:
            found.append(row)
            if shown is None or time.monotonic() - shown >= SHOW_EVERY_S:
                ctx.emit(RowsSoFar(before + found))
                shown = time.monotonic()
            ctx.cancel.raise_if_cancelled()
    return found


def retrieve_job(
    node: Node, study_uid: str, ctx: JobContext, series_uid: str | None = None
) -> Generator[Progress, None, Retrieved]:
    """Each stored instance is emitted (its path) so the browser can show the study as it
    arrives; progress is by instance."""
    from medview.net.retrieve import retrieve

    yield Progress(-1, f"retrieving from {node.name}")
    return retrieve(node, study_uid, ctx, series_uid=series_uid)


def send_job(node: Node, paths: Sequence[Path], ctx: JobContext) -> Generator[Progress, None, int]:
    from medview.net import dimse, web

    yield Progress(-1, f"sending {len(paths)} files to {node.name}")
    if node.kind == "dimse":
        return dimse.send(node, list(paths), cancel=ctx.cancel)
    return web.send(node, list(paths), cancel=ctx.cancel)


@dataclass(frozen=True)
class AIOutput:
    """What the AI showed on the open series, copied on the GUI thread: the findings mask
    (the model's label values), its model card and the findings with the reader's
    decisions."""

    mask: Any  # uint8 ndarray (slice, row, col)
    card: Any  # ai.models.cards.ModelCard
    findings: list[Finding]


@dataclass(frozen=True)
class SentResults:
    sent: int
    what: list[str]  # "your labels (marked done)", "the AI's SEG", "the findings report"
    notes: list[str]


def send_results_job(
    node: Node,
    series: SeriesInfo,
    labels: LabelMap | None,
    done: bool,
    ai: AIOutput | None,
    ctx: JobContext,
) -> Generator[Progress, None, SentResults]:
    """Send the viewer's results on `series` back to `node`: the reader's labels as a DICOM
    SEG (marked done when `done`), the AI's findings mask as its SEG, and the TID 1500 SR of
    the findings referencing that SEG. The files are written to a temporary folder, never
    beside the images, and removed once sent."""
    import tempfile

    from medview.io.dicom.seg import write_seg
    from medview.io.dicom.sr import write_measurement_report
    from medview.io.labels.seg import export_seg

    sources = [f.source for f in series.slices if f is not None]
    if any(s.member is not None for s in sources):
        raise InvalidInputError(
            sources[0].path,
            "holds the images in an archive; extract them to send results to a PACS",
        )
    if labels is None and ai is None:
        raise InvalidInputError(
            None, "there is nothing to send: no labels and no AI result on this series"
        )
    what: list[str] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="medview-send-") as tmp:
        files: list[Path] = []
        if labels is not None:
            yield Progress(-1, "writing your labels as DICOM SEG")
            notes += export_seg(labels, series, Path(tmp) / "labels.dcm", done=done)
            files.append(Path(tmp) / "labels.dcm")
            what.append("your labels (marked done)" if done else "your labels (draft)")
        if ai is not None:
            ctx.cancel.raise_if_cancelled()
            yield Progress(-1, "writing the AI's SEG")
            seg = Path(tmp) / "ai-seg.dcm"
            notes += write_seg(ai.mask, series, ai.card, seg)
            files.append(seg)
            what.append("the AI's SEG")
            if ai.findings:
                yield Progress(-1, "writing the findings report (SR)")
                files.append(
                    write_measurement_report(
                        ai.findings, [Path(s.path) for s in sources], seg, Path(tmp) / "sr.dcm"
                    )
                )
                what.append("the findings report (SR)")
        ctx.cancel.raise_if_cancelled()
        sent = yield from send_job(node, files, ctx)
    return SentResults(sent, what, notes)

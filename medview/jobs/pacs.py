"""PACS work as jobs the UI runs on its thread pool (ui.workers): test a node, search the
local database and the nodes as one list, retrieve a study, send files. Each is a generator
over net; a node that fails a search becomes a note beside the others' results, not a
failed search."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from medview.core.errors import MedviewError
from medview.core.jobs import JobContext, Progress
from medview.net.nodes import Node
from medview.net.query import StudyQuery, StudyRow
from medview.net.retrieve import Retrieved


@dataclass(frozen=True)
class SearchResult:
    rows: list[StudyRow]
    notes: list[str]  # one sentence per source that could not answer


def echo_job(node: Node, ctx: JobContext, secret: str | None = None
             ) -> Generator[Progress, None, float]:
    from medview.net import dimse, web

    yield Progress(-1, f"testing {node.name}")
    return dimse.echo(node) if node.kind == "dimse" else web.echo(node, secret)


def search_job(nodes: Sequence[Node], query: StudyQuery, ctx: JobContext,
               include_local: bool = True) -> Generator[Progress, None, SearchResult]:
    """The local study database's matches first, then each node's, in one list."""
    from medview.net import dimse, web
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
            rows += dimse.find_studies(node, query) if node.kind == "dimse" \
                else web.find_studies(node, query)
        except MedviewError as err:
            notes.append(str(err))
    return SearchResult(rows, notes)


def retrieve_job(node: Node, study_uid: str, ctx: JobContext, series_uid: str | None = None
                 ) -> Generator[Progress, None, Retrieved]:
    """Each stored instance is emitted (its path) so the browser can show the study as it
    arrives; progress is by instance."""
    from medview.net.retrieve import retrieve

    yield Progress(-1, f"retrieving from {node.name}")
    return retrieve(node, study_uid, ctx, series_uid=series_uid)


def send_job(node: Node, paths: Sequence[Path], ctx: JobContext
             ) -> Generator[Progress, None, int]:
    from medview.net import dimse, web

    yield Progress(-1, f"sending {len(paths)} files to {node.name}")
    if node.kind == "dimse":
        return dimse.send(node, list(paths), cancel=ctx.cancel)
    return web.send(node, list(paths), cancel=ctx.cancel)

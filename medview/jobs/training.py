"""Listing what a fine-tune would learn from, off the GUI thread: the labelled studies of a
folder or of the workspace, with voxel counts and volumes per label (the workspace keeps
them; a folder's label maps are read). Training itself runs in a child process
(`medview train`), not here."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from medview.core.jobs import JobContext, Progress


@dataclass(frozen=True)
class StudyRow:
    study: object  # medview.ai.training.data.TrainStudy
    counts: dict[int, int]  # voxels per label value of the study's own label map
    voxel_ml: float | None = None  # one voxel's volume (None: the grid is unknown)


def training_studies_job(data: str, ctx: JobContext) -> Generator[Progress, None, list]:
    from medview.ai.training.data import find_studies, label_counts

    if data.startswith("pacs://"):  # studies on the PACS labelled done, fetched first
        from medview.net.training_source import fetch_training_data

        yield Progress(-1, "fetching the studies labelled done from the PACS")
        data = str(fetch_training_data(data, ctx))
    yield Progress(0.0, "looking for labelled studies")
    studies = find_studies(data)
    rows = []
    for i, st in enumerate(studies):
        ctx.cancel.raise_if_cancelled()
        yield Progress(i / len(studies), f"counting labels of {st.name}")
        rows.append(StudyRow(st, *label_counts(st)))
    return rows

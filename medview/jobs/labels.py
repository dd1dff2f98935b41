"""Label jobs: writing an autosave snapshot off the GUI thread (io.label_autosave)."""

from __future__ import annotations

from collections.abc import Generator

from medview.core.jobs import JobContext, Progress, report
from medview.io.labels.autosave import SnapshotTask


def snapshot_job(task: SnapshotTask, ctx: JobContext) -> Generator[Progress, None, dict]:
    """Write one autosave snapshot; returns voxel counts per value. Cancelling stops it
    before anything is written (the journal still holds every edit)."""
    yield Progress(0.0, "saving labels")

    def on_chunk(fraction: float) -> None:
        ctx.cancel.raise_if_cancelled()
        report(ctx.progress, fraction, "saving labels")

    return task.run(on_chunk)

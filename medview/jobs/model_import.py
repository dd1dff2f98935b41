"""Importing a model from the GUI: what a path holds and what it would run (`preview_job`,
read without running anything), then the import itself (`import_job`), both as jobs so the
window never waits on unpacking, weights reading or nnU-Net's network building.

Paths the dialog gives: a MONAI bundle zip, a bundle's configs/metadata.json (the bundle is
two folders up), an nnU-Net model's dataset.json or plans.json (the model is its folder),
or those folders themselves."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

from medview.ai.models.registry import ModelEntry
from medview.core.errors import UnsupportedInputError
from medview.core.jobs import JobContext, Progress


@dataclass(frozen=True)
class ImportPreview:
    path: Path  # the bundle (folder or zip) or nnU-Net folder to import
    kind: str  # "monai-bundle" or "nnunet"
    lines: list[str] = field(default_factory=list)  # what it would run
    needs_code: list[str] = field(default_factory=list)  # why consent is needed
    unsupported: list[str] = field(default_factory=list)  # why MedView cannot run it


def model_path(chosen: str | Path) -> tuple[Path, str]:
    """(what to import, its kind) for a file or folder the reader chose."""
    path = Path(chosen)
    if path.name == "metadata.json" and path.parent.name == "configs":
        path = path.parent.parent
    elif path.name in ("dataset.json", "plans.json"):
        path = path.parent
    if path.is_dir() and (path / "dataset.json").is_file() and (path / "plans.json").is_file():
        return path, "nnunet"
    if path.suffix.lower() == ".zip" or (path / "configs" / "metadata.json").is_file():
        return path, "monai-bundle"
    raise UnsupportedInputError(
        str(chosen),
        "is not a MONAI bundle (a .zip, or the "
        "configs/metadata.json of a bundle folder) or an "
        "nnU-Net v2 model (its dataset.json)",
    )


def preview_job(chosen: str | Path, ctx: JobContext) -> Generator[Progress, None, ImportPreview]:
    yield Progress(-1, "reading the model")
    path, kind = model_path(chosen)
    if kind == "nnunet":
        from medview.ai.runtime.nnunet_models import _require_nnunet

        _require_nnunet(str(path))
        return ImportPreview(
            path,
            kind,
            [
                "nnU-Net v2 model: runs with nnU-Net's own "
                "predictor; weights read without running code"
            ],
        )
    from medview.ai.runtime.bundle_import import opened_bundle

    with opened_bundle(path) as plan:
        return ImportPreview(
            path, kind, list(plan.description), list(plan.needs_code), list(plan.unsupported)
        )


def import_job(
    path: str | Path, ctx: JobContext, allow_code: bool = False
) -> Generator[Progress, None, ModelEntry]:
    """Import what preview_job found at `path`; `allow_code` is the reader's consent."""
    yield Progress(-1, "importing the model")
    path, kind = model_path(path)
    if kind == "nnunet":
        from medview.ai.runtime.nnunet_models import import_nnunet

        return import_nnunet(path)
    from medview.ai.runtime.bundle_import import import_bundle

    return import_bundle(path, allow_code=allow_code)

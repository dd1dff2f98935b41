"""TotalSegmentator's tasks imported as nnU-Net v2 models, from the weights TotalSegmentator
has already put on this machine: `medview models import totalsegmentator[:TASK[:MODE]]`
(TASK "total" by default; MODE "fast" or "fastest" for tasks that have them).

TotalSegmentator (pip package `TotalSegmentator`) keeps each task's nnU-Net results folder
under its weights directory (`~/.totalsegmentator/nnunet/results`, or TOTALSEG_HOME_DIR, or
TOTALSEG_WEIGHTS_PATH). Its own tables say which folder a task uses and what its labels are
called (map_tasks_config, registry), so MedView reads them instead of keeping a copy, and
imports that folder through runtime.nnunet_models with TotalSegmentator's label names.
Nothing is downloaded: without the package or the weights, one sentence says what to
install or where the weights go.

What MedView cannot run the way TotalSegmentator does is refused: tasks made of several
nnU-Net models run one after another ("total" at full resolution: five), and tasks that run
on a crop found by another model first (liver_vessels on the liver)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medview.ai.models import registry
from medview.core.errors import InvalidInputError, UnsupportedInputError

PREFIX = "totalsegmentator"
INSTALL = (
    "install it beside MedView's nnU-Net extra: pip install 'medview[nnunet,totalsegmentator]' "
    "(with the CPU torch pin, keep torch with -c)"
)
_CROPPING = ("crop", "crop_model", "cascade")


def is_reference(text: str) -> bool:
    """`totalsegmentator` or `totalsegmentator:TASK[:MODE]`, when no file has that name."""
    return text.split(":", 1)[0].lower() == PREFIX and not Path(text).exists()


def _tables(where: str) -> Any:
    """TotalSegmentator's modules MedView reads (config, map_tasks_config, registry)."""
    try:
        from totalsegmentator import config, map_tasks_config
        from totalsegmentator import registry as tasks
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        raise UnsupportedInputError(
            where,
            "names a TotalSegmentator model, but TotalSegmentator is not installed; " + INSTALL
            if missing.split(".")[0] == PREFIX
            else f"names a TotalSegmentator model, but TotalSegmentator does not import "
            f"(no module {missing}); " + INSTALL,
        ) from exc
    return config, map_tasks_config, tasks


def task_folder(text: str) -> tuple[Path, dict[str, Any]]:
    """The nnU-Net results folder TotalSegmentator keeps for the task `text` names, and
    what the card records of it."""
    config, maps, tasks = _tables(text)
    parts = text.split(":")
    task = (parts[1] if len(parts) > 1 else "") or "total"
    mode = (parts[2] if len(parts) > 2 else "") or "default"
    raw = maps.TASK_CONFIGS.get(task)
    if raw is None or len(parts) > 3:
        raise InvalidInputError(
            text,
            f"does not name a TotalSegmentator task as totalsegmentator:TASK[:MODE] "
            f"(tasks: {', '.join(tasks.TASKS[:6])}, …; TotalSegmentator --list-tasks lists all)",
        )
    modes = raw.get("sub_modes", {"default": raw})
    if mode not in modes:
        raise InvalidInputError(
            text, f"asks for mode {mode!r}; task {task} has {', '.join(sorted(modes))}"
        )
    conf = {**maps.DEFAULT_CONFIG, **modes[mode]}
    ids = conf["task_id"] if isinstance(conf["task_id"], list) else [conf["task_id"]]
    if len(ids) > 1:
        fast = [m for m in modes if m != "default"]
        raise UnsupportedInputError(
            text,
            f"runs {len(ids)} nnU-Net models one after another; MedView runs one model a run"
            + (f": import totalsegmentator:{task}:{fast[0]} (one model)" if fast else ""),
        )
    if any(conf.get(key) for key in _CROPPING):
        raise UnsupportedInputError(
            text,
            f"runs on a region another TotalSegmentator model finds first; MedView runs a "
            f"model on the whole study, so task {task} is not imported",
        )
    weights = maps.TASK_ID_WEIGHTS_CONFIGS[ids[0]]
    root = Path(config.get_weights_dir())
    folder = (
        root
        / weights.get("rel_path", "")
        / weights["foldername"]
        / f"{conf['trainer']}__{conf['plans'] or 'nnUNetPlans'}__{conf['model']}"
    )
    if not (folder / "dataset.json").is_file() or not (folder / "plans.json").is_file():
        raise InvalidInputError(
            text,
            f"has no weights on this machine: TotalSegmentator keeps task {task}'s model in "
            f"{folder}; fetch them with TotalSegmentator's totalseg_download_weights -t {task} "
            f"where there is internet and copy its weights folder to {root} (TOTALSEG_HOME_DIR "
            f"moves it): MedView downloads nothing",
        )
    return folder, {
        "task": task,
        "mode": mode,
        "dataset_id": ids[0],
        "weights_release": str(weights.get("version", "")),
        "labels": {int(k): str(v) for k, v in tasks.get_task_classes(task).items()},
        "licence_required": bool(tasks.requires_license(task)),
        "totalsegmentator": tasks.package_version() or "",
    }


def import_totalseg(
    text: str, *, name: str | None = None, version: str | None = None
) -> registry.ModelEntry:
    """Import the task `text` names (totalsegmentator[:TASK[:MODE]]) as an nnU-Net model
    labelled with TotalSegmentator's class names."""
    from medview.ai.runtime.nnunet_models import import_nnunet

    folder, found = task_folder(text)
    mode = "" if found["mode"] == "default" else f"-{found['mode']}"
    release = found["weights_release"].removeprefix("v").removesuffix("-weights")
    return import_nnunet(
        folder,
        name=name or f"totalsegmentator-{found['task']}{mode}".replace("_", "-"),
        version=version or release or "1.0",
        label_names=found.pop("labels"),
        provenance={"kind": "totalsegmentator", **found},
    )

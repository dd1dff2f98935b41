"""What a fine-tune refuses before it spends any time, and the one sentence for each: a
setting no run can use, an imported base, a patch the network cannot take, a version number
that is taken, a work folder it must not write into, a checkpoint that is or is not there;
and the run that diverged. Torch-free: these are checks on names, numbers and folders.

Each was seen failing late or badly: --new-version 1.2 refused only after the whole run,
--epochs 0 writing a copy of the parent as a new version, --batch-size 0 or --lr -1 ending
in an internal error, --out on a file or ~/Documents, --lr 1e12 writing NaN weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from medview.ai.training.job import JOB_FILE, LOCK_FILE, Job
from medview.core.errors import InvalidInputError, SettingError, UnsupportedInputError

# what a run keeps in its work folder (train_runs, training); anything else is someone's
SAVED_FILES = ("checkpoint.pt", "best.safetensors")  # what a resume continues from
RUN_FILES = {JOB_FILE, LOCK_FILE, "run.json", "run.lock", *SAVED_FILES}


def claim_work(folder: Path, resume: bool) -> None:
    """Make the work folder, refusing one a run must not write into: a file, a folder that
    cannot be written, MedView's models folder (a version is made only by write_version) or
    a folder of other files (--out ~/Documents would have put job.json among them)."""
    from medview.ai.models.registry import bundled_models_dir, user_models_dir

    def refuse(problem: str, need: str) -> SettingError:
        """`need`: what the folder must be instead (outside_models, a_folder, empty,
        writable), for the interface to say how to choose one."""
        return SettingError("work", str(folder), "folder", str(folder), problem=problem, need=need)

    where = folder.resolve()
    if any(where.is_relative_to(m.resolve()) for m in (bundled_models_dir(), user_models_dir())):
        raise refuse("is inside MedView's models folder", "outside_models")
    if folder.exists() and not folder.is_dir():
        raise refuse("is a file", "a_folder")
    others = (
        sorted(
            p.name
            for p in folder.iterdir()
            if p.name not in RUN_FILES and not p.name.startswith(".")
        )
        if folder.is_dir()
        else []
    )
    if others and not resume:
        raise refuse(
            f"holds {len(others)} other file(s) ({others[0]}"
            f"{', ...' if len(others) > 1 else ''}) and is not a training work "
            f"folder",
            "empty",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise refuse(f"cannot be created ({exc.strerror or exc})", "writable") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise refuse("cannot be written", "writable")


def check_run(job: Job, entry: Any, checkpoint: Path, resume: bool) -> None:
    """Everything about the job that can be refused before the studies are prepared."""
    from medview.ai.training.patches import check_patch
    from medview.ai.training.versions import check_new_version

    card = entry.card
    if card.architecture in ("torch.export", "onnx"):
        raise UnsupportedInputError(
            str(entry.folder),
            f"{card.ref} is an imported "
            f"{card.architecture} program; MedView fine-tunes only "
            f"the networks it builds",
        )
    job.settings.check()
    from medview.ai.training.grid_studies import is_volume

    if not is_volume(card):
        check_patch(card, job.settings.patch_size)
    elif card.architecture == "torchscript":
        raise UnsupportedInputError(
            str(entry.folder),
            f"{card.ref} is a TorchScript bundle; MedView fine-tunes only the networks it "
            f"builds (import the bundle's models/model.pt instead of model.ts)",
        )
    elif card.architecture_args.get("deep_supervision"):
        raise UnsupportedInputError(
            str(entry.folder),
            f"{card.ref} trains with deep supervision (several outputs); MedView "
            f"fine-tunes 3D networks with one output",
        )
    elif job.settings.site_norm:
        raise UnsupportedInputError(
            None,
            f"site_norm measures batch-norm statistics on 2.5D patches; turn it off "
            f"to fine-tune {card.ref}, a 3D model",
        )
    if job.version:
        check_new_version(card.name, job.version)
    if checkpoint.exists() and not resume:
        raise SettingError("work", str(checkpoint.parent), "run_exists", str(checkpoint.parent))
    if resume and not checkpoint.exists():
        raise InvalidInputError(
            str(checkpoint), "does not exist: there is nothing to resume in this work folder"
        )


def check_labelled(train: list, val: list) -> None:
    """Prepared studies (train_data.PreparedStudy): a training side without one labelled
    voxel has nothing to teach, a validation side without one cannot measure the Dice that
    picks the best epoch (empty label maps wrote a version with Dice null)."""
    for side, studies in (("training", train), ("validation", val)):
        if not any(p.counts for p in studies):
            raise InvalidInputError(
                None,
                f"none of the {len(studies)} {side} studies has a "
                f"labelled lesion (after the label mapping); label "
                f"lesions in them or move a labelled study into "
                f"{side} in the split",
            )


def unmatched_names(mapping: dict[str, str], studies: list, card: Any) -> list[str]:
    """The --map sources given by name that no study's segment and no label of the model is
    called: a typo ("tumor" for "tumour") would otherwise map nothing without a word. Values
    (digits) are not checked here: that needs every label map read."""
    names = {n.lower() for st in studies for n in st.segments.values()} | {
        lab.name.lower() for lab in card.labels
    }
    return [k for k in mapping if not str(k).isdigit() and str(k).lower() not in names]


def diverged(epoch: int, step: int, value: float, lr: float) -> SettingError:
    """The loss is no longer a number: from this step on every weight would be NaN, so the
    run ends before the step, its last checkpoint and every version as they were. The
    learning rate is the setting to change (the interface says how)."""
    return SettingError("lr", lr, "diverged", loss=str(value), epoch=epoch + 1, step=step + 1)

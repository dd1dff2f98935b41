"""How the command line speaks of a setting the engine refused (core.errors.SettingError):
by the flag that sets it (`--epochs 0: train at least 1 epoch`), and what to do in the same
terms (`add --resume ...`, `--out needs a folder`). The Training panel words the same errors
with its own fields (ui.panels.training_sentences); the engine itself names neither."""

from __future__ import annotations

from typing import ClassVar

from medview.core.errors import SettingError

# the settings `medview train` has a flag of their own for; the others are set by --set NAME
OWN_FLAGS = (
    "epochs",
    "device",
    "lr",
    "batch_size",
    "patch_size",
    "patches_per_study",
    "patience",
    "val_fraction",
    "seed",
    "threads",
)
# the job's fields other than its settings, by the flag that sets each
JOB_FLAGS = {
    "work": "--out",
    "version": "--new-version",
    "base": "--base",
    "mapping": "--map",
    "data": "--data",
}
# what to do about a work folder (SettingError "folder"), by what it must be instead
_FOLDER_NEEDS = {
    "outside_models": "choose a work folder for --out outside it",
    "a_folder": "--out needs a folder (new or empty)",
    "empty": "choose a new or empty folder for --out",
    "writable": "choose a folder you can write for --out",
}


def flag(setting: str) -> str:
    """A setting (a job-file field) as the person sets it on the command line."""
    if setting in JOB_FLAGS:
        return JOB_FLAGS[setting]
    return f"--{setting.replace('_', '-')}" if setting in OWN_FLAGS else f"--set {setting}"


class CommandLine:
    """SettingError's voice for `medview`'s commands (core.errors.SettingVoice)."""

    def name(self, setting: str) -> str:
        return flag(setting)

    # what to do, by kind of problem (formatted with the value `v` and the limits)
    REMEDIES: ClassVar[dict[str, str]] = {
        "version_taken": "choose another number",
        "run_exists": "add --resume to continue it or choose another --out folder",
        "checkpoint_unreadable": "start a new run with another --out folder",
        "base_mismatch": "resume it with --base {trained_from}",
        "diverged": "start again with a smaller --lr than {v:g}",
        "workers_died": "run again with --threads 1, which prepares one study at a time",
        "unmapped": 'map it, e.g. --map {v}="{example}" or --map {v}=ignore',
        "unavailable": "use --device cpu",
    }

    def remedy(self, error: SettingError) -> str:
        if error.kind == "folder":
            return _FOLDER_NEEDS.get(
                error.limits.get("need", ""), "choose another folder for --out"
            )
        return self.REMEDIES.get(error.kind, "").format(v=error.value, **error.limits)


COMMAND_LINE = CommandLine()


def sentence(exc: BaseException) -> str:
    """An error as `medview` prints it: a setting's in the command line's words."""
    return exc.sentence(COMMAND_LINE) if isinstance(exc, SettingError) else str(exc)

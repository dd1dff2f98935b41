"""What the training panel says when its child's events arrive: each epoch, a finished run
(did it beat its parent?), a stop (and whether anything was saved to resume), and the
engine's errors: a refused setting arrives as data (core.errors.SettingError in the event's
`setting`), worded here with the panel's fields and buttons, as the command line words it
with its flags (commands.setting_words)."""

from __future__ import annotations

from typing import ClassVar

from medview.ai.models.verdict import WORSE, verdict
from medview.core.errors import SettingError
from medview.ui.panels.training_settings import SETTING_NAMES, field_label


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def error_sentence(ev: dict) -> str:
    """The child's error event as the one sentence the panel shows."""
    kind, message = ev.get("kind"), str(ev.get("message", ""))
    if kind == "memory":
        return (
            "Training ran out of device memory; Start again with a smaller batch size or "
            "patch size, or on the CPU device (details in the log)."
        )
    if kind == "disk":
        then = (
            "Resume: the last checkpoint is intact"
            if ev.get("resumable", True)
            else "Start it again: it stopped before its first checkpoint, so there is "
            "nothing to resume"
        )
        return (
            f"Training stopped because the disk is full ({ev.get('path') or 'work folder'}"
            f"); free some space, then {then}."
        )
    if kind == "internal":
        return f"Training failed with {message}; the log below and the log file have details."
    return _sentence(f"Training could not run: {setting_sentence(ev.get('setting')) or message}")


class Panel:
    """SettingError's voice for the Training panel (core.errors.SettingVoice): a setting is
    the field the reader sets it in (and Advanced where that is folded), what to do is what
    the panel offers; the reader never saw `medview train`'s flags."""

    # the job's fields that are not settings, as the panel presents them
    NAMES: ClassVar[dict[str, str]] = {
        "version": "New version",
        "work": "The work folder",
        "base": "The base model",
        "mapping": 'under "Your labels teach",',
    }

    def name(self, setting: str) -> str:
        if setting in SETTING_NAMES:
            return field_label(setting)
        return self.NAMES.get(setting, setting)

    # what to do in the panel, by kind of problem (formatted with the value `v`, the limits
    # and `lr`, the learning rate's field)
    REMEDIES: ClassVar[dict[str, str]] = {
        "version_taken": "Discard this run and Start a new one",
        "folder": "the panel keeps its runs in MedView's data folder (training), which must "
        "be a folder it can write",
        "run_exists": "Resume it above or Start a new run",
        "checkpoint_unreadable": "Discard it and Start a new run",
        "base_mismatch": "Discard it and Start a new run from {trained_from}",
        "diverged": "start again with a {lr} below {v:g}",
        "workers_died": "set CPU threads to 1 under Advanced and Start again, which prepares "
        "one study at a time",
        "unmapped": 'choose what it is under "Your labels teach"',
        "unavailable": "choose Device cpu (or auto) under Setup",
    }

    def remedy(self, error: SettingError) -> str:
        return self.REMEDIES.get(error.kind, "").format(
            v=error.value, lr=self.name("lr"), **error.limits
        )


PANEL = Panel()


def setting_sentence(data: object) -> str:
    """A refused setting (the error event's `setting`) in the panel's words; "" when the
    event carries none, or one this MedView cannot read (the message then stands)."""
    if not isinstance(data, dict):
        return ""
    try:
        return SettingError.from_dict(data).sentence(PANEL)
    except (KeyError, TypeError, ValueError, IndexError):
        return ""


def number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "—"


def epoch_sentence(ev: dict) -> str:
    """An epoch event as the status line says it; epoch 0 is the base model, untrained."""
    fold = f"Cross-validation fold {ev['fold']} of {ev['folds']}: " if ev.get("fold") else ""
    if ev.get("val_dice") is None and ev["epoch"] > 0:  # the version, trained on every study
        return (
            f"Training the version on all your studies: epoch {ev['epoch']} of "
            f"{ev['epochs']}, loss {number(ev['loss'])}."
        )
    if ev["epoch"] == 0:
        return (
            f"{fold}The base model before training: validation Dice "
            f"{number(ev['val_dice'])} (the dashed line under Progress); epoch 1 of "
            f"{ev['epochs']} is running."
        )
    if fold:  # a fixed number of epochs: no best epoch is picked
        return (
            f"{fold}epoch {ev['epoch']} of {ev['epochs']}, loss {number(ev['loss'])}, "
            f"held-out Dice {number(ev['val_dice'])}."
        )
    best = ev.get("best_epoch")
    note = (
        ""
        if best in (None, ev["epoch"])
        else (" (the base model is still the best)" if best == 0 else f" (best: epoch {best})")
    )
    return (
        f"Epoch {ev['epoch']} of {ev['epochs']}: loss {number(ev['loss'])}, validation "
        f"Dice {number(ev['val_dice'])}{note}."
    )


def done_sentence(ev: dict) -> str:
    """A finished run in one sentence that says whether the new version did better than
    its parent on the reader's validation studies, the numbers deciding what to activate."""
    m, p = ev["metrics"], ev["parent_metrics"]
    parent = ev.get("parent") or "the base model"
    cv = ev.get("cross_validation")
    if isinstance(cv, dict):  # the numbers of every study, held out: the verdict says it
        said = verdict({"fine_tune": {"cross_validation": cv}}, parent)
        advice = (
            f"keep {parent} active unless you choose otherwise"
            if said.level == WORSE
            else "compare and activate it under Versions if you choose"
        )
        return (
            f"{ev['version']} written (not active). {said.text} {advice[:1].upper()}{advice[1:]}."
        )
    dice = f"validation Dice {number(p.get('dice_mean'))} → {number(m.get('dice_mean'))}"
    fp_a, fp_b = p.get("false_positives_per_study"), m.get("false_positives_per_study")
    fp = "" if fp_a is None or fp_b is None else f", false positives per study {fp_a:g} → {fp_b:g}"
    worse = (m.get("dice_mean") or 0.0) < (p.get("dice_mean") or 0.0)
    if worse:
        return (
            f"{ev['version']} written (not active) but it did worse than {parent} on "
            f"your validation studies ({dice}{fp}): keep {parent} active."
        )
    return (
        f"{ev['version']} written (not active): {dice}{fp}; compare and activate it under Versions."
    )


def stopped_sentence(ev: dict, steps: int) -> str:
    """A stop, and what continues it: the checkpoint it left (`resume`), or nothing when it
    was stopped while preparing or mining, before the first checkpoint: then only Start
    begins the run again (Resume would have nothing to continue from)."""
    if ev.get("resume") is None:
        return (
            "Stopped before training began, while preparing: nothing was saved to "
            "resume, so Start begins the run again."
        )
    where = f" (step {ev['step']} of {steps})" if ev.get("step") else ""
    return f"Stopped in epoch {ev['epoch'] + 1}{where}; Resume continues it from there."

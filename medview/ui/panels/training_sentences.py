"""What the training panel says when its child's events arrive: each epoch, a finished run
(did it beat its parent?), a stop (and whether anything was saved to resume), and the
engine's errors, whose words were written for the command line, in the panel's terms."""

from __future__ import annotations

import re

from medview.ai.models.verdict import WORSE, verdict
from medview.ui.panels.training_settings import SETTING_NAMES, field_label


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def error_sentence(ev: dict) -> str:
    """The child's error event as the one sentence the panel shows."""
    kind, message = ev.get("kind"), str(ev.get("message", ""))
    if kind == "memory":
        return ("Training ran out of device memory; Start again with a smaller batch size or "
                "patch size, or on the CPU device (details in the log).")
    if kind == "disk":
        then = ("Resume: the last checkpoint is intact" if ev.get("resumable", True) else
                "Start it again: it stopped before its first checkpoint, so there is "
                "nothing to resume")
        return (f"Training stopped because the disk is full ({ev.get('path') or 'work folder'}"
                f"); free some space, then {then}.")
    if kind == "internal":
        return f"Training failed with {message}; the log below and the log file have details."
    return _sentence(f"Training could not run: {_in_panel_words(message)}")


# the engine's advice for flags the panel has no field for, as what the reader can do here
_ADVICE = (
    (r"use --device (\w+)", r"choose Device \1 (or auto) under Setup"),
    (r"; map it, e\.g\. --map .*$", "; choose what it is under \"Your labels teach\""),
    (r"add --resume to continue it or choose another --out folder",
     "Resume it above or Start a new run"),
    (r"start a new run with another --out folder", "Discard it and Start a new run"),
    (r"resume it with --base (\S+)", r"Discard it and Start a new run from \1"),
    (r"--new-version (\S+): (.*), choose another number$", r"New version \1 (in the run's "
     r"job file): \2: Discard this run and Start a new one"),
    (r"--new-version (\S+):", r"New version \1 (in the run's job file):"),
    (r"a smaller --lr than (\S+)", r"a Learning rate below \1"),
    (r"run again with --threads 1", "set CPU threads to 1 under Advanced and Start again"),
    (r";[^;]*--out[^;]*$", "; the panel keeps its runs in MedView's data folder (training), "
                           "which must be a folder it can write"),
)


def _in_panel_words(message: str) -> str:
    """The engine's sentences name command-line flags (`--epochs 0: train at least 1
    epoch`); the panel's reader never saw them, only the fields under Setup: a setting's flag
    (its own, or --set NAME) becomes the field's label, the rest the panel's way to do it."""
    for pattern, words in _ADVICE:
        message = re.sub(pattern, words, message)

    def label(m: re.Match) -> str:
        name = (m.group(1) or m.group(2)).replace("-", "_")
        return field_label(name) if name in SETTING_NAMES else m.group(0)

    return re.sub(r"--set (\w+)|--(\w[\w-]*)", label, message)


def number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "—"


def epoch_sentence(ev: dict) -> str:
    """An epoch event as the status line says it; epoch 0 is the base model, untrained."""
    fold = f"Cross-validation fold {ev['fold']} of {ev['folds']}: " if ev.get("fold") else ""
    if ev.get("val_dice") is None and ev["epoch"] > 0:  # the version, trained on every study
        return (f"Training the version on all your studies: epoch {ev['epoch']} of "
                f"{ev['epochs']}, loss {number(ev['loss'])}.")
    if ev["epoch"] == 0:
        return (f"{fold}The base model before training: validation Dice "
                f"{number(ev['val_dice'])} (the dashed line under Progress); epoch 1 of "
                f"{ev['epochs']} is running.")
    if fold:  # a fixed number of epochs: no best epoch is picked
        return (f"{fold}epoch {ev['epoch']} of {ev['epochs']}, loss {number(ev['loss'])}, "
                f"held-out Dice {number(ev['val_dice'])}.")
    best = ev.get("best_epoch")
    note = "" if best in (None, ev["epoch"]) else \
        (" (the base model is still the best)" if best == 0 else f" (best: epoch {best})")
    return (f"Epoch {ev['epoch']} of {ev['epochs']}: loss {number(ev['loss'])}, validation "
            f"Dice {number(ev['val_dice'])}{note}.")


def done_sentence(ev: dict) -> str:
    """A finished run in one sentence that says whether the new version did better than
    its parent on the reader's validation studies, the numbers deciding what to activate."""
    m, p = ev["metrics"], ev["parent_metrics"]
    parent = ev.get("parent") or "the base model"
    cv = ev.get("cross_validation")
    if isinstance(cv, dict):  # the numbers of every study, held out: the verdict says it
        said = verdict({"fine_tune": {"cross_validation": cv}}, parent)
        advice = f"keep {parent} active unless you choose otherwise" if said.level == WORSE \
            else "compare and activate it under Versions if you choose"
        return f"{ev['version']} written (not active). {said.text} {advice[:1].upper()}" \
            f"{advice[1:]}."
    dice = f"validation Dice {number(p.get('dice_mean'))} → {number(m.get('dice_mean'))}"
    fp_a, fp_b = p.get("false_positives_per_study"), m.get("false_positives_per_study")
    fp = "" if fp_a is None or fp_b is None else \
        f", false positives per study {fp_a:g} → {fp_b:g}"
    worse = (m.get("dice_mean") or 0.0) < (p.get("dice_mean") or 0.0)
    if worse:
        return (f"{ev['version']} written (not active) but it did worse than {parent} on "
                f"your validation studies ({dice}{fp}): keep {parent} active.")
    return (f"{ev['version']} written (not active): {dice}{fp}; compare and activate it "
            f"under Versions.")


def stopped_sentence(ev: dict, steps: int) -> str:
    """A stop, and what continues it: the checkpoint it left (`resume`), or nothing when it
    was stopped while preparing or mining, before the first checkpoint: then only Start
    begins the run again (Resume would have nothing to continue from)."""
    if ev.get("resume") is None:
        return ("Stopped before training began, while preparing: nothing was saved to "
                "resume, so Start begins the run again.")
    where = f" (step {ev['step']} of {steps})" if ev.get("step") else ""
    return f"Stopped in epoch {ev['epoch'] + 1}{where}; Resume continues it from there."

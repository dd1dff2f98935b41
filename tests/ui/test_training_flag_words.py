"""The engine's error sentences name command-line flags (`--epochs 0: train at least 1
epoch`, `--set distill`, `--lr`, `--out`, `--new-version`, `--base` on resume); the panel's
reader never saw those flags, only the fields under Setup, so the panel words them in its
own terms: the field's label (and Advanced where it is folded) or what to do in the panel.
The messages are the engine's own, made by its checks."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from medview.ai.training.checks import diverged
from medview.ai.training.job import Settings
from medview.ai.training.prepare import WORKER_DIED
from medview.commands.train import _flag
from medview.ui.panels.training_panel import TrainingPanel

SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))


def refused(**settings: object) -> str:
    """The engine's sentence for settings it refuses, with the flags `medview train` names
    (the panel's child runs `medview train --job FILE`, which checks them so)."""
    with pytest.raises(ValueError) as err:
        Settings(**settings).check(_flag)
    return str(err.value)


CASES = [
    (refused(epochs=0), "Epochs 0: train at least 1 epoch"),
    (refused(batch_size=256, patch_size=512), "Batch size 256 with Patch size 512 is 67 "
                                              "million pixels a step"),
    (refused(distill=2000.0), "Distillation (under Advanced) 2000: use a weight"),
    (refused(amp=1), "Mixed precision (CUDA) 1: takes a value like True"),
    (str(diverged(0, 3, math.nan, 1e-2)), "start again with a Learning rate below 0.01"),
    ("/w/checkpoint.pt: was trained from tiny:1.0, not tiny:1.0.1; resume it with --base "
     "tiny:1.0", "Discard it and Start a new run from tiny:1.0"),
    ("--new-version 1.2: tiny already has version 1.2; versions are never overwritten, "
     "choose another number", "New version 1.2 (in the run's job file): tiny already has "
                              "version 1.2; versions are never overwritten: Discard this run "
                              "and Start a new one"),
    ("/w: already holds a training run; add --resume to continue it or choose another --out "
     "folder", "already holds a training run; Resume it above or Start a new run"),
    ("/w: cannot be created (Permission denied); choose a folder you can write for --out",
     "(Permission denied); the panel keeps its runs in MedView's data folder"),
    (WORKER_DIED, "large study); set CPU threads to 1 under Advanced and Start again, which "
                  "prepares one study at a time"),
]


@pytest.fixture(scope="module")
def panel(qapp, tmp_path_factory: pytest.TempPathFactory) -> TrainingPanel:
    os.environ["MEDVIEW_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    p = TrainingPanel()
    p.resize(460, 700)
    p.show()
    yield p
    p.shutdown()
    p.close()
    os.environ.pop("MEDVIEW_DATA_DIR")


@pytest.mark.parametrize(("message", "words"), CASES)
def test_the_engines_flags_read_as_the_panels_fields(qtbot, panel: TrainingPanel,
                                                    message: str, words: str) -> None:
    assert "--" in message  # the engine's words name a flag
    panel.on_event({"event": "error", "kind": "input", "message": message, "try": "…"})
    text = panel.status.text()
    assert text.startswith("Training could not run: ") and words in text, text
    assert "--" not in text and "\n" not in text and text.endswith(".")
    shot = next((n for n in ("epochs", "batch-size", "set distill") if message[2:].startswith(n)),
                None)
    if shot:
        qtbot.wait(30)  # the layout makes room for the longer sentence
        panel.grab().save(str(SHOTS / f"training_error_{shot.replace(' ', '_')}.png"))

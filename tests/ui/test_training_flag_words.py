"""A setting the engine refuses is data (core.errors.SettingError: the job-file field, its
value, the kind of problem, its limits), carried in the child's error event, and each
interface words it: `medview train` with its flags (`--epochs 0: train at least 1 epoch`),
the Training panel with its fields (and Advanced where one is folded) and buttons, since its
reader never saw the flags. Every kind is worded by both; the errors are the engine's own,
made by its checks where a test can make them here."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from medview.ai.training.checks import claim_work, diverged
from medview.ai.training.job import Settings
from medview.ai.training.runs import RunInfo, RunRecord, unfinished_runs
from medview.commands.setting_words import sentence as cli_sentence
from medview.commands.train import _error_event
from medview.core.errors import SettingError
from medview.ui.panels.training_panel import TrainingPanel
from medview.ui.panels.training_sentences import setting_sentence
from medview.ui.panels.unfinished_runs import describe

SHOTS = Path(os.environ.get("MEDVIEW_SHOTS", "/tmp"))


def refused(**settings: object) -> SettingError:
    """The engine's error for settings it refuses (the panel's child checks its job file so)."""
    with pytest.raises(SettingError) as err:
        Settings(**settings).check()
    return err.value


def folder_refused(tmp_path: Path) -> SettingError:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(SettingError) as err:
        claim_work(tmp_path / "a-file", resume=False)
    return err.value


# (the error, the command line's words, the panel's words)
CASES = [
    (
        "range",
        lambda _: refused(epochs=0),
        "--epochs 0: train at least 1 epoch",
        "Epochs 0: train at least 1 epoch",
    ),
    (
        "step_size",
        lambda _: refused(batch_size=256, patch_size=512),
        "--batch-size 256 with --patch-size 512 is 67 million pixels a step",
        "Batch size 256 with Patch size 512 is 67 million pixels a step",
    ),
    (
        "range",
        lambda _: refused(distill=2000.0),
        "--set distill 2000: use a weight",
        "Distillation (under Advanced) 2000: use a weight",
    ),
    (
        "type",
        lambda _: refused(amp=1),
        "--set amp 1: takes a value like True",
        "Mixed precision (CUDA) 1: takes a value like True",
    ),
    (
        "choice",
        lambda _: refused(device="gpu"),
        "--device 'gpu': use one of auto, cpu, cuda",
        "Device 'gpu': use one of auto, cpu, cuda",
    ),
    (
        "diverged",
        lambda _: diverged(0, 3, math.nan, 1e-2),
        "so training stopped with nothing written; start again with a smaller --lr than 0.01",
        "so training stopped with nothing written; start again with a Learning rate below 0.01",
    ),
    (
        "base_mismatch",
        lambda _: SettingError(
            "base", "tiny:1.0.1", "base_mismatch", "/w/checkpoint.pt", trained_from="tiny:1.0"
        ),
        "/w/checkpoint.pt: was trained from tiny:1.0, not tiny:1.0.1; resume it with --base "
        "tiny:1.0",
        "was trained from tiny:1.0, not tiny:1.0.1; Discard it and Start a new run from tiny:1.0",
    ),
    (
        "version_taken",
        lambda _: SettingError("version", "1.2", "version_taken", model="tiny"),
        "--new-version 1.2: tiny already has version 1.2; versions are never overwritten; "
        "choose another number",
        "New version 1.2: tiny already has version 1.2; versions are "
        "never overwritten; Discard this run and Start a new one",
    ),
    (
        "version_format",
        lambda _: SettingError("version", "abc", "version_format"),
        "--new-version abc: write a version number like 1.2.1",
        "New version abc: write a version number like 1.2.1",
    ),
    (
        "run_exists",
        lambda _: SettingError("work", "/w", "run_exists", "/w"),
        "/w: already holds a training run; add --resume to continue it or choose another --out "
        "folder",
        "/w: already holds a training run; Resume it above or Start a new run",
    ),
    (
        "folder",
        folder_refused,
        "a-file: is a file; --out needs a folder (new or empty)",
        "a-file: is a file; the panel keeps its runs in MedView's data folder (training), which "
        "must be a folder it can write",
    ),
    (
        "folder",
        lambda _: SettingError(
            "work",
            "/w",
            "folder",
            "/w",
            problem="cannot be created (Permission denied)",
            need="writable",
        ),
        "/w: cannot be created (Permission denied); choose a folder you can write for --out",
        "(Permission denied); the panel keeps its runs in MedView's data folder",
    ),
    (
        "checkpoint_unreadable",
        lambda _: SettingError("work", "/w", "checkpoint_unreadable", "/w/checkpoint.pt"),
        "(it is damaged or was written for another model); start a new run with another --out "
        "folder",
        "(it is damaged or was written for another model); Discard it and Start a new run",
    ),
    (
        "workers_died",
        lambda _: SettingError("threads", 2, "workers_died"),
        "large study); run again with --threads 1, which prepares one study at a time",
        "large study); set CPU threads to 1 under Advanced and Start again, which prepares one "
        "study at a time",
    ),
    (
        "unmapped",
        lambda _: SettingError(
            "mapping",
            "tumour",
            "unmapped",
            "/l",
            study="s",
            label="3 (tumour)",
            model="m:1",
            known="1 lung nodule",
            example="lung nodule",
        ),
        "/l: of study s holds label 3 (tumour), which m:1 does not know (it knows 1 lung "
        'nodule); map it, e.g. --map tumour="lung nodule" or --map tumour=ignore',
        'does not know (it knows 1 lung nodule); choose what it is under "Your labels teach"',
    ),
    (
        "mapping_unused",
        lambda _: SettingError("mapping", "tumor", "mapping_unused", target="ignore"),
        "--map tumor=ignore: no study has a label named 'tumor', so it changes nothing",
        "under \"Your labels teach\", tumor=ignore: no study has a label named 'tumor', so it "
        "changes nothing",
    ),
    (
        "unavailable",
        lambda _: SettingError("device", "cuda", "unavailable", device_name="CUDA"),
        "CUDA was requested but no CUDA device is available; use --device cpu",
        "CUDA was requested but no CUDA device is available; choose Device cpu (or auto) under "
        "Setup",
    ),
]


def test_every_kind_of_refused_setting_is_worded_by_both_sides() -> None:
    assert {kind for kind, *_ in CASES} == set(SettingError.STATEMENTS)


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


@pytest.mark.parametrize(
    ("kind", "make", "cli", "words"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_the_command_line_names_its_flags_and_the_panel_its_fields(
    qtbot, panel: TrainingPanel, tmp_path: Path, kind, make, cli: str, words: str
) -> None:
    err = make(tmp_path)
    assert err.kind == kind
    said = cli_sentence(err)
    assert cli in said and "\n" not in said
    assert "--" not in str(err)  # the engine's own words name no interface's flags
    # the event exactly as the child prints it, through the pipe as JSON
    event = json.loads(json.dumps(_error_event(err, kind="input", path=err.path, **{"try": "…"})))
    assert event["message"] == said  # the command line's words, for the log
    panel.on_event(event)
    text = panel.status.text()
    assert text.startswith("Training could not run: ") and words in text, text
    assert "--" not in text and "\n" not in text and text.endswith(".")
    if kind in ("range", "step_size") and "epochs" in cli + words.lower():
        qtbot.wait(30)  # the layout makes room for the longer sentence
        panel.grab().save(str(SHOTS / "training_error_epochs.png"))


def test_a_warning_about_a_setting_is_worded_by_the_panel(panel: TrainingPanel) -> None:
    """The run goes on; the note under the status says it in the panel's words."""
    unused = SettingError("mapping", "tumor", "mapping_unused", target="ignore")
    panel.on_event(
        {"event": "warning", "message": cli_sentence(unused), "setting": unused.to_dict()}
    )
    note = panel.notes.text().splitlines()[-1]
    assert note == (
        '⚠ Under "Your labels teach", tumor=ignore: no study has a label named '
        "'tumor', so it changes nothing."
    )


def test_an_event_without_readable_setting_data_keeps_its_message(panel: TrainingPanel) -> None:
    """An error that is no refused setting, or data this MedView cannot read, is shown as
    the engine said it."""
    for setting in (
        None,
        {"kind": "range"},
        {"setting": "epochs", "value": 0, "kind": "no such kind"},
    ):
        assert setting_sentence(setting) == ""
        panel.on_event(
            {
                "event": "error",
                "kind": "input",
                "setting": setting,
                "message": "/s: holds no labelled studies",
            }
        )
        assert panel.status.text() == "Training could not run: /s: holds no labelled studies."


def test_a_failed_runs_error_is_kept_as_data_and_worded_by_the_panel(
    tmp_path: Path, monkeypatch
) -> None:
    """The unfinished-runs list shows a failed run's last error after a restart: from
    run.json, in the panel's words, not the command line's the child printed."""
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    work = tmp_path / "data" / "training" / "tiny-1.0-20260101-120000"
    record = RunRecord(work)
    record.open()
    (work / "job.json").write_text(json.dumps({"data": "d", "base": "tiny:1.0"}), "utf-8")
    (work / "checkpoint.pt").write_bytes(b"")
    record.event({"event": "start", "base": "tiny:1.0", "epochs": 3, "steps_per_epoch": 4})
    err = diverged(1, 2, math.nan, 5e-4)
    record.event(_error_event(err, kind="input", path=None, **{"try": "…"}))
    record.close()
    (run,) = unfinished_runs()
    assert isinstance(run, RunInfo) and run.status == "failed"
    assert "--lr" in run.error and run.error_setting == err.to_dict()
    line = describe(run)
    assert line.endswith("start again with a Learning rate below 0.0005.") and "--" not in line

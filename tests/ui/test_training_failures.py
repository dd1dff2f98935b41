"""Every way a fine-tune cannot go on ends in one sentence under the training panel's
buttons: no done studies, a split without one side, a job file the disk refuses, and the
child's own errors (out of memory, disk full, bad input, internal) worded for the panel.
The split moves a patient's studies together."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from PySide6 import QtCore

from medview.ai.training.data import TrainStudy
from medview.core.errors import SettingError
from medview.jobs.training import StudyRow
from medview.ui.panels import training_panel as tp
from medview.ui.panels.training_panel import TrainingPanel

LEFT = QtCore.Qt.MouseButton.LeftButton


def one_sentence(text: str) -> bool:
    return (
        "\n" not in text
        and "Traceback" not in text
        and text[:1].isupper()
        and text.endswith(".")
        and text.count(". ") == 0
    )


@pytest.fixture
def empty(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrainingPanel:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    p = TrainingPanel()
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def test_no_done_studies_is_one_sentence(qtbot, empty: TrainingPanel) -> None:
    empty.show()  # lists the workspace's done studies: there are none
    qtbot.waitUntil(lambda: "marked done" in empty.status.text(), timeout=10_000)
    assert one_sentence(empty.status.text())
    qtbot.mouseClick(empty.start_button, LEFT)
    assert empty.status.text().startswith("No labelled studies are listed")
    assert not empty.process.running and not empty.runs.isVisible()


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (
            {
                "kind": "memory",
                "message": "the device ran out of memory (CUDA out of memory. Tried "
                "to allocate 2.00 GiB)",
            },
            "smaller batch size",
        ),
        (
            {
                "kind": "disk",
                "message": "x: could not be written: the disk is full. The previous "
                "checkpoint is intact",
                "path": "/w/checkpoint.pt",
            },
            "disk is full (/w/checkpoint.pt); free some space, then Resume",
        ),
        (
            {
                "kind": "disk",
                "message": "/c/image.npy: could not be written: the disk is full",
                "path": "/c/image.npy",
                "resumable": False,
            },  # full while caching: no checkpoint yet
            "then Start it again: it stopped before its first checkpoint, so there is nothing to "
            "resume",
        ),
        (
            {
                "kind": "input",
                "message": "/s: holds no labelled studies (no sub-folder with a "
                "labels.nii.gz and its image); label and mark studies done "
                "first",
            },
            "could not run",
        ),
        ({"kind": "internal", "message": "internal error (KeyError: 'x')"}, "log file"),
        # a refused setting: worded from its data (tests/ui/test_training_flag_words.py has all)
        (
            {
                "kind": "input",
                "message": "CUDA was requested but no CUDA device is available; use --device cpu",
                "setting": SettingError(
                    "device", "cuda", "unavailable", device_name="CUDA"
                ).to_dict(),
            },
            "choose Device cpu (or auto) under Setup",
        ),
        (
            {
                "kind": "input",
                "message": "/l: of study s holds label 3 (tumour), which m:1 does not "
                "know (it knows 1 lung nodule); map it, e.g. --map "
                'tumour="lung nodule" or --map tumour=ignore',
                "setting": SettingError(
                    "mapping",
                    "tumour",
                    "unmapped",
                    "/l",
                    study="s",
                    label="3 (tumour)",
                    model="m:1",
                    known="1 lung nodule",
                    example="lung nodule",
                ).to_dict(),
            },
            'does not know (it knows 1 lung nodule); choose what it is under "Your labels teach"',
        ),
    ],
)
def test_the_childs_errors_are_one_sentence(empty: TrainingPanel, event: dict, words: str) -> None:
    empty.on_event({"event": "error", "try": "…", **event})
    assert words in empty.status.text() and one_sentence(empty.status.text())
    empty._finished(1, False)  # the child then ends: its sentence stays
    assert words in empty.status.text()


def test_a_child_that_ends_without_a_word_is_one_sentence(
    empty: TrainingPanel, tmp_path: Path
) -> None:
    empty.work = tmp_path / "w"
    empty._finished(-11, False)
    assert "ended unexpectedly (exit code -11)" in empty.status.text()
    assert "no checkpoint" in empty.status.text() and one_sentence(empty.status.text())
    empty._ended = None  # another run (as _launch does)
    empty._finished(-1, False)  # QProcess could not start it
    assert empty.status.text().startswith("The training process could not be started")


def rows(patients: str) -> list[StudyRow]:
    return [
        StudyRow(TrainStudy(f"k{i}", f"study-{i}", p, "img", "lab"), {1: 10, 2: 5 * i})
        for i, p in enumerate(patients)
    ]


def test_the_split_moves_a_patients_studies_together(empty: TrainingPanel) -> None:
    studies = empty.studies
    studies.set_folds(1)  # one held-out split: the sides decide (else cross-validation)
    studies._show(rows("aabc"))  # study-0 and study-1 are one patient's
    assert [studies.table.item(i, 1).text() for i in range(4)] == ["P1", "P1", "P2", "P3"]
    split = studies.split()
    assert ("k0" in split["val"]) == ("k1" in split["val"])
    side = 1 - studies.table.cellWidget(0, 3).currentIndex()
    studies.table.cellWidget(0, 3).setCurrentIndex(side)  # as the reader's choice does
    assert studies.table.cellWidget(1, 3).currentIndex() == side
    assert "Validation:" in studies.summary.text()


def test_start_refuses_a_split_with_an_empty_side(qtbot, empty: TrainingPanel) -> None:
    empty.studies._show(rows("abcd"))
    for i in range(4):
        empty.studies.table.cellWidget(i, 3).setCurrentIndex(0)  # all training
    qtbot.mouseClick(empty.start_button, LEFT)
    assert "need at least one patient" in empty.status.text()
    assert not empty.process.running
    empty.studies._show(rows("aaaa"))
    qtbot.mouseClick(empty.start_button, LEFT)
    assert "one patient" in empty.status.text() and not empty.process.running


def test_a_job_file_the_disk_refuses_is_one_sentence(
    qtbot, empty: TrainingPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medview.io.workspace import data_dir
    from tests.ai.train_fixtures import install_base

    install_base(data_dir())
    empty._fill_models()

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tp, "atomic_write_text", full)
    empty.studies._show(rows("abcd"))
    qtbot.mouseClick(empty.start_button, LEFT)
    assert "could not be written" in empty.status.text() and "No space left" in empty.status.text()
    assert not empty.process.running and empty.start_button.isEnabled()


def test_a_child_that_cannot_start_is_one_sentence(
    qtbot, train_panel: TrainingPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medview.ui import training_process

    monkeypatch.setattr(
        training_process, "medview_argv", lambda *args: ["/nonexistent/medview", *args]
    )
    qtbot.mouseClick(train_panel.start_button, LEFT)
    qtbot.waitUntil(lambda: train_panel.start_button.isEnabled(), timeout=10_000)
    assert train_panel.status.text().startswith("The training process could not be started")
    assert not train_panel.stop_button.isEnabled()
    assert not train_panel.work.exists()  # the job file it wrote for the child went too

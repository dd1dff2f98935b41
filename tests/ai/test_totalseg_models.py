"""TotalSegmentator's tasks without their weights: each refusal is one sentence saying what
to install, where the weights go, or which task to import instead; nothing is downloaded.
(The import from a weights folder is in test_nnunet_models.py, beside its model.)"""

from __future__ import annotations

import sys

import pytest

from medview.cli import main


def run_import(ref: str, kept_data_dir, capsys) -> tuple[int, str]:
    code = main(["--log-file", str(kept_data_dir.parent / "log.txt"), "models", "import", ref])
    _, err = capsys.readouterr()
    assert err.strip().count("\n") == 0  # one sentence
    return code, err


def test_without_the_package_one_sentence_says_what_to_install(kept_data_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "totalsegmentator", None)
    code, err = run_import("totalsegmentator:body", kept_data_dir, capsys)
    assert code != 0
    assert "TotalSegmentator is not installed" in err
    assert "pip install 'medview[nnunet,totalsegmentator]'" in err


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    pytest.importorskip("totalsegmentator")
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path / "totalseg"))
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    return tmp_path / "totalseg"


def test_without_the_weights_one_sentence_says_where_they_go(empty_home, kept_data_dir, capsys):
    code, err = run_import("totalsegmentator:body", kept_data_dir, capsys)
    assert code != 0
    assert "has no weights on this machine" in err and "MedView downloads nothing" in err
    expected = empty_home / "nnunet/results/Dataset299_body_1559subj"
    assert f"{expected}/nnUNetTrainer__nnUNetPlans__3d_fullres" in err
    assert "totalseg_download_weights -t body" in err
    assert not empty_home.exists()  # nothing made there


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("totalsegmentator", "import totalsegmentator:total:fast (one model)"),
        ("totalsegmentator:liver_vessels", "runs on a region another TotalSegmentator model"),
        ("totalsegmentator:no_such_task", "does not name a TotalSegmentator task"),
        ("totalsegmentator:body:fastest", "task body has default, fast"),
    ],
)
def test_what_medview_cannot_run_is_one_sentence(empty_home, kept_data_dir, capsys, ref, words):
    code, err = run_import(ref, kept_data_dir, capsys)
    assert code != 0 and words in err

"""Keeping the parent's knowledge in a fine-tune (train_keep): the distillation loss is zero
when student and teacher agree and pulls the student toward the teacher; it applies only to
the patches of rehearsal studies unless asked for all; L2-SP pulls the weights back toward
the parent's; a tiny fine-tune with both still makes a valid version that says so. Also: one
run at a time in a work folder (two runs started together shared one and mixed their best
weights)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from medview.ai.models.cards import load_card
from medview.ai.runtime.loading import load_model
from medview.ai.training.data import find_studies, prepare_study
from medview.ai.training.keep import Anchor, distillation_loss, frozen_parent
from medview.ai.training.tasks import SegmentationTask
from medview.core.errors import InvalidInputError
from tests.ai.test_training import run, tiny_job
from tests.ai.tiny_models import tiny_unet
from tests.ai.train_fixtures import install_base, make_studies


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)


def test_distillation_is_zero_for_agreement_and_pulls_toward_the_teacher() -> None:
    torch.manual_seed(0)
    teacher = torch.randn(2, 3, 8, 8) * 3
    assert float(distillation_loss(teacher.clone(), teacher)) == pytest.approx(0, abs=1e-6)
    student = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = teacher.clone().requires_grad_(True)
    opt = torch.optim.Adam([student], lr=0.1)
    first = float(distillation_loss(student, target).detach())
    assert first > 0
    for _ in range(100):
        opt.zero_grad()
        loss = distillation_loss(student, target)
        loss.backward()
        opt.step()
    assert target.grad is None  # the teacher learns nothing
    assert float(distillation_loss(student, target).detach()) < 0.05 * first
    soft = torch.softmax(teacher / 2, 1)
    assert torch.allclose(torch.softmax(student.detach() / 2, 1), soft, atol=0.05)


def test_anchor_pulls_weights_back_toward_the_parent() -> None:
    net = tiny_unet()
    anchor = Anchor(net, strength=10.0)
    start = copy.deepcopy(net.state_dict())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    moved = anchor.distance()
    anchor.pull(lr=0.05)  # half way back
    assert anchor.distance() == pytest.approx(moved / 4, rel=1e-4)
    anchor.pull(lr=1.0)  # all the way (the factor stops at 1)
    assert anchor.distance() == pytest.approx(0, abs=1e-9)
    assert all(torch.allclose(v, start[k]) for k, v in net.state_dict().items())


def _task(
    tmp_path: Path, teacher: torch.nn.Module, rehearsal_from: int | None, **settings: object
) -> tuple[SegmentationTask, torch.nn.Module]:
    folder = tmp_path / "data" / "models" / "tiny" / "1.0"
    if not folder.exists():
        make_studies(tmp_path / "studies", 2)
        install_base(tmp_path / "data")
    card = load_card(folder)
    prepared = [
        prepare_study(s, card, tmp_path / "cache") for s in find_studies(tmp_path / "studies")
    ]
    s = tiny_job(tmp_path, **settings).settings
    task = SegmentationTask(card, prepared, prepared[:1], s, None, "cpu", teacher, rehearsal_from)
    return task, load_model(folder, "cpu", reuse=False).module.train()


def _loss(task: SegmentationTask, net: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(task.batch_loss(net, np.random.default_rng(5), "cpu"))


def test_distillation_applies_to_rehearsal_patches_only_unless_all(tmp_path: Path) -> None:
    torch.manual_seed(1)
    other = frozen_parent(tiny_unet(seed=7))  # disagrees with the student (seed 0)
    plain, net = _task(tmp_path, other, None, distill=0.0)
    none_rehearsed, _ = _task(
        tmp_path,
        other,
        2,
        distill=1.0,  # both are the reader's
        distill_on="rehearsal",
    )
    all_rehearsed, _ = _task(tmp_path, other, 0, distill=1.0, distill_on="rehearsal")
    on_all, _ = _task(tmp_path, other, 2, distill=1.0, distill_on="all")
    base = _loss(plain, net)
    assert _loss(none_rehearsed, net) == pytest.approx(base)
    assert _loss(all_rehearsed, net) > base + 1e-3
    assert _loss(on_all, net) == pytest.approx(_loss(all_rehearsed, net))
    agreeing, _ = _task(
        tmp_path, frozen_parent(copy.deepcopy(net).eval()), 0, distill=1.0, distill_on="rehearsal"
    )
    net.eval()  # the teacher runs in eval mode: the same outputs, nothing to distil
    assert _loss(agreeing, net) == pytest.approx(_loss(plain, net), abs=1e-5)


def test_fine_tune_with_distillation_and_l2sp_makes_a_valid_version(tmp_path: Path) -> None:
    done, events = run(tiny_job(tmp_path, distill=1.0, distill_on="all", l2sp=20.0))
    assert done is not None and done["version"] == "tiny:1.0.1"
    card = load_card(done["folder"])
    settings = card.validation["fine_tune"]["settings"]
    assert (settings["distill"], settings["distill_on"], settings["l2sp"]) == (1.0, "all", 20.0)
    assert "distillation from tiny" in card.training_data and "L2-SP 20.0" in card.training_data
    model = load_model(done["folder"], "cpu", reuse=False)
    assert model.predict(torch.rand(1, 3, 48, 48).numpy()).shape == (1, 3, 48, 48)
    losses = [e["loss"] for e in events if e["event"] == "epoch"][1:]
    assert all(np.isfinite(v) for v in losses)


def test_unknown_distill_target_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="distill_on 'everything'"):
        run(tiny_job(tmp_path, epochs=1, distill=1.0, distill_on="everything"))


def test_a_work_folder_in_use_by_another_run_is_refused(tmp_path: Path) -> None:
    from medview.ai.training.job import WorkLock

    job = tiny_job(tmp_path, epochs=1)
    Path(job.work).mkdir(parents=True)
    held = WorkLock(Path(job.work))  # another run holds it
    with pytest.raises(InvalidInputError, match="in use by another training run"):
        run(job)
    held.release()
    done, _ = run(job)  # free again; a finished run frees it too
    assert done is not None
    WorkLock(Path(job.work)).release()

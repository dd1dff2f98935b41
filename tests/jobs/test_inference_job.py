"""jobs.inference.infer_job: stages timed, findings at the threshold, reuse without loading,
refusals before loading, and a cancel from another thread that ends the job within a second
and leaves no thread behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from job_driver import drive

from medview.ai.findings.postprocess import findings_for, label_map_at
from medview.ai.runtime.inference import clear_kept
from medview.core.errors import InvalidInputError
from medview.core.jobs import CancelToken, JobCancelled, JobContext
from medview.jobs.inference import infer_job
from tests.ai.seg_models import BRIGHT_NAME, write_bright_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume

    study = generate_demo_study(tmp_path_factory.mktemp("demo"), seed=3, slices=24)
    return load_volume([study.series_dir])


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    clear_kept()
    yield write_bright_model(tmp_path / "data" / "models" / BRIGHT_NAME / "1.0")
    clear_kept()


def test_job_times_each_stage_and_cuts_findings_at_the_threshold(demo, model_dir):
    vol, series = demo
    progress = []
    ctx = JobContext(CancelToken(), progress.append)
    result, yielded = drive(
        infer_job(vol, model_dir, ctx, device="cpu", threshold=0.6, series_key=series.key)
    )
    assert {"load", "preprocess", "predict", "postprocess", "findings"} <= set(result.timings)
    assert result.model_ref == f"{BRIGHT_NAME}:1.0" and result.device == "cpu"
    assert not result.reused and result.threshold == 0.6 and result.findings
    assert yielded[-1].fraction == 1.0 and progress[-1].fraction == 1.0
    assert all(f.threshold == 0.6 and f.model_name == BRIGHT_NAME for f in result.findings)
    labels = result.label_map()
    seg = result.segmentation
    np.testing.assert_array_equal(labels, label_map_at(seg.codes, seg.card, 0.6))
    assert sum(f.voxel_count for f in result.findings) == np.count_nonzero(labels)

    # a new threshold needs no model: same as measuring the kept maps afresh
    lower = result.at_threshold(vol, 0.4)
    assert lower.findings == findings_for(seg, vol, 0.4) and lower.segmentation is seg
    assert sum(f.voxel_count for f in lower.findings) > sum(f.voxel_count for f in result.findings)


def test_second_run_by_registry_reference_reuses_without_loading(demo, model_dir, monkeypatch):
    vol, series = demo
    ctx = JobContext(CancelToken())
    first, _ = drive(infer_job(vol, f"{BRIGHT_NAME}:1.0", ctx, series_key=series.key))

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded again")

    monkeypatch.setattr("medview.ai.runtime.loading.load_model", no_loading)
    t0 = time.perf_counter()
    again, _ = drive(infer_job(vol, BRIGHT_NAME, ctx, series_key=series.key))
    assert again.reused and time.perf_counter() - t0 < 1.0
    assert again.findings == first.findings and "load" not in again.timings


def test_models_that_do_not_fit_are_refused_before_loading(demo, model_dir, monkeypatch):
    from dataclasses import replace

    vol, _ = demo
    monkeypatch.setattr(
        "medview.ai.runtime.loading.load_model",
        lambda *a, **k: pytest.fail("loaded a model that does not fit"),
    )
    mr = replace(vol, metadata=replace(vol.metadata, modality="MR"))
    with pytest.raises(
        InvalidInputError,
        match=r"is a MR series; model bright-seg:1\.0 is made "
        "for CT",
    ):
        drive(infer_job(mr, model_dir, JobContext(CancelToken())))
    with pytest.raises(InvalidInputError, match="no model named 'nonesuch'"):
        drive(infer_job(vol, "nonesuch", JobContext(CancelToken())))
    with pytest.raises(InvalidInputError, match="threshold"):
        drive(infer_job(vol, model_dir, JobContext(CancelToken()), threshold=0))


def test_cancel_from_another_thread_ends_within_a_second_and_leaves_no_thread(demo, model_dir):
    vol, series = demo
    baseline = threading.active_count()
    token = CancelToken()
    started = threading.Event()
    outcome: dict = {}

    def on_progress(p):
        if "slices" in p.message:
            started.set()

    def run():
        try:
            drive(
                infer_job(
                    vol,
                    model_dir,
                    JobContext(token, on_progress),
                    device="cpu",
                    tta=True,
                    series_key=series.key,
                    batch_size=2,
                )
            )
            outcome["end"] = "finished"
        except JobCancelled:
            outcome["end"] = "cancelled"
        outcome["t"] = time.perf_counter()

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(30)
    t_cancel = time.perf_counter()
    token.cancel()
    worker.join(5)
    assert not worker.is_alive() and outcome["end"] == "cancelled"
    assert outcome["t"] - t_cancel < 1.0
    assert threading.active_count() == baseline
    from medview.ai.models.cards import load_card
    from medview.ai.runtime.inference import kept_result

    assert kept_result(vol, load_card(model_dir), True, series.key) is None  # nothing half-kept

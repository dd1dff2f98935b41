"""jobs.version_compare: two versions run as one job on the same series — progress over
both, each run emitted as it is in with its label map, a kept version first and reused, and
a cancel that ends the job."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from job_driver import drive

from medview.ai.runtime.inference import clear_kept
from medview.core.jobs import CancelToken, JobCancelled, JobContext
from medview.jobs.inference import infer_job
from medview.jobs.version_compare import VersionRun, compare_versions_job
from tests.ai.seg_models import BRIGHT_NAME, bright_unet, write_bright_model
from tests.ai.tiny_models import card_dict, write_folder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def volume(demo):
    from medview.io.open_volume import load_volume

    return load_volume([demo.series_dir])


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    clear_kept()
    root = tmp_path / "data" / "models" / BRIGHT_NAME
    net = bright_unet()
    with torch.no_grad():
        net.model[2].conv.bias[1] = -5.0
    b = write_folder(root / "1.1", net, card=card_dict(BRIGHT_NAME, "1.1", input_size=None))
    yield write_bright_model(root / "1.0"), b
    clear_kept()


def test_both_versions_run_in_order_with_progress_over_both(volume, folders):
    vol, series = volume
    progress, events = [], []
    ctx = JobContext(CancelToken(), progress.append, events.append)
    runs, yielded = drive(compare_versions_job(vol, folders, ctx, series_key=series.key))
    assert [r.index for r in runs] == [0, 1] and [type(e) for e in events] == [VersionRun] * 2
    assert [r.result.card.version for r in runs] == ["1.0", "1.1"]
    assert not any(r.result.reused for r in runs)
    for run in runs:
        np.testing.assert_array_equal(run.label_map, run.result.label_map())
    assert np.any(runs[0].label_map != runs[1].label_map)
    fractions = [p.fraction for p in [*progress, *yielded] if p.fraction >= 0]
    assert min(fractions) == 0.0 and max(fractions) == 1.0
    seen = [p.fraction for p in progress if p.fraction >= 0]
    assert any(0 < f < 0.5 for f in seen) and any(0.5 < f < 1 for f in seen)
    assert any(p.message.startswith(f"{BRIGHT_NAME}:1.1: ") for p in progress)


def test_a_kept_version_goes_first_and_is_reused(volume, folders):
    vol, series = volume
    drive(infer_job(vol, folders[1], JobContext(CancelToken()), series_key=series.key))
    events = []
    runs, _ = drive(
        compare_versions_job(
            vol, folders, JobContext(CancelToken(), None, events.append), series_key=series.key
        )
    )
    assert [e.index for e in events] == [1, 0]  # B was kept: shown first
    assert [r.result.reused for r in runs] == [False, True]


def test_a_cancel_between_versions_ends_the_job_after_the_first(volume, folders):
    vol, series = volume
    token = CancelToken()
    events = []

    def cancel_after_first(run):
        events.append(run)
        token.cancel()

    gen = compare_versions_job(
        vol, folders, JobContext(token, None, cancel_after_first), series_key=series.key
    )
    with pytest.raises(JobCancelled):
        drive(gen)
    assert len(events) == 1 and events[0].index == 0

"""infer_job with a focus: the slab around the reader's slice is announced (ctx.emit) before
the rest of the series is computed, then the result covers every slice."""

from __future__ import annotations

from medview.core.jobs import CancelToken, JobContext
from medview.jobs.inference import PartialSegmentation, infer_job
from tests.ai.seg_models import FakeModel, card, volume
from tests.job_driver import drive


def test_focus_slab_is_emitted_first(kept_data_dir):
    vol = volume(shape=(40, 16, 16))
    events = []
    model = FakeModel(card())
    seen_at_emit = []

    def emit(item):
        events.append(item)
        seen_at_emit.append(len(model.shapes))

    ctx = JobContext(CancelToken(), None, emit)
    result, _ = drive(infer_job(vol, model, ctx, focus=30, threshold=0.5))
    partials = [e for e in events if isinstance(e, PartialSegmentation)]
    assert partials[0].span == (22, 39)
    assert seen_at_emit[0] == 17  # only the slab's slices had run (one slice a batch)
    assert len(model.shapes) == 40 and result.segmentation.codes[:22].any()

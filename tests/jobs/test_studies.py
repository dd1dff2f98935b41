import numpy as np
import pytest
from dicom_factory import write_ct_series
from job_driver import drive

from medview.core.jobs import CancelToken, JobCancelled, JobContext
from medview.jobs.studies import FirstSlice, load_job, scan_job


def test_scan_then_load_emits_the_middle_slice_first(tmp_path):
    w = write_ct_series(tmp_path, n=9, shuffle=True)
    events, progress = [], []
    ctx = JobContext(CancelToken(), progress.append, events.append)
    result, _ = drive(scan_job([tmp_path], ctx))
    (series,) = result.series
    volume, yielded = drive(load_job(series, ctx))
    np.testing.assert_array_equal(volume.array, w.expected_array)
    (first,) = [e for e in events if isinstance(e, FirstSlice)]
    assert first.index == 4
    np.testing.assert_array_equal(first.image, w.expected_array[4])
    assert yielded and progress[-1].fraction == 1.0


def test_cancelled_load_raises(tmp_path):
    write_ct_series(tmp_path, n=5)
    token = CancelToken()
    ctx = JobContext(token)
    result, _ = drive(scan_job([tmp_path], ctx))
    token.cancel()
    with pytest.raises(JobCancelled):
        drive(load_job(result.series[0], ctx))


def test_thumbnails_are_the_middle_slice_windowed_and_small(tmp_path):
    from medview.jobs.studies import Thumbnail, thumbnails_job

    w = write_ct_series(tmp_path / "a", n=5, rows=40, cols=50, label="a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bad.dcm").write_bytes(b"not dicom")
    events = []
    ctx = JobContext(CancelToken(), None, events.append)
    result, _ = drive(scan_job([tmp_path], ctx))
    made, _ = drive(thumbnails_job(result.series, ctx, size=16))
    assert made == 1
    (thumb,) = [e for e in events if isinstance(e, Thumbnail)]
    assert thumb.series_key == result.series[0].key
    assert thumb.image.dtype == np.uint8 and max(thumb.image.shape) <= 16
    # file window 40/400: values map linearly from -160..240 HU to 0..255
    hu = w.expected_array[2][::4, ::4].astype(float)
    expected = np.clip((hu + 160) * 255 / 400, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(thumb.image, expected)

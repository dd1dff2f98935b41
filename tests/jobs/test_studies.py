import numpy as np
import pytest
from dicom_factory import write_ct_series
from job_driver import drive

from medview.core.jobs import CancelToken, JobCancelled, JobContext
from medview.jobs.studies import FirstSlice, load_job, preview_file, read_preview, scan_job


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


def test_preview_is_the_middle_file_of_one_folder_and_reads_as_its_own_slice(tmp_path):
    w = write_ct_series(tmp_path, n=9)  # IM0000 .. IM0008: slice k in file k
    (tmp_path / "DICOMDIR").write_bytes(b"")  # never a preview candidate
    path = preview_file([tmp_path])
    assert path == tmp_path / "IM0004.dcm"
    series, image = read_preview(path)
    assert len(series.slices) == 1
    np.testing.assert_array_equal(image, w.expected_array[4])


def test_no_preview_where_only_the_scan_can_tell(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    write_ct_series(one, n=3)
    write_ct_series(two, n=3, label="two")
    (tmp_path / "ct.nii.gz").write_bytes(b"")
    (tmp_path / "study.zip").write_bytes(b"")
    assert preview_file([one, two]) is None  # several paths
    assert preview_file([tmp_path / "ct.nii.gz"]) is None  # an image file opens itself
    assert preview_file([tmp_path / "study.zip"]) is None
    assert preview_file([tmp_path / "missing"]) is None
    write_ct_series(tmp_path / "nested" / "series", n=3)
    assert preview_file([tmp_path / "nested"]) is None  # files only in a folder below
    (tmp_path / "notes.txt").write_text("not DICOM")
    assert read_preview(tmp_path / "notes.txt") is None

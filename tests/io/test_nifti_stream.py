"""io.nifti_stream starts each chunk's writeback as soon as it is written (so the fsync
before the rename waits less, issue 19), and the file holds exactly the volume."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medview.core import geometry
from medview.core.volume import Volume
from medview.io import nifti_stream

pytestmark = pytest.mark.skipif(
    not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this platform"
)


def test_every_chunk_is_queued_for_writing_once_and_the_voxels_are_the_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    array = (np.arange(5 * 6 * 7) * 3 - 100).astype(np.int16).reshape(5, 6, 7)
    affine = geometry.affine_from_plane((1, 2, 3), (1, 0, 0), (0, 1, 0), (0.5, 0.7), (0, 0, 2))
    volume = Volume(array, affine)
    advised: list[tuple[int, int, int]] = []
    monkeypatch.setattr(nifti_stream, "_CHUNK_BYTES", 2 * array[0].nbytes)  # 2 slices a chunk
    monkeypatch.setattr(
        os, "posix_fadvise", lambda fd, off, n, advice: advised.append((off, n, advice))
    )
    path = tmp_path / "v.nii"
    nifti_stream.write_nifti(volume, path)
    slice_bytes = array[0].nbytes
    assert advised == [
        (352, 2 * slice_bytes, os.POSIX_FADV_DONTNEED),
        (352 + 2 * slice_bytes, 2 * slice_bytes, os.POSIX_FADV_DONTNEED),
        (352 + 4 * slice_bytes, slice_bytes, os.POSIX_FADV_DONTNEED),
    ]
    assert path.stat().st_size == 352 + array.nbytes
    back = nib.load(path)
    np.testing.assert_array_equal(np.asarray(back.dataobj).transpose(2, 1, 0), array)

"""jobs.arriving: the place of an arriving file along its series, from its header alone."""

from __future__ import annotations

import pydicom
import pytest

from medview.jobs.arriving import slice_order
from tests.dicom_factory import write_ct_series


@pytest.mark.parametrize(
    "orientation", [(1, 0, 0, 0, 1, 0), (1, 0, 0, 0, 0, -1)], ids=["axial", "coronal"]
)
def test_files_are_placed_in_the_order_the_loader_gives_them(tmp_path, orientation):
    """The same order as the whole series once loaded (Written.paths is in that order)."""
    written = write_ct_series(tmp_path / "s", n=6, orientation=orientation)
    arrived = list(reversed(written.paths[::2])) + written.paths[1::2]
    assert sorted(arrived, key=slice_order) == written.paths


def test_without_a_position_the_instance_number_places_it_and_else_nothing(tmp_path):
    (path,) = write_ct_series(tmp_path / "s", n=1).paths
    ds = pydicom.dcmread(path)
    del ds.ImagePositionPatient
    ds.InstanceNumber = 7
    ds.save_as(path)
    assert slice_order(path) == 7.0
    del ds.InstanceNumber
    ds.save_as(path)
    assert slice_order(path) is None
    (tmp_path / "not.dcm").write_bytes(b"not DICOM")
    assert slice_order(tmp_path / "not.dcm") is None

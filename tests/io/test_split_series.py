"""Series that cannot be one volume, on pydicom's real DICOMDIR (issue 20, points 4 and 5):
a pilot of three orientations and "Routine Brain", whose slices lie 1.25 to 202.5 mm apart.
The warning says what differs, once per series in `medview info`; the brain is shown as
stacks whose every image sits where its file says."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from medview.commands.info import scan_text
from medview.core.series import ScanResult
from medview.io.dicom.index import scan

UID_BRAIN = "1.3.6.1.4.1.5962.1.1.0.0.0.1196530851.28319.0.2"
UID_PILOT = "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.17"


@pytest.fixture(scope="module")
def result() -> ScanResult:
    return scan([get_testdata_file("DICOMDIR")])


def test_the_pilot_warning_names_the_orientations(result):
    stacks = [s for s in result.series if s.series_instance_uid == UID_PILOT]
    assert len(stacks) == 3
    (message,) = {w.message for s in stacks for w in s.warnings if w.code == "split_series"}
    assert message == (
        "one series holds images of different orientation (stack 1: coronal, "
        "1 image; stack 2: sagittal, 1 image; stack 3: axial, 1 image); shown "
        "as 3 stacks"
    )


def test_routine_brain_is_two_stacks_at_true_positions(result):
    stacks = [s for s in result.series if s.series_instance_uid == UID_BRAIN]
    assert [len(s.slices) for s in stacks] == [3, 1]
    assert [s.stack_label for s in stacks] == ["stack 1 of 2", "stack 2 of 2"]
    for s in stacks:
        assert [w.code for w in s.warnings] == ["irregular_spacing_split"]
        for k, f in enumerate(s.slices):
            np.testing.assert_allclose(
                s.affine[:3, 0] * k + s.affine[:3, 3], f.position_lps, atol=1e-4
            )
    assert stacks[0].spacing_mm[0] == pytest.approx(1.25)


def test_info_says_a_series_warning_once_not_once_per_stack(result):
    text = scan_text(result)
    series_of: dict[str, set[str]] = {}
    for s in result.series:
        for w in s.warnings:
            series_of.setdefault(w.message, set()).add(s.series_instance_uid)
    assert series_of
    for message, uids in series_of.items():
        assert text.count(message) == len(uids), message
    assert text.count("shown as 3 stacks") == 2  # two pilot series of 3 stacks, a line each

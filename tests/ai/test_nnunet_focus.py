"""Where nnU-Net's focus crop lies (runtime.nnunet_models.focus_slab), without nnU-Net: the
slices kept around the reader's slice, run with half a patch of context either side and at
least one patch deep, shifted inwards at the study's ends; none when it would be the whole
study. (The run through nnU-Net's predictor is in test_nnunet_models.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.volume import Volume, VolumeMetadata


class Patch:
    """What focus_slab asks of an NnunetModel: a patch 20 study slices deep."""

    def patch_slices(self, spacing):
        return 20


@pytest.mark.parametrize(
    ("slices", "focus", "expected"),
    [
        (100, 50, ((32, 69), (42, 59))),  # 10 slices of context either side
        (100, 2, ((0, 31), (0, 11))),  # at the first slice: all the context after it
        (100, 99, ((71, 100), (91, 100))),  # at the last one: before it
        (30, 15, None),  # the crop would be the whole study
        (100, None, None),
    ],
)
def test_the_crop_around_the_focus(slices, focus, expected):
    from medview.ai.runtime.nnunet_models import focus_slab

    volume = Volume(np.zeros((slices, 4, 4), np.int16), np.eye(4), VolumeMetadata())
    found = focus_slab(Patch(), volume, focus)
    assert found == expected
    if found is not None:
        (run0, run1), (keep0, keep1) = found
        assert run0 <= keep0 < keep1 <= run1 and run1 - run0 >= 20

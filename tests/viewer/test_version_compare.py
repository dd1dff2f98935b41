"""The comparison of two model versions without Qt: which findings only one version has,
the layers each side draws, and two states kept in step."""

from dataclasses import replace

import numpy as np

from medview.core.volume import Volume, VolumeMetadata
from medview.viewer import state as st
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from medview.viewer.version_compare import (
    VERSION_COLOURS,
    LinkedStates,
    differences,
    touches,
    version_layers,
)
from tests.viewer.test_finding_store import finding

SHAPE = (12, 48, 48)


def mask(*boxes):
    out = np.zeros(SHAPE, np.uint8)
    for (k0, r0, c0), (k1, r1, c1), value in boxes:
        out[k0 : k1 + 1, r0 : r1 + 1, c0 : c1 + 1] = value
    return out


def box_finding(fid, first, last, label=1):
    centre = tuple((a + b) / 2 for a, b in zip(first, last, strict=True))
    return replace(
        finding(fid, centre, label=label), bbox_index=(first, last), slice_range=(first[0], last[0])
    )


def test_findings_the_other_mask_does_not_touch_are_listed_per_side():
    # A: two nodules; B: the first one (a little shifted), a third, and a liver lesion
    # lying where A's second nodule is (any label counts as found)
    a = mask(((3, 5, 5), (5, 10, 10), 1), ((8, 30, 30), (9, 35, 35), 1))
    b = mask(
        ((4, 8, 8), (6, 12, 12), 1), ((1, 40, 5), (1, 44, 9), 1), ((8, 33, 33), (8, 36, 36), 2)
    )
    fa = [box_finding(1, (3, 5, 5), (5, 10, 10)), box_finding(2, (8, 30, 30), (9, 35, 35))]
    fb = [
        box_finding(1, (4, 8, 8), (6, 12, 12)),
        box_finding(2, (1, 40, 5), (1, 44, 9)),
        box_finding(3, (8, 33, 33), (8, 36, 36), label=2),
    ]
    assert touches(fa[0], a, b) and touches(fa[1], a, b)
    found = differences([fa, fb], [a, b])
    assert [(d.side, d.finding.id) for d in found] == [(1, 2)]
    assert found[0].describe() == "only B: label 1, 8.0 mm, image 2"
    assert differences([fa, fa], [a, a]) == []  # the same version twice: nothing differs


def test_each_side_draws_its_mask_and_outlines_the_others_without_copies():
    labels = mask(((1, 1, 1), (2, 4, 4), 2))
    own, outline = version_layers("seg:1.1", {1: (255, 0, 0), 2: (0, 255, 0)}, labels, 1)
    assert own.array is labels and outline.array is labels
    assert own.made_by == outline.made_by == "seg:1.1" and "(B)" in own.name
    assert not own.outline and own.colour_of(2) == (0, 255, 0)
    assert outline.outline and outline.colour_of(1) == outline.colour_of(2) == VERSION_COLOURS[1]


def test_linked_states_follow_each_other_once():
    volume = Volume(np.zeros(SHAPE, np.int16), np.eye(4), VolumeMetadata(modality="CT"))
    a, b = ViewerState(), ViewerState()
    for s in (a, b):
        s.set_volume(volume, "k")
    seen = []
    b.subscribe(seen.append)
    link = LinkedStates([a, b])
    a.step(Plane.AXIAL, 2)
    assert b.slice_index(Plane.AXIAL) == a.slice_index(Plane.AXIAL) and seen == [st.CURSOR]
    b.set_cursor_index(np.array([1, 2, 3]))
    assert np.array_equal(a.cursor_ijk, [1, 2, 3])
    a.set_window(-600, 1500, "Lung")
    assert b.window == a.window
    b.toggle_invert()
    assert a.invert and b.invert
    a.toggle_overlays()
    a.set_crosshair_linked(False)
    assert not b.show_overlays and not b.crosshair_linked
    link.close()
    a.step(Plane.AXIAL, 1)
    assert b.slice_index(Plane.AXIAL) != a.slice_index(Plane.AXIAL)

"""AIResults without Qt: the layers made from a model's result, the threshold moved without
the model, decisions kept, going and zooming to a finding, and the AI notes in the corners."""

import itertools
import time

import numpy as np
import pytest
import torch

from medview.core.jobs import CancelToken, JobContext
from medview.core.volume import Volume, VolumeMetadata
from medview.jobs.inference import infer_job
from medview.viewer.ai_results import (
    AIResults,
    explanation_layer,
    focus_rect_mm,
    window_for_label,
)
from medview.viewer.annotations import ai_notes, corner_lines
from medview.viewer.finding_store import FindingStore
from medview.viewer.layers import label_outline
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState
from tests.ai.seg_models import FakeModel, assert_map_is_findings, card
from tests.viewer.memory_store_file import MemoryStoreFile

torch.set_num_threads(1)
KEY = "series-blobs"


@pytest.fixture(autouse=True)
def _fresh(kept_data_dir):
    """Every test: its own data folder, no kept result from another test."""


def blobs() -> Volume:
    """Air with two bright balls (FakeModel: p1 = 0.8) and a dim one (p1 about 0.4)."""
    a = np.full((12, 40, 48), -1000, np.int16)
    z, y, x = np.mgrid[:12, :40, :48]
    for (cz, cy, cx), r, hu in (
        ((3, 10, 12), 4, 400),
        ((8, 28, 34), 6, 400),
        ((6, 30, 10), 4, -300),
    ):
        a[((z - cz) * 2) ** 2 + ((y - cy) * 0.8) ** 2 + ((x - cx) * 0.8) ** 2 <= r * r] = hu
    affine = np.diag([2.0, 0.8, 0.8, 1.0])
    affine[:3, 3] = (-20.0, -16.0, 40.0)
    return Volume(a, affine, VolumeMetadata(modality="CT", source="blobs", series_number=3))


def run(volume: Volume, threshold: float = 0.5, tta: bool = False, card_=None):
    gen = infer_job(
        volume,
        FakeModel(card_ or card()),
        JobContext(CancelToken()),
        tta=tta,
        threshold=threshold,
        series_key=KEY,
    )
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


@pytest.fixture
def shown():
    state = ViewerState()
    state.set_volume(blobs(), KEY)
    return AIResults(state, run(state.volume), FindingStore(KEY, MemoryStoreFile()))


def test_layers_name_the_model_and_share_the_volume_grid(shown):
    state = shown.state
    assert [x.name for x in state.layers] == [
        "AI fake-seg:1.0 — probability",
        "AI fake-seg:1.0 — findings",
    ]
    assert all(
        x.made_by == "fake-seg:1.0" and x.array.shape == state.volume.shape for x in state.layers
    )
    assert shown.heat_layer.kind == "heatmap" and shown.mask_layer.kind == "labels"
    assert shown.mask_layer.label_colours == {1: (255, 0, 0), 2: (0, 255, 0)}
    assert len(shown.findings) == 2 and shown.uncertainty_layer is None
    assert np.array_equal(shown.mask_layer.array, shown.result.label_map())
    assert ai_notes(state) == ["AI fake-seg:1.0", "not a diagnosis"]
    assert corner_lines(state, Plane.AXIAL, 1.0)["br"][-2:] == ai_notes(state)
    for layer in state.layers:
        layer.visible = False
    assert ai_notes(state) == []


def at(shown: AIResults, threshold: float) -> None:
    """Mask and findings at a threshold, as the viewer does it (findings by a job there)."""
    shown.set_threshold(threshold)
    assert shown.show_findings(shown.result.at_threshold(shown.volume, shown.threshold))


def test_threshold_moves_mask_in_place_and_fast_and_findings_follow(shown):
    mask, calls = shown.mask_layer.array, []
    shown.state.subscribe(calls.append)
    seconds = shown.set_threshold(0.3)
    assert shown.mask_layer.array is mask and shown.mask_layer.array is mask and seconds < 0.3
    assert "layers" in calls and shown.threshold == pytest.approx(0.3)
    assert len(shown.findings) == 2  # not yet measured at 0.3
    stale = shown.result.at_threshold(shown.volume, 0.4)
    assert not shown.show_findings(stale)  # the slider has moved past 0.4
    assert shown.show_findings(shown.result.at_threshold(shown.volume, 0.3))
    assert len(shown.findings) == 3 and "at p ≥ 0.30" in shown.summary()
    at_03 = int((mask > 0).sum())
    at(shown, 0.7)
    assert (mask > 0).sum() < at_03 and len(shown.findings) == 2
    assert shown.set_threshold(2.0) < 1 and shown.threshold == 0.95  # clamped to the slider


def test_the_settled_mask_holds_the_findings_a_postprocess_keeps_at_every_threshold():
    """A card whose postprocess drops the small balls: the mask the slider draws at once
    may show them, the mask once the findings arrive shows exactly the listed regions."""
    state = ViewerState()
    state.set_volume(blobs(), KEY)
    shown = AIResults(
        state, run(state.volume, card_=card(postprocess={"min_component_voxels": 300}))
    )
    mask, seg = shown.mask_layer.array, shown.result.segmentation
    assert len(shown.findings) == 1 and shown.findings[0].voxel_count == 679
    assert_map_is_findings(mask, shown.findings)
    assert (seg.label_map(0.5) > 0).sum() > (mask > 0).sum()  # the small bright ball
    calls = []
    state.subscribe(calls.append)
    shown.set_threshold(0.3)  # instant: every region, the dim ball too
    assert np.array_equal(mask, seg.label_map(0.3))
    calls.clear()
    assert shown.show_findings(shown.result.at_threshold(shown.volume, 0.3))
    assert "layers" in calls and mask is shown.mask_layer.array
    assert_map_is_findings(mask, shown.findings)
    for threshold in (0.7, 0.5, 0.3):
        at(shown, threshold)
        assert len(shown.findings) == 1
        assert_map_is_findings(mask, shown.findings)
    shown.set_threshold(0.6)
    shown.set_threshold(0.3)  # back at the findings' threshold: settled at once
    assert_map_is_findings(mask, shown.findings)
    # a card without a postprocess keeps the plain map
    plain = run(state.volume, card_=card(name="plain-seg"))
    assert plain.regions is None and not plain.prune(mask.copy())
    assert np.array_equal(plain.label_map(), seg.label_map(0.5)) and len(plain.findings) == 2


def test_heatmap_per_label_or_max_decoded_per_plane_and_mask_modes(shown):
    seg, heat = shown.result.segmentation, shown.heat_layer
    assert heat.array.shape == shown.volume.shape and heat.heat_scale() == 255.0
    pm = shown.state.maps[Plane.CORONAL]
    assert np.array_equal(pm.image(heat.array, 28), pm.image(seg.max_probability(), 28))
    assert heat.array[3].max() >= 200  # p1 = 0.8 on the bright ball
    shown.set_heat_label(2)
    assert np.array_equal(heat.array[3], seg.probability(2)[3])
    assert heat.array[3].max() < 100  # label 2 is 0.2 x the neighbours there
    shown.set_mask_mode("outline")
    assert shown.mask_layer.outline and shown.mask_layer.visible
    shown.set_mask_mode("off")
    assert not shown.mask_layer.visible
    shown.state.remove_layer(shown.mask_layer)  # as the Layers panel does
    shown.set_mask_mode("filled")
    assert any(x is shown.mask_layer for x in shown.state.layers)
    assert not shown.mask_layer.outline
    with pytest.raises(ValueError):
        shown.set_mask_mode("dotted")


def test_outline_keeps_only_the_edges_of_each_region():
    a = np.zeros((9, 9), np.uint8)
    a[2:7, 2:7] = 1
    edge = label_outline(a)
    assert edge[4, 4] == 0 and edge[2, 4] == 1 and edge.sum() == 16
    assert label_outline(np.zeros((4, 4), np.uint8)).sum() == 0


def test_decisions_are_kept_and_come_back_at_another_threshold(shown):
    first = shown.findings[0]
    assert shown.decide(first.id, "accepted").decision == "accepted"
    assert shown.decide(999, "accepted") is None
    at(shown, 0.3)
    assert sum(f.decision == "accepted" for f in shown.findings) == 1
    again = AIResults(shown.state, run(shown.state.volume), FindingStore(KEY, shown.store.file))
    assert [f.decision for f in again.findings] == ["accepted", "pending"]
    assert "1 accepted" in again.summary()


def test_go_to_puts_the_crosshair_on_the_centroid_and_the_box_in_every_plane(shown):
    f = shown.findings[1]
    shown.go_to(f)
    assert np.array_equal(shown.state.cursor_ijk, np.round(f.centroid_index))
    for plane in Plane:
        pm = shown.state.maps[plane]
        x, y, w, h = focus_rect_mm(f, pm)
        _, row, col = pm.from_index(np.asarray(f.centroid_index))
        centre = shown.state.maps[plane]
        assert x < (col + 0.5) * centre.pixel_mm[1] < x + w
        assert y < (row + 0.5) * centre.pixel_mm[0] < y + h
        assert w == pytest.approx(h)  # a square on the finding: it fills a third of it
        first, last = f.bbox_index
        box = [
            pm.from_index(np.asarray(c, float))[1:]
            for c in itertools.product(*zip(first, last, strict=True))
        ]
        size_mm = max(
            (max(b[1] for b in box) - min(b[1] for b in box) + 1) * pm.pixel_mm[1],
            (max(b[0] for b in box) - min(b[0] for b in box) + 1) * pm.pixel_mm[0],
        )
        whole = max(n * mm for n, mm in zip(pm.screen_shape, pm.pixel_mm, strict=True))
        assert w == pytest.approx(min(3 * size_mm, whole))


def test_focus_zoom_is_capped_at_4_screen_pixels_per_image_pixel(shown):
    """A small finding in a big view fills less than a third rather than showing pixels as
    blocks; never zoomed out past the whole image either (issue 20, point 6)."""
    f = min(shown.findings, key=lambda x: x.volume_ml)
    pm = shown.state.maps[Plane.AXIAL]
    free = focus_rect_mm(f, pm)[2]
    view = (4000.0, 3000.0)  # a wall display: a third would be far past 4x
    w = focus_rect_mm(f, pm, view)[2]
    assert w > free
    per_mm = min(view) / w  # screen pixels per mm
    (rows, cols), (row_mm, col_mm) = pm.screen_shape, pm.pixel_mm
    fit = min(view[0] / (cols * col_mm), view[1] / (rows * row_mm))
    assert per_mm == pytest.approx(max(4.0 / min(row_mm, col_mm), fit))


@pytest.mark.parametrize(
    ("label", "modality", "preset"),
    [
        ("lung nodule", "CT", "Lung"),
        ("Liver lesion", "CT", "Liver"),
        ("rib fracture", "CT", "Bone"),
        ("renal cyst", "CT", "Abdomen"),
        ("lesion", "CT", None),
        ("lung nodule", "MR", None),
    ],
)
def test_the_window_a_label_calls_for(label, modality, preset):
    window = window_for_label(label, modality)
    assert (window.name if window else None) == preset


def test_tta_adds_an_uncertainty_layer_when_asked(shown):
    state = shown.state
    shown.detach()
    assert state.layers == []
    tta = AIResults(state, run(state.volume, tta=True))
    assert tta.tta and tta.uncertainty_layer not in state.layers
    tta.show(tta.uncertainty_layer, True)
    assert state.layers[-1] is tta.uncertainty_layer and tta.uncertainty_layer.visible
    assert all(f.uncertainty is not None for f in tta.findings)


def test_a_result_belongs_to_its_series(shown):
    shown.state.set_volume(blobs(), "another")
    assert shown.state.layers == []  # the state drops the layers of the series it leaves
    with pytest.raises(ValueError):
        AIResults(ViewerState(), shown.result)


def test_each_model_shown_is_named_on_its_own_line(shown):
    shown.state.add_layer(
        explanation_layer(shown.volume.shape, 4, np.ones((40, 48)), "slice-classifier:1.0")
    )
    assert ai_notes(shown.state) == [
        "AI fake-seg:1.0",
        "AI slice-classifier:1.0",
        "not a diagnosis",
    ]


def test_explanation_layer_fills_one_slice_only():
    heat = np.linspace(0, 1, 40 * 48, dtype=np.float32).reshape(40, 48)
    layer = explanation_layer((12, 40, 48), 5, heat, "slice-classifier:1.0")
    assert layer.kind == "heatmap" and layer.made_by == "slice-classifier:1.0"
    assert "Grad-CAM, slice 6" in layer.name
    assert layer.array[5].max() == 255 and layer.array[[0, 4, 6, 11]].max() == 0


def test_threshold_speed_on_a_full_size_result():
    """The slider's budget (0.3 s) on a 100-slice 512 x 512 result with a few findings."""
    a = np.full((100, 512, 512), -1000, np.int16)
    a[40:46, 200:215, 300:318] = 400
    a[70:74, 100:110, 100:108] = 400
    vol = Volume(a, np.diag([1.5, 0.7, 0.7, 1.0]), VolumeMetadata(modality="CT"))
    state = ViewerState()
    state.set_volume(vol, "big")
    shown = AIResults(state, run(vol))
    t0 = time.perf_counter()
    at(shown, 0.35)
    assert time.perf_counter() - t0 < 0.3 and len(shown.findings) == 2

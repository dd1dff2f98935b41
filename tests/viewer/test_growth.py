"""Prior comparison on the demo study and its 6-month follow-up (demo/follow_up.py): the
ground-truth lesions of both, aligned by the body's centre, pair as the generator made them
and report its known growth; the new and the gone lesion are marked. The same holds for
findings measured by the AI post-processing (ai.findings) from a perfect model's output."""

import json
import math

import numpy as np
import pytest

from medview.demo import generate_demo_study
from medview.io.open_volume import load_volume
from medview.viewer.growth import (
    Lesion,
    Pair,
    alignment,
    body_centre_xy,
    growth_rows,
    lesions_from_findings,
    pair_findings,
)

MONTHS = 6


def lesions_of(meta: dict) -> list[Lesion]:
    return [
        Lesion(tuple(x["centre_lps_mm"]), x["diameter_mm"], x["volume_ml"], str(x["id"]))
        for x in meta["lesions"]
    ]


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("prior")
    out = []
    for name, months in (("then", None), ("now", MONTHS)):
        s = generate_demo_study(root / name, seed=0, slices=120, follow_up_months=months)
        vol = load_volume([s.series_dir])
        vol = vol[0] if isinstance(vol, tuple) else vol
        out.append((json.loads(s.lesions_json.read_text()), vol, s.labels_path))
    return out


def test_follow_up_pairs_with_the_known_growth(studies):
    (then_meta, then_vol, _), (now_meta, now_vol, _) = studies
    truth = now_meta["follow_up"]
    shift = alignment(
        body_centre_xy(then_vol.array, then_vol.affine),
        body_centre_xy(now_vol.array, now_vol.affine),
    )
    assert shift[0] == pytest.approx(truth["shift_mm"][0], abs=1.0)  # the patient moved 6 mm
    pairs = pair_findings(lesions_of(then_meta), lesions_of(now_meta), shift)
    by_now = {p.now.name: p for p in pairs if p.now}
    days = MONTHS * 30.44
    for t in truth["lesions"]:
        pair = by_now[str(t["id"])]
        if t["baseline_id"] is None:
            assert pair.status == "new"
            continue
        assert pair.status == "paired" and pair.then.name == str(t["baseline_id"])
        measured = pair.now.volume_ml / pair.then.volume_ml
        # voxelised volumes: a 5 mm nodule of ~100 voxels is within 10 %, larger ones 5 %
        tol = 0.05 if pair.then.volume_ml >= 0.5 else 0.10
        assert measured == pytest.approx(t["volume_factor"], rel=tol)
        assert pair.doubling_days(days) == pytest.approx(
            t["doubling_days"], rel=3 * tol / math.log(measured)
        )
    gone = [p for p in pairs if p.status == "gone"]
    assert [p.then.name for p in gone] == [str(i) for i in truth["gone_baseline_ids"]]
    rows = growth_rows(pairs, days)
    assert {r["status"] for r in rows} == {"paired", "new", "gone"}


def test_without_alignment_the_moved_patient_still_pairs_within_reach():
    a = Lesion((0.0, 0.0, 0.0), 8.0, 0.27)
    b = Lesion((6.0, 0.0, 0.0), 10.0, 0.52)
    far = Lesion((60.0, 0.0, 0.0), 6.0, 0.1)
    pairs = pair_findings([a], [b, far], np.zeros(3))
    assert [p.status for p in pairs] == ["paired", "new"]
    assert pairs[0].volume_change_pct == pytest.approx(92.6, abs=0.1)


def test_shrinking_has_no_doubling_time():
    p = Pair(Lesion((0, 0, 0), 10, 0.5), Lesion((0, 0, 0), 8, 0.25))
    assert p.volume_change_pct == -50.0 and p.doubling_days(180) is None
    assert Pair(Lesion((0, 0, 0), 10, 0.5), Lesion((0, 0, 0), 12.6, 1.0)).doubling_days(
        180
    ) == pytest.approx(180)


def ai_findings(volume, labels_path):
    """The findings the AI post-processing measures (ai.findings) from a perfect model's
    output: the truth label map as probabilities, under the bundled lesion model's card."""
    import SimpleITK as sitk

    from medview.ai.findings.postprocess import encode, findings_from
    from medview.ai.models.cards import load_card
    from medview.ai.models.registry import bundled_models_dir

    card = load_card(bundled_models_dir() / "lesion-seg" / "1.0")
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(labels_path)))
    values = [lab.value for lab in card.labels]
    probs = np.stack([(labels == v).astype(np.float32) for v in values], axis=1)
    return list(findings_from(encode(probs), volume, card, 0.5))


def test_ai_findings_pair_with_the_known_growth(studies):
    (_, then_vol, then_labels), (now_meta, now_vol, now_labels) = studies
    then_f = lesions_from_findings(ai_findings(then_vol, then_labels))
    now_f = lesions_from_findings(ai_findings(now_vol, now_labels))
    truth = now_meta["follow_up"]
    assert len(now_f) == len(truth["lesions"])
    shift = alignment(
        body_centre_xy(then_vol.array, then_vol.affine),
        body_centre_xy(now_vol.array, now_vol.affine),
    )
    pairs = pair_findings(then_f, now_f, shift)
    assert sorted(p.status for p in pairs).count("new") == 1
    assert sorted(p.status for p in pairs).count("gone") == 1
    # each paired finding's growth is one of the known factors (AI ids follow position)
    factors = [t["volume_factor"] for t in truth["lesions"] if t["volume_factor"]]
    checked = 0
    for p in pairs:
        if p.status == "paired" and p.then.volume_ml >= 0.5:
            ratio = p.now.volume_ml / p.then.volume_ml
            assert min(abs(ratio / f - 1) for f in factors) <= 0.05
            checked += 1
    assert checked >= 2

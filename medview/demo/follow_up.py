"""A follow-up of a demo study: the same synthetic patient some months later, lying slightly
elsewhere on the table, each lesion grown by a known factor, one lesion gone and one new.

What a reader (or MedView's prior comparison) must recover is written as ground truth in the
follow-up's lesions.json under "follow_up": per follow-up lesion its baseline id (None for the
new one), the volume factor it was grown by, and the baseline id of the lesion that went.
Growth follows a volume doubling time drawn per lesion (100-500 days, the range of growing
malignant nodules in the Fleischner literature), so factor = 2 ** (days / doubling time)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medview.demo.lesions import Lesion, place_lesions
from medview.demo.output import LESIONS_NAME
from medview.demo.phantom import Phantom
from medview.demo.shapes import Ellipsoid

DAYS_PER_MONTH = 30.44
_STREAM_FOLLOW_UP = 14
# how far the patient lies from where they lay before: lateral (x) and along the table (z)
SHIFT_MM = (6.0, -9.0)


@dataclass(frozen=True)
class FollowUp:
    months: float
    shift_mm: tuple[float, float] = SHIFT_MM  # (x, z) of the patient against the scanner


def moved_phantom(phantom: Phantom, dx: float) -> Phantom:
    """The same patient lying dx mm further to their left."""
    return replace(phantom, patient=replace(phantom.patient, shift_x=phantom.patient.shift_x + dx))


def _moved_grown(les: Lesion, shift: np.ndarray, factor: float) -> Lesion:
    linear = factor ** (1 / 3)
    shape = Ellipsoid(
        tuple(float(v) for v in np.asarray(les.shape.centre) + shift), les.shape.m / linear**2
    )
    return replace(les, shape=shape, diameter_mm=round(les.diameter_mm * linear, 2))


def follow_up_lesions(
    baseline: list[Lesion], phantom: Phantom, seed: int, fu: FollowUp, z_range: tuple[float, float]
) -> tuple[list[Lesion], dict]:
    """The follow-up's lesions (in the moved patient: `phantom` is already moved; z_range the
    baseline's scanned range) and the truth that pairs them with the baseline's."""
    rng = np.random.default_rng([seed, _STREAM_FOLLOW_UP, round(fu.months * 100)])
    dx, dz = fu.shift_mm
    shift = np.array([dx, 0.0, 0.0])  # along the table, the scan range moves instead
    gone = int(baseline[int(rng.integers(len(baseline)))].id) if len(baseline) > 1 else None
    days = fu.months * DAYS_PER_MONTH
    out: list[Lesion] = []
    pairs = []
    for les in baseline:
        if les.id == gone:
            continue
        doubling = float(rng.uniform(100, 500))
        factor = 2 ** (days / doubling)
        out.append(replace(_moved_grown(les, shift, factor), id=len(out) + 1))
        pairs.append(
            {
                "id": len(out),
                "baseline_id": les.id,
                "volume_factor": round(factor, 4),
                "doubling_days": round(doubling, 1),
            }
        )
    for attempt in range(50):  # one new lesion, clear of the others
        new = place_lesions(
            phantom,
            np.random.default_rng([seed, _STREAM_FOLLOW_UP, attempt]),
            1,
            z_range,
            strict=False,
        )
        if new and all(
            math.dist(new[0].shape.centre, o.shape.centre) > new[0].radius + o.radius * 1.3 + 8
            for o in out
        ):
            out.append(replace(new[0], id=len(out) + 1))
            pairs.append(
                {"id": len(out), "baseline_id": None, "volume_factor": None, "doubling_days": None}
            )
            break
    return out, {
        "months": fu.months,
        "shift_mm": [dx, dz],
        "lesions": pairs,
        "gone_baseline_ids": [gone] if gone is not None else [],
    }


def read_lesions(study_folder: Path) -> list[dict] | None:
    """The lesion entries of a demo study's lesions.json, None when the folder has none;
    ValueError with one sentence naming the file when it cannot be read as one."""
    path = Path(study_folder) / LESIONS_NAME
    if not path.is_file():
        return None
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["lesions"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path.name}: not a demo study's lesion list ({exc})") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path.name}: its 'lesions' is not a list")
    return entries

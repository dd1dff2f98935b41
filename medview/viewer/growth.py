"""Findings of a prior and a current study paired by position, with the measures the
Fleischner and Lung-RADS guidelines use for nodules: diameter and volume then and now, the
change in percent and the volume doubling time (VDT = days x ln 2 / ln(V_now / V_then)).

The two studies are aligned first: across the table (x, y) by the centre of the body, since a
patient never lies in the same place twice; along the table (z) by table position, the
patient coordinate the scanner writes, plus an offset the reader may set (a breath held
deeper). Each current finding then takes the nearest unpaired prior finding within reach
(its own size or PAIR_REACH_MM, whichever is larger); the rest are new or gone."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.demo.follow_up import read_lesions

PAIR_REACH_MM = 10.0
BODY_HU = -500.0  # denser than this is body (not air, not lung at its darkest)


@dataclass(frozen=True)
class Lesion:
    """One finding as the pairing needs it: where (LPS mm) and how big."""

    centre_lps_mm: tuple[float, float, float]
    diameter_mm: float
    volume_ml: float
    name: str = ""


@dataclass(frozen=True)
class Pair:
    then: Lesion | None  # None: new
    now: Lesion | None  # None: gone

    @property
    def status(self) -> str:
        return "new" if self.then is None else "gone" if self.now is None else "paired"

    @property
    def volume_change_pct(self) -> float | None:
        if self.then is None or self.now is None or self.then.volume_ml <= 0:
            return None
        return 100.0 * (self.now.volume_ml / self.then.volume_ml - 1.0)

    def doubling_days(self, days: float) -> float | None:
        """Volume doubling time; None when the volume did not change (or shrank: the
        guidelines then speak of no growth, not of a negative doubling time)."""
        if self.then is None or self.now is None or days <= 0:
            return None
        ratio = self.now.volume_ml / self.then.volume_ml if self.then.volume_ml > 0 else 0
        return days * math.log(2) / math.log(ratio) if ratio > 1 else None


def body_centre_xy(array: np.ndarray, affine: np.ndarray, step: int = 4) -> np.ndarray:
    """LPS (x, y) of the centroid of the body (voxels above BODY_HU), from every `step`th
    voxel; the table is thin and far below, so it barely moves the centroid."""
    sub = array[::step, ::step, ::step]
    idx = np.argwhere(sub > BODY_HU).astype(float) * step
    if not len(idx):
        return np.zeros(2)
    lps = affine[:3, :3] @ idx.mean(0) + affine[:3, 3]
    return lps[:2]


def pair_findings(then: list[Lesion], now: list[Lesion], shift_lps_mm: np.ndarray) -> list[Pair]:
    """Pairs (then, now) after moving the prior's findings by `shift_lps_mm` (now - then
    alignment); current order first, then the gone ones."""
    shift = np.asarray(shift_lps_mm, float)
    free = list(range(len(then)))
    pairs = []
    candidates = sorted(
        (
            (
                float(
                    np.linalg.norm(
                        np.asarray(b.centre_lps_mm) - np.asarray(a.centre_lps_mm) - shift
                    )
                ),
                i,
                j,
            )
            for j, b in enumerate(now)
            for i, a in enumerate(then)
        )
    )
    taken_now: dict[int, int] = {}
    for dist, i, j in candidates:
        reach = max(PAIR_REACH_MM, then[i].diameter_mm, now[j].diameter_mm)
        if dist <= reach and i in free and j not in taken_now:
            taken_now[j] = i
            free.remove(i)
    for j, b in enumerate(now):
        pairs.append(Pair(then[taken_now[j]] if j in taken_now else None, b))
    pairs.extend(Pair(then[i], None) for i in free)
    return pairs


def alignment(then_xy: np.ndarray, now_xy: np.ndarray, z_offset_mm: float = 0.0) -> np.ndarray:
    """The now - then shift: body centres across the table, the reader's offset along it."""
    dx, dy = np.asarray(now_xy, float) - np.asarray(then_xy, float)
    return np.array([dx, dy, float(z_offset_mm)])


def growth_rows(pairs: list[Pair], days: float) -> list[dict]:
    """What the prior-comparison list shows, one dict per pair."""
    rows = []
    for p in pairs:
        change = p.volume_change_pct
        vdt = p.doubling_days(days)
        rows.append(
            {
                "status": p.status,
                # a gone one's name is the prior's (each study numbers its own findings)
                "name": p.now.name if p.now else f"{p.then.name} (prior)",
                "diameter_then_mm": p.then.diameter_mm if p.then else None,
                "diameter_now_mm": p.now.diameter_mm if p.now else None,
                "volume_then_ml": p.then.volume_ml if p.then else None,
                "volume_now_ml": p.now.volume_ml if p.now else None,
                "volume_change_pct": None if change is None else round(change, 1),
                "doubling_days": None if vdt is None else round(vdt),
            }
        )
    return rows


def days_between(then_date: str, now_date: str) -> float | None:
    """Days from one DICOM date (YYYYMMDD) to another; None when either is missing."""
    try:
        a = dt.datetime.strptime(then_date, "%Y%m%d").date()
        b = dt.datetime.strptime(now_date, "%Y%m%d").date()
    except ValueError:
        return None
    return float((b - a).days)


def lesions_from_findings(findings: list) -> list[Lesion]:
    """An AI result's findings (core.findings.Finding) as the pairing needs them."""
    return [
        Lesion(
            tuple(f.centroid_lps),
            f.longest_axial_diameter_mm,
            f.volume_ml,
            f"{f.label_name} {f.id}",
        )
        for f in findings
    ]


def truth_lesions(study_folder: Path) -> list[Lesion] | None:
    """The ground-truth lesions of a demo study (its lesions.json, read by demo.follow_up),
    or None when the folder has none; ValueError with one sentence for a broken list."""
    entries = read_lesions(study_folder)
    if entries is None:
        return None
    try:
        return [
            Lesion(
                tuple(float(v) for v in x["centre_lps_mm"]),
                float(x["diameter_mm"]),
                float(x["volume_ml"]),
                f"{x['class'].replace('_', ' ')} {x['id']}",
            )
            for x in entries
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"lesions.json: not a demo study's lesion list ({exc})") from None

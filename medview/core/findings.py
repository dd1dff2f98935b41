"""Finding: one connected region of a model's output, as a radiologist reviews it.

AI output never merges silently with human labels: a finding carries the model name and
version that made it and the reader's decision ("pending" until someone accepts or rejects
it). Decisions are what the annotation and training issues use, so a finding round-trips
through `findings.json` exactly (to_dict / from_dict), and a damaged file is refused with
one sentence instead of loading half a finding.

Units are in the field names: `_mm`, `_ml`, `_lps` (patient LPS millimetres), `_index`
(array (slice, row, col) order, inclusive at both ends)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from medview.core.errors import InvalidInputError

DECISIONS = ("pending", "accepted", "rejected")


@dataclass(frozen=True)
class Finding:
    id: int  # 1.. within one set of findings (one threshold), ordered by label then position
    label_value: int
    label_name: str
    voxel_count: int
    volume_ml: float
    # longest in-plane (axial for axial stacks) Feret diameter over the finding's slices
    longest_axial_diameter_mm: float
    centroid_lps: tuple[float, float, float]
    centroid_index: tuple[float, float, float]  # (slice, row, col), fractional
    bbox_index: tuple[tuple[int, int, int], tuple[int, int, int]]  # first, last (inclusive)
    slice_range: tuple[int, int]  # first, last slice index (inclusive)
    mean_hu: float  # mean modality value over the finding (HU for CT)
    peak_probability: float  # 0..1
    mean_probability: float  # 0..1
    # mean per-voxel spread of the probability across test-time augmentations (0 all agree,
    # 0.5 the most they can disagree); None when the model ran without TTA
    uncertainty: float | None
    model_name: str
    model_version: str
    threshold: float
    decision: str = "pending"

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, not {self.decision!r}")

    @property
    def model_ref(self) -> str:
        return f"{self.model_name}:{self.model_version}"

    def with_decision(self, decision: str) -> Finding:
        return replace(self, decision=decision)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (tuples become lists)."""
        data = asdict(self)
        data["bbox_index"] = [list(self.bbox_index[0]), list(self.bbox_index[1])]
        for key in ("centroid_lps", "centroid_index", "slice_range"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "findings.json") -> Finding:
        """Validate and rebuild; every problem is one sentence naming `where`."""
        if not isinstance(data, dict):
            raise InvalidInputError(where, "holds a finding that is not a JSON object")
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(data) - {"decision", "uncertainty"})
        if missing:
            raise InvalidInputError(where, f"has a finding without '{missing[0]}'")
        try:
            bbox = data["bbox_index"]
            finding = cls(
                id=_int(data["id"]),
                label_value=_int(data["label_value"]),
                label_name=str(data["label_name"]),
                voxel_count=_int(data["voxel_count"]),
                volume_ml=_num(data["volume_ml"]),
                longest_axial_diameter_mm=_num(data["longest_axial_diameter_mm"]),
                centroid_lps=_triple(data["centroid_lps"], float),
                centroid_index=_triple(data["centroid_index"], float),
                bbox_index=(_triple(bbox[0], int), _triple(bbox[1], int)),
                slice_range=(_int(data["slice_range"][0]), _int(data["slice_range"][1])),
                mean_hu=_num(data["mean_hu"]),
                peak_probability=_num(data["peak_probability"]),
                mean_probability=_num(data["mean_probability"]),
                uncertainty=None if data.get("uncertainty") is None else _num(data["uncertainty"]),
                model_name=str(data["model_name"]),
                model_version=str(data["model_version"]),
                threshold=_num(data["threshold"]),
                decision=str(data.get("decision", "pending")),
            )
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise InvalidInputError(where, f"has a malformed finding ({exc})") from None
        return finding


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def _triple(value: Any, kind: type) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError(f"{value!r} is not three numbers")
    return tuple(_int(v) if kind is int else _num(v) for v in value)

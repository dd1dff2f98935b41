"""LabelMap: the reader's own segmentation of one series, and its segment table.

One uint8 voxel array on the image volume's (slice, row, col) grid — the same grid the plane
maps cut, so a label map is drawn, painted and exported without resampling. Value 0 is
background; every other value in use has a Segment: name, colour, and the coded concept a
DICOM SEG needs (category + type, SNOMED CT for the common findings, as 3D Slicer and OHIF
write them). A voxel holds one segment, so segments never overlap: painting one segment over
another takes the voxels, unless the other is locked.

Every change to the voxels goes through `LabelMap.write`, which returns the Change (indices,
old values, new values) that undoes it; core.history groups those per stroke. Segments that
came from a model keep the model's name and version and stay "not reviewed" until a person
edits or confirms them: AI output never becomes a human label silently."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from medview.core.errors import InvalidInputError
from medview.core.history import Change

MAX_SEGMENTS = 255


@dataclass(frozen=True)
class Code:
    """A coded concept (DICOM code sequence item): scheme designator, value, meaning."""

    scheme: str
    value: str
    meaning: str

    def as_tuple(self) -> tuple[str, str, str]:
        return (self.scheme, self.value, self.meaning)


ALTERED = Code("SCT", "49755003", "Morphologically Altered Structure")
TISSUE = Code("SCT", "85756007", "Tissue")
ANATOMY = Code("SCT", "91723000", "Anatomical Structure")

# (category, type) for the findings and structures a radiologist labels most (codes as
# pydicom.sr.codedict has them); a name not listed here is coded as a lesion.
COMMON_CODES: dict[str, tuple[Code, Code]] = {
    "Lesion": (ALTERED, Code("SCT", "52988006", "Lesion")),
    "Nodule": (ALTERED, Code("SCT", "27925004", "Nodule")),
    "Mass": (ALTERED, Code("SCT", "4147007", "Mass")),
    "Neoplasm": (ALTERED, Code("SCT", "108369006", "Neoplasm")),
    "Cyst": (ALTERED, Code("SCT", "367643001", "Cyst")),
    "Liver": (ANATOMY, Code("SCT", "10200004", "Liver")),
    "Lung": (ANATOMY, Code("SCT", "39607008", "Lung")),
    "Kidney": (ANATOMY, Code("SCT", "64033007", "Kidney")),
    "Spleen": (ANATOMY, Code("SCT", "78961009", "Spleen")),
    "Fat": (TISSUE, Code("SCT", "256674009", "Fat")),
}

# Distinct on grey, the same order the overlay layers use (viewer.layers.LABEL_COLOURS).
SEGMENT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)


def default_colour(value: int) -> tuple[int, int, int]:
    return SEGMENT_COLOURS[(value - 1) % len(SEGMENT_COLOURS)]


@dataclass(frozen=True)
class Segment:
    value: int  # 1..255, the voxel value
    name: str
    colour: tuple[int, int, int]
    category: Code = ALTERED
    type: Code = COMMON_CODES["Lesion"][1]
    visible: bool = True
    locked: bool = False
    # "name:version" of the model a segment was accepted from; "" for the reader's own
    made_by: str = ""
    # False for AI output until a person edits or confirms it
    reviewed: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["colour"] = list(self.colour)
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Segment:
        """Refuses anything malformed with one sentence naming `where`."""
        try:
            seg = cls(
                value=int(data["value"]),
                name=str(data["name"]),
                colour=tuple(int(c) for c in data["colour"]),  # type: ignore[arg-type]
                category=Code(**data["category"]),
                type=Code(**data["type"]),
                visible=bool(data.get("visible", True)),
                locked=bool(data.get("locked", False)),
                made_by=str(data.get("made_by", "")),
                reviewed=bool(data.get("reviewed", True)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(where, f"a segment entry is malformed ({exc})") from None
        if (
            not 1 <= seg.value <= MAX_SEGMENTS
            or len(seg.colour) != 3
            or not all(0 <= c <= 255 for c in seg.colour)
        ):
            raise InvalidInputError(
                where,
                f"segment {seg.name!r} has value {seg.value} or colour {seg.colour} out of range",
            )
        return seg


def codes_for(name: str) -> tuple[Code, Code]:
    """The (category, type) of a segment name: the known name it ends with, read from its
    last word back, as English puts the head noun last ("lung nodule" is a Nodule, "liver
    lesion" a Lesion, "Liver" the organ); a lesion when no word is known."""
    known = {k.lower(): c for k, c in COMMON_CODES.items()}
    words = name.replace("_", " ").replace("-", " ").lower().split()
    return next((known[w] for w in reversed(words) if w in known), COMMON_CODES["Lesion"])


def segment_for(value: int, name: str, made_by: str = "") -> Segment:
    """A new segment named `name`, coded by codes_for; AI segments start not reviewed."""
    category, type_ = codes_for(name)
    return Segment(
        value=value,
        name=name,
        colour=default_colour(value),
        category=category,
        type=type_,
        made_by=made_by,
        reviewed=not made_by,
    )


@dataclass
class LabelMap:
    """Voxels + segment table for one series (`series_key` as the viewer names series)."""

    array: np.ndarray  # uint8 (slice, row, col), C-contiguous
    segments: dict[int, Segment] = field(default_factory=dict)
    series_key: str = ""

    def __post_init__(self) -> None:
        if self.array.dtype != np.uint8 or self.array.ndim != 3:
            raise ValueError(
                f"a label map is a 3D uint8 array, not {self.array.ndim}D {self.array.dtype}"
            )
        if not self.array.flags.c_contiguous:
            self.array = np.ascontiguousarray(self.array)

    @classmethod
    def empty(cls, shape: tuple[int, int, int], series_key: str = "") -> LabelMap:
        return cls(np.zeros(shape, np.uint8), {}, series_key)

    # --- the segment table -------------------------------------------------------------
    def free_value(self) -> int:
        for v in range(1, MAX_SEGMENTS + 1):
            if v not in self.segments:
                return v
        raise InvalidInputError(
            None,
            f"a label map holds at most {MAX_SEGMENTS} segments; remove one before adding another",
        )

    def add_segment(self, name: str, made_by: str = "") -> Segment:
        seg = segment_for(self.free_value(), name, made_by)
        self.segments[seg.value] = seg
        return seg

    def update_segment(self, value: int, **changes: Any) -> Segment:
        seg = replace(self.segments[value], **changes)
        self.segments[value] = seg
        return seg

    def locked_values(self) -> list[int]:
        return [v for v, s in self.segments.items() if s.locked]

    def voxel_counts(self) -> dict[int, int]:
        counts = np.bincount(self.array.ravel(), minlength=256)
        return {v: int(counts[v]) for v in self.segments}

    # --- voxels ------------------------------------------------------------------------
    def write(self, flat_indices: np.ndarray, value: int, only: int | None = None) -> Change:
        """Set the voxels at `flat_indices` to `value` and return the change that undoes it.

        Voxels of locked segments are left alone (a locked segment cannot be painted over
        nor erased); with `only`, just voxels currently holding `only` change (an eraser of
        one segment writes 0 with only=that segment). Unchanged voxels are not recorded, so
        the change's size is what was really edited."""
        flat = self.array.reshape(-1)
        idx = np.asarray(flat_indices, dtype=np.int64).ravel()
        old = flat[idx]
        keep = old != value
        if only is not None:
            keep &= old == only
        locked = self.locked_values()
        if locked:
            keep &= ~np.isin(old, locked)
        idx, old = idx[keep], old[keep]
        if idx.size:
            if not np.all(idx[1:] > idx[:-1]):  # tools mostly hand in sorted, unique indices
                idx, first = np.unique(idx, return_index=True)
                old = old[first]
            flat[idx] = value
        return Change(idx, old, np.full(idx.size, value, np.uint8))

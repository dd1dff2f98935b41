"""Volume: voxels in (slice, row, col) order with an affine to LPS mm and what a reader needs.

Voxels hold modality values (HU for CT) in the smallest exact dtype: int16 where the rescale
is integral and fits, float32 otherwise; colour images are (slice, row, col, 3): RGB in its
stored uint8, uint16 or uint32 (windowed for display when deeper than 8 bits), palette colour
looked up into uint8.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medview.core import geometry
from medview.core.series import LoadWarning, PatientInfo


@dataclass
class VolumeMetadata:
    modality: str = ""
    patient: PatientInfo = field(default_factory=PatientInfo)
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    frame_of_reference_uid: str = ""
    study_date: str = ""
    study_description: str = ""
    series_description: str = ""
    series_number: int | None = None
    # (center, width) pairs from the file, in modality units; first is the default
    windows: list[tuple[float, float]] = field(default_factory=list)
    units: str = ""  # "HU" for CT, "" when unknown
    photometric: str = "MONOCHROME2"
    # MONOCHROME1: low values are bright; the viewer inverts its display, voxels are as stored
    invert_display: bool = False
    slice_thickness_mm: float | None = None
    warnings: list[LoadWarning] = field(default_factory=list)
    source: str = ""  # the file or folder it came from, for messages


@dataclass(eq=False)
class Volume:
    array: np.ndarray
    affine: np.ndarray  # (slice, row, col, 1) -> LPS mm
    metadata: VolumeMetadata = field(default_factory=VolumeMetadata)

    def __post_init__(self) -> None:
        if self.array.ndim not in (3, 4):
            raise ValueError(f"volume array must be 3D or 4D (colour), got {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError("affine must be 4x4")

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.array.shape
        return int(s[0]), int(s[1]), int(s[2])

    @property
    def is_colour(self) -> bool:
        return self.array.ndim == 4

    @property
    def windowed(self) -> bool:
        """Whether the display maps values through a window: grey images, and RGB deeper
        than 8 bits (its values are measurements, not screen colours); 8-bit RGB is shown
        as it is."""
        return not self.is_colour or self.array.dtype != np.uint8

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return geometry.spacing_from_affine(self.affine)

    @property
    def origin_lps(self) -> np.ndarray:
        return self.affine[:3, 3].copy()

    @property
    def slice_normal(self) -> np.ndarray:
        return geometry.slice_normal(self.affine[:3, 2], self.affine[:3, 1])

    def index_to_lps(self, index_src) -> np.ndarray:
        return geometry.index_to_lps(self.affine, index_src)

    def lps_to_index(self, point_lps) -> np.ndarray:
        return geometry.lps_to_index(self.affine, point_lps)

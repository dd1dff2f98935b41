"""Tissues and their CT numbers, and the three scanner "sites" of the demo study.

Site A is a soft-kernel, non-contrast scan with thin slices and fine low noise; site B is a
portal-venous-phase contrast scan on another scanner: thicker slices, larger field of view,
a sharp kernel with edge overshoot and coarser, stronger noise. Site C is a low-dose,
non-contrast scan (screening protocol): 3 mm slices, a smooth kernel that blurs edges
further, and strong, blotchy noise. A model trained on one meets a realistic domain shift on
the others, while the anatomy of a seed stays the same; site C is there so that what a
fine-tune is tuned to do on site B is shown on a shift it was not tuned on (issue 15).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class T(enum.IntEnum):
    """Tissue ids of the ground-truth tissue map (0 is air outside the patient)."""

    AIR = 0
    TABLE = 1
    SKIN = 2
    FAT = 3
    MUSCLE = 4
    LUNG = 5
    VESSEL = 6  # blood in vessels and heart chambers
    AIRWAY_WALL = 7
    GAS = 8  # air inside the body: airways, bowel, stomach
    MYOCARDIUM = 9
    LIVER = 10
    SPLEEN = 11
    KIDNEY_CORTEX = 12
    KIDNEY_MEDULLA = 13
    PANCREAS = 14
    BOWEL_WALL = 15
    BOWEL_CONTENT = 16
    FLUID = 17  # bile, urine
    BONE_CORTEX = 18
    BONE_MARROW = 19
    CARTILAGE = 20
    DISC = 21
    CSF = 22
    CORD = 23
    STOOL = 24
    LUNG_NODULE = 30
    GROUND_GLASS_NODULE = 31
    LIVER_LESION = 32


@dataclass(frozen=True)
class Tissue:
    plain_hu: float  # without contrast
    contrast_hu: float  # portal venous phase
    grain_hu: float  # amplitude of the tissue's own texture
    # The range a mean over the tissue's interior must fall in (checked by the tests).
    plain_range: tuple[float, float]
    contrast_range: tuple[float, float]


TISSUES: dict[T, Tissue] = {
    T.AIR: Tissue(-1000, -1000, 0, (-1024, -980), (-1024, -980)),
    T.TABLE: Tissue(-900, -900, 0, (-1000, 400), (-1000, 400)),
    T.SKIN: Tissue(20, 30, 0, (-60, 80), (-60, 90)),
    T.FAT: Tissue(-100, -100, 14, (-120, -80), (-120, -80)),
    T.MUSCLE: Tissue(45, 55, 4, (35, 60), (40, 70)),
    T.LUNG: Tissue(-850, -850, 22, (-900, -780), (-900, -780)),
    T.VESSEL: Tissue(40, 165, 0, (30, 55), (140, 190)),
    T.AIRWAY_WALL: Tissue(30, 40, 0, (-200, 60), (-200, 70)),
    T.GAS: Tissue(-1000, -1000, 0, (-1024, -900), (-1024, -900)),
    T.MYOCARDIUM: Tissue(45, 105, 0, (35, 60), (85, 125)),
    T.LIVER: Tissue(60, 110, 4, (52, 68), (98, 122)),
    T.SPLEEN: Tissue(47, 120, 3, (40, 55), (105, 135)),
    T.KIDNEY_CORTEX: Tissue(33, 185, 0, (25, 42), (160, 210)),
    T.KIDNEY_MEDULLA: Tissue(30, 145, 0, (22, 40), (120, 170)),
    T.PANCREAS: Tissue(42, 100, 10, (25, 55), (80, 115)),
    T.BOWEL_WALL: Tissue(40, 95, 0, (20, 60), (60, 120)),
    T.BOWEL_CONTENT: Tissue(15, 15, 3, (5, 25), (5, 25)),
    T.FLUID: Tissue(8, 8, 0, (0, 18), (0, 18)),
    T.BONE_CORTEX: Tissue(1000, 1000, 60, (700, 1200), (700, 1200)),
    T.BONE_MARROW: Tissue(230, 235, 45, (180, 300), (180, 300)),
    T.CARTILAGE: Tissue(120, 130, 10, (90, 160), (90, 170)),
    T.DISC: Tissue(85, 90, 5, (70, 100), (70, 105)),
    T.CSF: Tissue(12, 12, 0, (0, 25), (0, 25)),
    T.CORD: Tissue(35, 38, 0, (20, 50), (20, 50)),
    T.STOOL: Tissue(-60, -60, 0, (-400, 100), (-400, 100)),
}


@dataclass(frozen=True)
class Site:
    key: str
    description: str
    contrast: bool
    thickness_mm: float  # default slice thickness (= spacing)
    pixel_mm: tuple[float, float]  # range the seed picks the pixel size from
    noise_hu: float  # default noise SD in homogeneous soft tissue
    noise_smooth_passes: int  # [1, 2, 1] passes on the noise: more = coarser grain
    sharpen: float  # unsharp-mask amount of the kernel (0 = soft kernel)
    kvp: float
    tube_current_ma: int
    kernel: str
    manufacturer_model: str
    institution: str
    blur_passes: int = 1  # [1, 2, 1] passes of a soft kernel's blur (sharpen 0): more = smoother


SITES: dict[str, Site] = {
    "a": Site(
        "a",
        "site A: soft kernel, non-contrast, 1.5 mm",
        contrast=False,
        thickness_mm=1.5,
        pixel_mm=(0.66, 0.72),
        noise_hu=10.0,
        noise_smooth_passes=2,
        sharpen=0.0,
        kvp=120,
        tube_current_ma=220,
        kernel="MV-SOFT",
        manufacturer_model="SynthCT 64",
        institution="MedView Synthetic Site A",
    ),
    "b": Site(
        "b",
        "site B: sharp kernel, portal venous contrast, 2 mm",
        contrast=True,
        thickness_mm=2.0,
        pixel_mm=(0.74, 0.80),
        noise_hu=18.0,
        noise_smooth_passes=1,
        sharpen=0.6,
        kvp=100,
        tube_current_ma=300,
        kernel="MV-SHARP",
        manufacturer_model="SynthCT 128 Dual",
        institution="MedView Synthetic Site B",
    ),
    "c": Site(
        "c",
        "site C: low dose, smooth kernel, non-contrast, 3 mm",
        contrast=False,
        thickness_mm=3.0,
        pixel_mm=(0.68, 0.76),
        noise_hu=30.0,
        noise_smooth_passes=3,
        sharpen=0.0,
        kvp=100,
        tube_current_ma=40,
        kernel="MV-SMOOTH",
        manufacturer_model="SynthCT 16 LD",
        institution="MedView Synthetic Site C",
        blur_passes=3,
    ),
}

# Head-foot length the default study covers, and where it is centred (mm from the right
# diaphragm dome, superior positive): from above the lung apices to the lower kidney poles.
COVERAGE_MM = 450.0
COVERAGE_CENTRE_MM = -10.0
# A shorter scan is centred nearer the domes, so it still holds lung bases and liver.
SHORT_SCAN_CENTRE_MM = -40.0


def tissue_hu(tissue: T, contrast: bool) -> float:
    t = TISSUES[tissue]
    return t.contrast_hu if contrast else t.plain_hu


def scan_centre_mm(coverage_mm: float) -> float:
    """Centre of the scanned range for a given head-foot coverage."""
    f = min(coverage_mm, COVERAGE_MM) / COVERAGE_MM
    return SHORT_SCAN_CENTRE_MM + f * (COVERAGE_CENTRE_MM - SHORT_SCAN_CENTRE_MM)

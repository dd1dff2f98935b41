"""The synthetic demo study: a chest-and-abdomen CT with known lesions, written as a real
DICOM series with its ground truth beside it.

No patient data ships with MedView and nothing can be downloaded, yet a new user must see
the app work at once and the models need studies with known answers; this generator is that
embedded default. Everything is deterministic from the seed: the same seed and options give
byte-identical files. `medview demo --out DIR ...` is a thin wrapper around
`generate_demo_study`. A 300-slice study takes about 6 s on two cores (slices render on two
threads; see render.py); numpy, pydicom and SimpleITK are imported only when it runs.

The anatomy (body.py, thorax.py, vessels.py, abdomen.py, skeleton.py) is built once per seed
(phantom.py), then each slice is painted from analytic shapes (shapes.py, tubes.py) and passed
through the site's scanner model (sites.py, scanner.py); lesions.py places and measures the
lesions, dicom_writer.py and output.py write the files.

Layout of the output folder:
    series/IM0001.dcm ...   CT Image Storage, one file per slice, IM0001 at the head end
    labels.nii.gz           lesion label map on the same grid (1 lung nodule, 2 liver lesion)
    lesions.json            per lesion: class, centre (LPS mm), diameter, volume, mean HU
    README.txt              what the files are, geometry and tissue CT numbers
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.core.errors import InvalidInputError
from medview.core.jobs import CancelToken, ProgressCallback, report
from medview.demo.follow_up import FollowUp
from medview.demo.output import LABELS_NAME, LESIONS_NAME, SERIES_DIR
from medview.demo.sites import COVERAGE_MM, SITES, scan_centre_mm

__all__ = ["DemoStudy", "generate_demo_study"]

MAX_SLICES = 2000
MAX_THICKNESS_MM = 10.0
MAX_NOISE_HU = 500.0
MAX_FOLLOW_UP_MONTHS = 60


@dataclass(frozen=True)
class DemoStudy:
    out_dir: Path
    series_dir: Path
    labels_path: Path
    lesions_json: Path
    n_slices: int
    lesions: list[dict]
    seed: int
    site: str
    shape: tuple[int, int, int]  # (slice, row, col), slice 0 the most inferior
    spacing_mm: tuple[float, float, float]  # (slice, row, col)
    study_instance_uid: str
    series_instance_uid: str


def _check(
    seed: int,
    site: str,
    slices: int | None,
    thickness_mm: float | None,
    noise_hu: float | None,
    n_lesions: int | None,
) -> None:
    """Refuse bad options with one sentence each, before anything is written."""

    def bad(msg: str) -> InvalidInputError:
        return InvalidInputError(None, msg)

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise bad(f"seed must be a whole number from 0 to 2**63-1, not {seed!r}")
    if site not in SITES:
        raise bad(f"site must be one of {', '.join(repr(k) for k in SITES)}, not {site!r}")
    if slices is not None and (
        isinstance(slices, bool)
        or not isinstance(slices, (int, np.integer))
        or not 1 <= slices <= MAX_SLICES
    ):
        raise bad(f"slices must be a whole number from 1 to {MAX_SLICES}, not {slices!r}")
    for name, value, top in (
        ("thickness", thickness_mm, MAX_THICKNESS_MM),
        ("noise", noise_hu, MAX_NOISE_HU),
    ):
        if value is None:
            continue
        low_ok = value > 0 if name == "thickness" else value >= 0
        if (
            not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not low_ok
            or value > top
        ):
            what = "above 0" if name == "thickness" else "from 0"
            unit = "mm" if name == "thickness" else "HU"
            raise bad(f"{name} must be a number {what} up to {top:g} {unit}, not {value!r}")
    if n_lesions is not None:
        from medview.demo.lesions import MAX_LESIONS

        if (
            isinstance(n_lesions, bool)
            or not isinstance(n_lesions, (int, np.integer))
            or not 0 <= n_lesions <= MAX_LESIONS
        ):
            raise bad(f"lesions must be a whole number from 0 to {MAX_LESIONS}, not {n_lesions!r}")


def generate_demo_study(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    site: str = "a",
    slices: int | None = None,
    thickness_mm: float | None = None,
    noise_hu: float | None = None,
    n_lesions: int | None = None,
    lesions: bool = True,
    follow_up_months: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> DemoStudy:
    """Write a synthetic CT study with known lesions into `out_dir` and describe it.

    Defaults come from the site: A is 1.5 mm slices, non-contrast, soft kernel, 10 HU noise;
    B is 2 mm, contrast, sharp kernel, 18 HU noise; C is 3 mm, non-contrast, low dose: a
    smooth kernel and 30 HU of coarse noise; all cover 450 mm (300 / 225 / 150 slices).
    `slices` alone keeps the site's thickness (a shorter scan is centred near the diaphragm
    so it still holds lung and liver); `thickness_mm` alone keeps the 450 mm coverage.
    `follow_up_months`: instead the same patient that many months later (demo/follow_up.py:
    moved on the table, lesions grown by known factors, one gone, one new).
    Raises InvalidInputError for bad options or an unusable folder, JobCancelled on cancel
    (leaving no partial study behind)."""
    from medview.demo import output
    from medview.demo.render import render_study

    _check(seed, site, slices, thickness_mm, noise_hu, n_lesions)
    if follow_up_months is not None and (
        isinstance(follow_up_months, bool)
        or not isinstance(follow_up_months, (int, float))
        or not 0 < follow_up_months <= MAX_FOLLOW_UP_MONTHS
    ):
        raise InvalidInputError(
            None,
            f"follow-up months must be a number above 0 up to "
            f"{MAX_FOLLOW_UP_MONTHS}, not {follow_up_months!r}",
        )
    s = SITES[site]
    thickness = float(thickness_mm if thickness_mm is not None else s.thickness_mm)
    n = int(slices) if slices is not None else max(1, round(COVERAGE_MM / thickness))
    coverage = n * thickness
    centre = scan_centre_mm(coverage)
    z_positions = tuple(round(centre + (k - (n - 1) / 2) * thickness, 4) for k in range(n))
    out, work = output.prepare(out_dir)
    try:
        result = render_study(
            work,
            seed=int(seed),
            site=s,
            z_positions=z_positions,
            thickness_mm=thickness,
            noise_hu=noise_hu,
            n_lesions=n_lesions if lesions else 0,
            progress=progress,
            cancel=cancel,
            follow_up=None if follow_up_months is None else FollowUp(float(follow_up_months)),
        )
        output.publish(out, work)
    except BaseException:
        output.discard(work)
        raise
    report(progress, 1.0, "demo study written")
    return DemoStudy(
        out_dir=out,
        series_dir=out / SERIES_DIR,
        labels_path=out / LABELS_NAME,
        lesions_json=out / LESIONS_NAME,
        n_slices=n,
        lesions=result.lesions,
        seed=int(seed),
        site=site,
        shape=result.shape,
        spacing_mm=result.spacing_mm,
        study_instance_uid=result.study_instance_uid,
        series_instance_uid=result.series_instance_uid,
    )

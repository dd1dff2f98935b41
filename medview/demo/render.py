"""Render the demo study slice by slice into a work folder: DICOM series, label map,
lesions.json and README. The caller (generate_demo_study) checks options and publishes.

Per slice: anatomy and lesions are painted on a float32 canvas, the kernel and noise are
applied, the slice is rounded to int16 HU and written; the lesion labels of the slice go into
the label volume and each lesion's voxel count, index sums and HU sum are accumulated, so the
ground truth is measured from exactly what was written.
"""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.core.jobs import CancelToken, ProgressCallback, report
from medview.core.labels import segment_for
from medview.demo.dicom_writer import WINDOW_PRESETS, SeriesGeometry, SeriesWriter
from medview.demo.follow_up import DAYS_PER_MONTH, FollowUp, follow_up_lesions, moved_phantom
from medview.demo.lesions import LABEL_VALUES, Lesion, paint_lesions, place_lesions
from medview.demo.output import GENERATOR, LABELS_NAME, LESIONS_NAME, README_NAME, SERIES_DIR
from medview.demo.phantom import Phantom
from medview.demo.scanner import Texture, add_noise, apply_kernel, to_stored
from medview.demo.shapes import F32, Canvas
from medview.demo.sites import TISSUES, Site, T, tissue_hu
from medview.io.labels.files import write_segment_table

MATRIX = 512
FOV_CENTRE_Y_MM = 15.0  # keeps the patient and the table top in the field of view
_STREAM_SITE, _STREAM_LESIONS, _STREAM_NOISE, _STREAM_TEXTURE = 10, 11, 12, 13
_WINDOW = 4  # slices rendered ahead of the writer


@dataclass(frozen=True)
class Rendered:
    lesions: list[dict]
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    study_instance_uid: str
    series_instance_uid: str


def _geometry(
    seed: int, site: Site, z_positions: tuple[float, ...], thickness: float
) -> SeriesGeometry:
    rng = np.random.default_rng([seed, _STREAM_SITE, ord(site.key)])
    px = round(float(rng.uniform(*site.pixel_mm)), 4)
    half = (MATRIX - 1) / 2 * px
    return SeriesGeometry(
        px,
        MATRIX,
        MATRIX,
        (round(-half, 4), round(FOV_CENTRE_Y_MM - half, 4)),
        z_positions,
        thickness,
    )


class _Tally:
    """Per-lesion voxel count, index sums and HU sum, from the written slices."""

    def __init__(self, n: int, contrast: bool) -> None:
        self.contrast = contrast
        self.count = np.zeros(n, np.int64)
        self.idx_sum = np.zeros((n, 3))
        self.hu_sum = np.zeros(n)

    def add(
        self,
        k: int,
        stored: np.ndarray,
        labels: np.ndarray,
        hits: list[tuple[Lesion, tuple[slice, slice], np.ndarray]],
    ) -> None:
        for les, (rs, cs), mask in hits:
            i, j = np.nonzero(mask)
            m = les.id - 1
            self.count[m] += len(i)
            self.idx_sum[m] += (k * len(i), (i + rs.start).sum(), (j + cs.start).sum())
            self.hu_sum[m] += stored[rs, cs][mask].sum(dtype=np.int64)
            labels[rs, cs][mask] = LABEL_VALUES[les.cls]

    def describe(self, lesions: list[Lesion], geo: SeriesGeometry) -> list[dict]:
        affine = geo.affine()
        voxel_ml = geo.pixel_mm**2 * geo.thickness_mm / 1000.0
        out = []
        for les in lesions:
            m = les.id - 1
            n = int(self.count[m])
            centre = affine[:3, :3] @ (self.idx_sum[m] / max(n, 1)) + affine[:3, 3]
            out.append(
                {
                    "id": les.id,
                    "class": les.cls,
                    "label_value": LABEL_VALUES[les.cls],
                    "kind": les.kind,
                    "attachment": les.attachment,
                    "centre_lps_mm": [round(float(v), 2) for v in centre],
                    "diameter_mm": les.diameter_mm,
                    "volume_ml": round(n * voxel_ml, 4),
                    "mean_hu": round(float(self.hu_sum[m] / max(n, 1)), 1),
                    "material_hu": round(les.contrast_hu if self.contrast else les.plain_hu, 1),
                    "n_voxels": n,
                    "nominal_centre_lps_mm": [round(float(v), 2) for v in les.shape.centre],
                }
            )
        return out


class _SliceMaker:
    """Renders one slice to stored int16 HU; each slice has its own noise stream, so the
    result does not depend on which thread made it or in what order."""

    def __init__(
        self,
        phantom: Phantom,
        geo: SeriesGeometry,
        site: Site,
        lesions: list[Lesion],
        noise_hu: float,
        seed: int,
    ) -> None:
        self.phantom, self.geo, self.site, self.lesions = phantom, geo, site, lesions
        self.noise_hu, self.seed = noise_hu, seed
        self.texture = Texture(np.random.default_rng([seed, _STREAM_TEXTURE]), (MATRIX, MATRIX))
        self.xs = (geo.origin_xy[0] + geo.pixel_mm * np.arange(MATRIX)).astype(F32)
        self.ys = (geo.origin_xy[1] + geo.pixel_mm * np.arange(MATRIX)).astype(F32)
        base = Canvas(
            self.xs, self.ys, 0.0, geo.pixel_mm, geo.thickness_mm, np.zeros((MATRIX, MATRIX), F32)
        )
        self.background = phantom.background(base)[0]

    def make(self, k: int) -> tuple[np.ndarray, list]:
        geo, site = self.geo, self.site
        cv = Canvas(
            self.xs,
            self.ys,
            geo.z_positions[k],
            geo.pixel_mm,
            geo.thickness_mm,
            self.background.copy(),
        )
        hits: list = []

        def hook(stage: str) -> None:
            paint_lesions(cv, self.lesions, stage, site.contrast, self.texture, hits)

        self.phantom.render(cv, site.contrast, self.texture, hook)
        apply_kernel(cv.hu, site)
        rng = np.random.default_rng([self.seed, _STREAM_NOISE, ord(site.key), k])
        add_noise(cv.hu, rng, site, self.noise_hu)
        return to_stored(cv.hu), hits


def render_study(
    work: Path,
    *,
    seed: int,
    site: Site,
    z_positions: tuple[float, ...],
    thickness_mm: float,
    noise_hu: float | None,
    n_lesions: int | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    follow_up: FollowUp | None = None,
) -> Rendered:
    """The study of `seed`; with `follow_up`, that study's patient months later (the lesions
    placed as in the baseline, then moved, grown, one gone and one new: follow_up.py)."""
    report(progress, 0.0, "building the synthetic patient")
    phantom = Phantom.build(seed)
    # a follow-up scans the range a few mm along the table: the same anatomy, other slices
    dz = follow_up.shift_mm[1] if follow_up is not None else 0.0
    geo = _geometry(seed, site, tuple(round(z + dz, 4) for z in z_positions), thickness_mm)
    lesion_rng = np.random.default_rng([seed, _STREAM_LESIONS])
    strict = n_lesions is not None
    if n_lesions is None:
        n_lesions = int(lesion_rng.integers(5, 9))
    z_span = (z_positions[0] - thickness_mm / 2, z_positions[-1] + thickness_mm / 2)
    lesions = place_lesions(phantom, lesion_rng, n_lesions, z_span, strict)
    truth = None
    if follow_up is not None:
        phantom = moved_phantom(phantom, follow_up.shift_mm[0])
        lesions, truth = follow_up_lesions(lesions, phantom, seed, follow_up, z_span)
    noise = site.noise_hu if noise_hu is None else float(noise_hu)
    maker = _SliceMaker(phantom, geo, site, lesions, noise, seed)
    n = len(z_positions)
    labels = np.zeros((n, MATRIX, MATRIX), np.uint8)
    tally = _Tally(len(lesions), site.contrast)
    (work / SERIES_DIR).mkdir()
    desc = f"Synthetic CT {site.description}"
    days = round(follow_up.months * DAYS_PER_MONTH) if follow_up is not None else 0
    writer = SeriesWriter(work / SERIES_DIR, seed, site, geo, desc, days)
    # Slices render on two threads (numpy releases the GIL in the heavy parts) while this
    # thread writes them in order; a small window bounds the memory held in flight.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque = deque()
        try:
            for k in range(n):
                while len(pending) < _WINDOW and len(pending) + k < n:
                    pending.append(pool.submit(maker.make, k + len(pending)))
                if cancel is not None:
                    cancel.raise_if_cancelled()
                stored, hits = pending.popleft().result()
                writer.write(k, stored)
                tally.add(k, stored, labels[k], hits)
                report(progress, 0.95 * (k + 1) / n, f"slice {k + 1} of {n}")
        finally:
            for f in pending:
                f.cancel()
    report(progress, 0.96, "writing the label map")
    _write_labels(work / LABELS_NAME, labels, geo)
    # named and coded segments beside the map: imported into the viewer the ground truth
    # reads "lung nodule" / "liver lesion", and training matches them to a model by name
    write_segment_table(
        work / LABELS_NAME,
        {v: segment_for(v, name.replace("_", " ")) for name, v in LABEL_VALUES.items()},
    )
    described = tally.describe(lesions, geo)
    meta = {
        "generator": GENERATOR,
        "format_version": 1,
        "seed": seed,
        "site": site.key,
        "description": desc,
        "frame": "LPS",
        "label_values": {name: v for name, v in LABEL_VALUES.items()},
        "shape": [n, MATRIX, MATRIX],
        "spacing_mm": [thickness_mm, geo.pixel_mm, geo.pixel_mm],
        "origin_lps_mm": [geo.origin_xy[0], geo.origin_xy[1], geo.z_positions[0]],
        "noise_hu": noise,
        "contrast": site.contrast,
        "series_instance_uid": writer.series_uid,
        "lesions": described,
    }
    if truth is not None:
        meta["follow_up"] = truth
    (work / LESIONS_NAME).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    (work / README_NAME).write_text(_readme(meta, site), encoding="utf-8")
    return Rendered(
        described,
        (n, MATRIX, MATRIX),
        (thickness_mm, geo.pixel_mm, geo.pixel_mm),
        writer.study_uid,
        writer.series_uid,
    )


def _write_labels(path: Path, labels: np.ndarray, geo: SeriesGeometry) -> None:
    """NIfTI label map on the series' grid. SimpleITK works in LPS and converts to NIfTI's
    RAS on writing, so origin and direction here are the DICOM ones."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(labels)
    img.SetSpacing((geo.pixel_mm, geo.pixel_mm, geo.thickness_mm))
    img.SetOrigin((geo.origin_xy[0], geo.origin_xy[1], geo.z_positions[0]))
    img.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(img, str(path), True)


def _readme(meta: dict, site: Site) -> str:
    n, rows, cols = meta["shape"]
    dz, px, _ = meta["spacing_mm"]
    tissues = "\n".join(
        f"  {t.name.lower():<16} {tissue_hu(t, site.contrast):>7.0f}"
        for t in T
        if t in TISSUES and t != T.TABLE
    )
    windows = ", ".join(f"{name.lower()} {c}/{w}" for c, w, name in WINDOW_PRESETS)
    return (
        "MedView synthetic demo study - not a patient, free to use for anything.\n\n"
        f"Seed {meta['seed']}, {site.description}.\n"
        f"series/     {n} CT images of {rows} x {cols}, {px} mm pixels, {dz} mm slices,\n"
        "            explicit VR little endian; IM0001 is the most superior slice.\n"
        "labels.nii.gz  lesion labels on the same grid: "
        + ", ".join(f"{v} = {k.replace('_', ' ')}" for k, v in meta["label_values"].items())
        + ".\nlabels.segments.json  the segments' names, colours and SNOMED CT codes.\n"
        "lesions.json   each lesion's class, kind, centre (LPS mm), nominal diameter,\n"
        "               voxelised volume (mL) and mean stored HU, measured from the label\n"
        "               map, and the lesion material's HU before partial volume and noise.\n"
        "               origin_lps_mm is the centre of the first voxel of the most inferior\n"
        "               slice; arrays are (slice, row, col) with slice 0 inferior.\n\n"
        f"Window presets (centre/width): {windows}.\n"
        f"Nominal tissue CT numbers (HU) before noise:\n{tissues}\n"
    )

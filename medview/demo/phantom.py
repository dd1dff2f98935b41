"""The whole synthetic patient: built once from a seed, then rendered slice by slice.

Building has two passes. The first renders the anatomy without its vessel trees on a coarse
3 mm grid, which tells where the lungs and the liver are; the trees are then grown to fill
exactly those spaces. The coarse tissue volume is kept: lesions are placed with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from medview.demo import vessels
from medview.demo.abdomen import Abdomen, liver_alpha, paint_abdomen
from medview.demo.body import Patient, Profile, Slice, paint_body, table_background
from medview.demo.scanner import Texture
from medview.demo.shapes import F32, Canvas
from medview.demo.sites import T
from medview.demo.skeleton import (
    clavicles,
    paint_clavicles,
    paint_ribs,
    paint_spine,
    paint_sternum,
    spine_alpha,
)
from medview.demo.thorax import (
    Thorax,
    lung_side_points,
    mediastinum_alpha,
    paint_lung_trees,
    paint_lungs,
    paint_mediastinum,
)
from medview.demo.tubes import Tubes, grow_tree

PLAN_STEP_MM = 3.0
_PLAN_BOX = ((-175.0, 175.0), (-135.0, 115.0), (-215.0, 215.0))  # reference frame
# Random streams, one per purpose, so changing one part never reshuffles another.
_STREAM_PATIENT, _STREAM_BOWEL, _STREAM_TREES = 1, 2, 3

LesionHook = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """Coarse tissue ids on a regular reference-frame grid: tissue[k, i, j] at (xs[j],
    ys[i], zs[k])."""

    tissue: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray

    def lookup(self, points_ref: np.ndarray) -> np.ndarray:
        """Tissue id at (n, 3) reference points (nearest cell; outside the grid is air)."""
        p = np.asarray(points_ref, float)
        j = np.rint((p[:, 0] - self.xs[0]) / (self.xs[1] - self.xs[0])).astype(int)
        i = np.rint((p[:, 1] - self.ys[0]) / (self.ys[1] - self.ys[0])).astype(int)
        k = np.rint((p[:, 2] - self.zs[0]) / (self.zs[1] - self.zs[0])).astype(int)
        nk, ni, nj = self.tissue.shape
        ok = (i >= 0) & (i < ni) & (j >= 0) & (j < nj) & (k >= 0) & (k < nk)
        out = np.zeros(len(p), np.uint8)
        out[ok] = self.tissue[k[ok], i[ok], j[ok]]
        return out


@dataclass(frozen=True)
class Phantom:
    patient: Patient
    thorax: Thorax
    abdomen: Abdomen
    clavicles: Tubes
    plan: Plan | None = None

    @classmethod
    def build(cls, seed: int) -> Phantom:
        patient = Patient.from_rng(np.random.default_rng([seed, _STREAM_PATIENT]))
        bowel_rng = np.random.default_rng([seed, _STREAM_BOWEL])
        bare = cls(patient, Thorax.make(), Abdomen.make(bowel_rng), clavicles())
        plan = bare._plan()
        rng = np.random.default_rng([seed, _STREAM_TREES])
        lungs = lung_side_points(plan.tissue, plan.xs, plan.ys, plan.zs, rng, n=3600)
        trees = []
        for side, pts in lungs.items():
            hila = vessels.HILA[side]
            trees.append(grow_tree(rng, hila["artery"], pts, 8.5, 0.65, airway_min=1.6))
            trees.append(grow_tree(rng, hila["vein"], pts, 7.5, 0.65))
        k, i, j = np.nonzero(plan.tissue == T.LIVER)
        liver_pts = np.stack([plan.xs[j], plan.ys[i], plan.zs[k]], 1).astype(float)
        liver_pts = liver_pts[rng.choice(len(liver_pts), min(1500, len(liver_pts)), replace=False)]
        liver = Tubes.concat(
            [
                grow_tree(rng, vessels.HEPATIC_VEIN_ROOT, liver_pts, 6.5, 1.4).vessels,
                grow_tree(rng, vessels.PORTA_HEPATIS, liver_pts, 7.0, 1.6).vessels,
            ]
        )
        return cls(
            patient,
            Thorax.make(trees),
            Abdomen.make(np.random.default_rng([seed, _STREAM_BOWEL]), liver),
            bare.clavicles,
            plan,
        )

    def _plan(self) -> Plan:
        (x0, x1), (y0, y1), (z0, z1) = _PLAN_BOX
        xs = np.arange(x0, x1 + 1e-6, PLAN_STEP_MM, dtype=F32)
        ys = np.arange(y0, y1 + 1e-6, PLAN_STEP_MM, dtype=F32)
        zs = np.arange(z0, z1 + 1e-6, PLAN_STEP_MM)
        tissue = np.zeros((len(zs), len(ys), len(xs)), np.uint8)
        for k, z in enumerate(zs):
            cv = Canvas(
                xs,
                ys,
                float(z),
                PLAN_STEP_MM,
                PLAN_STEP_MM,
                np.zeros((len(ys), len(xs)), F32),
                tissue[k],
            )
            self.render_ref(Slice(cv, Profile.at(float(z), self.patient.fat_factor), False, None))
        return Plan(tissue, xs, ys, zs)

    def to_ref(self, points: np.ndarray) -> np.ndarray:
        """Real (scanner LPS) points to the reference frame."""
        return (np.asarray(points, float) - [self.patient.shift_x, 0.0, 0.0]) / self.patient.scale

    def to_real(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, float) * self.patient.scale + [self.patient.shift_x, 0.0, 0.0]

    def background(self, cv: Canvas) -> tuple[np.ndarray, np.ndarray]:
        """Air and table for a real-frame grid; the same on every slice."""
        centred = replace(cv, xs=(cv.xs - F32(self.patient.shift_x)).astype(F32))
        return table_background(centred, self.patient.back_y * self.patient.scale[1])

    def render(
        self, cv: Canvas, contrast: bool, texture: Texture | None, hook: LesionHook | None = None
    ) -> None:
        """Paint one real-frame slice (its hu/tissue already hold the background)."""
        ref = cv.to_frame((self.patient.shift_x, 0.0, 0.0), self.patient.scale)
        s = Slice(ref, Profile.at(ref.z, self.patient.fat_factor), contrast, texture)
        self.render_ref(s, hook)

    def render_ref(self, s: Slice, hook: LesionHook | None = None) -> None:
        paint_body(s, self.patient.back_y)
        if s.cav_reg is None:
            return
        paint_abdomen(s, self.abdomen, liver_alpha(s, self.abdomen.liver))
        spine = spine_alpha(s)
        med = mediastinum_alpha(s, self.thorax)
        paint_lungs(s, med, spine)
        if hook is not None:
            hook("under_vessels")
        paint_lung_trees(s, self.thorax)
        paint_mediastinum(s, self.thorax)
        paint_spine(s, spine)
        paint_ribs(s)
        paint_sternum(s)
        paint_clavicles(s, self.clavicles)
        if hook is not None:
            hook("on_top")

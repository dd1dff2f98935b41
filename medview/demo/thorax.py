"""Lungs and mediastinum: where the lungs are, what pushes them aside, and what is drawn
inside them (vessels, bronchi) and between them (heart, great vessels, trachea, oesophagus).

The lungs are the cavity above the diaphragm and below the apices, minus the mediastinum and
the spine; parenchyma is denser in the dependent (posterior) part, as in a supine patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.demo import vessels
from medview.demo.body import Slice, union_into
from medview.demo.shapes import F32, ellipse_alpha, ellipsoid_alpha
from medview.demo.sites import TISSUES, T
from medview.demo.tubes import Tree, Tubes, tubes_alpha


@dataclass(frozen=True)
class Thorax:
    heart: vessels.Heart
    great_vessels: Tubes  # aorta, cavae, arch branches, pulmonary trunk and hilar vessels
    airways: Tubes  # trachea and main bronchi
    esophagus: Tubes
    lung_vessels: Tubes  # grown trees, filled in once the lungs are known
    lung_airways: Tubes

    @classmethod
    def make(cls, trees: list[Tree] | None = None) -> Thorax:
        great = Tubes.concat(
            [
                vessels.aorta(),
                *vessels.systemic_veins(),
                *vessels.arch_branches(),
                *vessels.pulmonary_vessels(),
            ]
        )
        trees = trees or []
        return cls(
            vessels.heart(),
            great,
            vessels.central_airways(),
            vessels.esophagus(),
            Tubes.concat([t.vessels for t in trees]),
            Tubes.concat([t.airways for t in trees]),
        )


def mediastinum_alpha(s: Slice, th: Thorax) -> np.ndarray:
    """Occupancy (over the cavity box) of everything between the lungs, with a rim of fat."""
    p, cv = s.prof, s.cv
    rs, cs = s.cav_reg
    med = np.zeros((rs.stop - rs.start, cs.stop - cs.start), F32)
    front, back = p.cav_ant - 4.0, p.vb_y - p.vb_r + 6.0
    col = ellipse_alpha(cv, 3.0, (front + back) / 2, p.med_w, (back - front) / 2)
    if col is not None:
        union_into(med, s.cav_reg, *col)
    e = ellipsoid_alpha(cv, th.heart.envelope)
    if e is not None:
        union_into(med, s.cav_reg, *e)
    for tubes, grow in ((th.great_vessels, 2.5), (th.airways, 4.0), (th.esophagus, 3.0)):
        t = tubes_alpha(cv, tubes, grow=grow)
        if t is not None:
            union_into(med, s.cav_reg, t[0], t[1])
    return med


def paint_lungs(s: Slice, med: np.ndarray, spine: np.ndarray) -> None:
    """Lung parenchyma, about -850 HU, denser toward the back (gravity-dependent)."""
    p, cv = s.prof, s.cv
    alpha = s.cav_alpha * s.lung_gate * (1 - med) * (1 - spine)
    rs, _ = s.cav_reg
    depth = np.clip((cv.ys[rs] - F32(p.cav_ant)) / F32(p.cav_post - p.cav_ant), 0, 1)
    value = (F32(s.hu(T.LUNG) - 35) + F32(75) * depth * depth)[:, None]
    if s.grain is not None:
        value = value + F32(TISSUES[T.LUNG].grain_hu) * s.grain[s.cav_reg]
    cv.paint(s.cav_reg, alpha, value, int(T.LUNG))


def _paint_tube_with_lumen(
    s: Slice, tubes: Tubes, wall: T, lumen: float, grow: float = 0.0
) -> None:
    """A walled tube: the wall tissue over the whole section, then air in the lumen."""
    t = tubes_alpha(s.cv, tubes, grow=grow, lumen=lumen)
    if t is not None:
        reg, outer, inner = t
        s.paint(reg, outer, wall)
        s.paint(reg, inner, T.GAS)


def paint_lung_trees(s: Slice, th: Thorax) -> None:
    """Pulmonary arteries and veins, and bronchi with their walls."""
    t = tubes_alpha(s.cv, th.lung_vessels)
    if t is not None:
        s.paint(t[0], t[1], T.VESSEL)
    _paint_tube_with_lumen(s, th.lung_airways, T.AIRWAY_WALL, lumen=0.72)


def paint_mediastinum(s: Slice, th: Thorax) -> None:
    """Epicardial fat, myocardium and blood pools, great vessels, trachea and oesophagus."""
    cv = s.cv
    h = th.heart
    for e, tissue in ((h.pericardium, T.FAT), (h.myocardium, T.MYOCARDIUM)):
        out = ellipsoid_alpha(cv, e)
        if out is not None:
            s.paint(*out, tissue)
    for e in h.chambers:
        out = ellipsoid_alpha(cv, e)
        if out is not None:
            s.paint(*out, T.VESSEL)
    t = tubes_alpha(cv, th.great_vessels)
    if t is not None:
        s.paint(t[0], t[1], T.VESSEL)
    t = tubes_alpha(cv, th.esophagus)
    if t is not None:
        s.paint(t[0], t[1], T.MUSCLE)
    _paint_tube_with_lumen(s, th.airways, T.CARTILAGE, lumen=0.8, grow=2.0)


def lung_side_points(
    tissue: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    zs: np.ndarray,
    rng: np.random.Generator,
    n: int,
) -> dict[str, np.ndarray]:
    """Random points (reference frame) inside each lung, from a coarse tissue volume."""
    k, i, j = np.nonzero(tissue == T.LUNG)
    pts = np.stack([xs[j], ys[i], zs[k]], axis=1).astype(float)
    step = np.array([xs[1] - xs[0], ys[1] - ys[0], abs(zs[1] - zs[0])])
    pts += (rng.random(pts.shape) - 0.5) * step
    out = {}
    for side, pick in (("right", pts[:, 0] < 0), ("left", pts[:, 0] >= 0)):
        side_pts = pts[pick]
        if len(side_pts) > n:
            side_pts = side_pts[rng.choice(len(side_pts), n, replace=False)]
        out[side] = side_pts
    return out

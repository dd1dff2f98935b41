"""The named vessels, airways and the heart, in the reference frame (see body.py).

Centrelines are written as (x, y, z, radius) points in mm from anatomy: the aorta rises from
the heart, arches back and left and descends left-anterior of the spine; the pulmonary trunk
splits under the arch into the two hilar arteries; the cavae reach the right atrium. Points
near the spine are placed relative to the vertebral bodies so they follow the spine's curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.demo.body import Profile
from medview.demo.shapes import Ellipsoid, rotation
from medview.demo.tubes import Tubes


def _front_of_spine(z: float, dx: float, gap: float, r: float) -> tuple[float, ...]:
    """A point `dx` mm left of the midline, `gap` mm in front of the vertebral body."""
    p = Profile.at(z, 1.0)
    return (dx, p.vb_y - p.vb_r - gap - r, z, r)


def _line(points) -> Tubes:
    a = np.asarray(points, float)
    return Tubes.polyline(a[:, :3], a[:, 3])


def aorta() -> Tubes:
    pts: list[tuple[float, ...]] = [
        (2, -20, 48, 14),
        (-6, -28, 80, 15),
        (-8, -27, 105, 15),
        (-4, -19, 124, 14),
        (6, -2, 133, 13),
        (18, 14, 129, 12),
    ]
    for z, dx, gap in (
        (118, 28, -14),
        (90, 30, -20),
        (50, 30, -20),
        (10, 24, -12),
        (-40, 12, -2),
        (-100, 8, 1),
        (-200, 6, 1),
        (-300, 2, 1),
    ):
        r = 12.0 if z > 0 else (11.0 if z > -150 else 9.5)
        pts.append(_front_of_spine(z, dx, gap, r))
    return _line(pts)


def systemic_veins() -> list[Tubes]:
    ivc: list[tuple[float, ...]] = [(-28, -18, 32, 12), (-26, -2, 0, 12), (-25, 6, -40, 12)]
    ivc += [_front_of_spine(z, -26, -2, 11) for z in (-100, -200, -300)]
    return [
        _line(ivc),
        _line([(-34, -16, 178, 8), (-33, -14, 120, 9), (-30, -14, 70, 10), (-28, -18, 45, 11)]),
        _line([(58, -14, 186, 6), (15, -30, 173, 7), (-33, -17, 174, 7.5)]),
        _line([(-62, -10, 202, 7), (-36, -15, 178, 8)]),
    ]


def arch_branches() -> list[Tubes]:
    return [
        _line([(-2, -16, 128, 7), (-14, -12, 160, 7), (-30, -5, 195, 6), (-45, 0, 240, 5)]),
        _line([(6, -6, 132, 4.5), (12, -4, 170, 4.5), (20, -2, 240, 4)]),
        _line([(15, 5, 131, 5.5), (30, 8, 165, 5.5), (55, 10, 195, 5), (80, 8, 218, 5)]),
    ]


# Hilar ends of the pulmonary arteries and veins, and of the main bronchi: the lung trees
# grow from these points.
HILA = {
    "right": {
        "artery": (-48.0, 6.0, 86.0),
        "vein": (-42.0, 12.0, 55.0),
        "airway": (-26.0, 4.0, 80.0),
    },
    "left": {
        "artery": (44.0, 12.0, 92.0),
        "vein": (42.0, 16.0, 58.0),
        "airway": (36.0, 10.0, 74.0),
    },
}


def pulmonary_vessels() -> list[Tubes]:
    return [
        _line([(18, -48, 52, 14), (20, -30, 78, 14), (12, -8, 90, 13)]),
        _line(
            [(12, -8, 90, 11), (-5, 0, 92, 10.5), (-30, 3, 90, 10), (*HILA["right"]["artery"], 9)]
        ),
        _line([(12, -8, 90, 11), (30, 2, 97, 10), (*HILA["left"]["artery"], 9)]),
        _line([(*HILA["right"]["vein"], 7), (-20, 6, 48, 8), (5, -6, 46, 8)]),
        _line([(*HILA["left"]["vein"], 7), (25, 8, 50, 8), (5, -6, 46, 8)]),
    ]


def central_airways() -> Tubes:
    """Trachea and main bronchi (lumen radius; the wall is drawn around it)."""
    return Tubes.concat(
        [
            _line([(0, -12, 250, 9), (0, -13, 180, 9), (2, -10, 130, 8.5), (2, -4, 104, 8)]),
            _line([(2, -4, 104, 7), (-14, 0, 92, 6.5), (*HILA["right"]["airway"], 6)]),
            _line([(2, -4, 104, 6.5), (18, 4, 92, 6), (*HILA["left"]["airway"], 5.5)]),
        ]
    )


def esophagus() -> Tubes:
    pts = [_front_of_spine(z, dx, 1, 7.5) for z, dx in ((250, 4), (150, 5), (80, 8), (30, 12))]
    pts += [(24, -2, -10, 8), (38, -14, -45, 9)]
    return _line(pts)


def abdominal_vessels() -> list[Tubes]:
    return [
        _line([(-5, -18, -112, 7), (-20, -12, -98, 8), (-38, -6, -85, 8)]),  # portal vein
        _line([(72, 24, -90, 4.5), (40, 6, -100, 5), (10, -12, -110, 5.5), (-5, -18, -112, 6)]),
        _line([(-5, -18, -112, 6), (-8, -25, -160, 5.5), (-10, -30, -240, 5)]),  # SMV
        _line([(8, -20, -98, 4.5), (6, -32, -125, 4), (4, -40, -210, 3.5)]),  # SMA
        _line([(9, -18, -80, 4), (9, -34, -82, 3.5)]),  # celiac trunk
        _line([(58, 28, -128, 5), (25, -2, -126, 5), (-25, -8, -126, 5)]),  # left renal vein
        _line([(-50, 24, -140, 5), (-26, -2, -134, 5)]),
        _line([(8, -12, -120, 3.5), (52, 26, -124, 3.5)]),  # renal arteries
        _line([(8, -12, -124, 3.5), (-20, 8, -130, 3.2), (-52, 24, -136, 3.2)]),
    ]


# Entry of the hepatic veins into the IVC, and of the portal vein into the liver.
HEPATIC_VEIN_ROOT = (-25.0, 4.0, -12.0)
PORTA_HEPATIS = (-38.0, -6.0, -85.0)


@dataclass(frozen=True)
class Heart:
    pericardium: Ellipsoid  # outer contour plus epicardial fat
    envelope: Ellipsoid  # what keeps the lungs away: the pericardium and a little more
    myocardium: Ellipsoid
    chambers: tuple[Ellipsoid, ...]


def heart() -> Heart:
    """Heart with its long axis pointing anterior, left and down to the apex."""
    rot = rotation(yaw_deg=-42.0, pitch_deg=36.0)  # x axis -> base-to-apex direction
    centre = (22.0, -32.0, 20.0)
    outer = Ellipsoid.make(centre, (62, 50, 44), rot)
    chambers = (
        Ellipsoid.make((34, -28, 12), (44, 23, 21), rot),  # left ventricle
        Ellipsoid.make((6, -54, 20), (40, 15, 26), rot),  # right ventricle
        Ellipsoid.make((10, -12, 46), (28, 16, 16)),  # left atrium
        Ellipsoid.make((-24, -22, 28), (24, 22, 30)),  # right atrium
    )
    return Heart(outer.grown(4.0), outer.grown(6.0), outer, chambers)

"""Gantry tilt: a synthetic CT whose image planes are tilted 15° while the table moves 3 mm a
slice. The slice spacing MedView reports — `medview info`, the scan, the loaded volume, the
corner text, voxel volumes — is the distance between the planes along their normal
(3 cos 15° = 2.898 mm, what Spacing Between Slices means), not the 3 mm between slice
origins; the affine keeps the shear, so every voxel stays where the files put it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import dicom_factory as F
import numpy as np
import pytest

from medview.cli import main
from medview.core import geometry
from medview.io.dicom.index import scan
from medview.io.dicom.volume import load_series
from medview.io.image_files import read_image, write_volume
from medview.viewer.annotations import corner_lines
from medview.viewer.planes import Plane
from medview.viewer.state import ViewerState

TILT = math.radians(15)
FEED_MM = 3.0
BETWEEN_MM = FEED_MM * math.cos(TILT)  # 2.898 mm
# planes tilted about the patient's left-right axis; the table moves along z
ORIENTATION = (1.0, 0.0, 0.0, 0.0, math.cos(TILT), -math.sin(TILT))


@pytest.fixture
def tilted(tmp_path: Path) -> F.Written:
    return F.write_ct_series(
        tmp_path / "tilted", n=8, step=(0.0, 0.0, FEED_MM), orientation=ORIENTATION, thickness=3.0
    )


def test_the_slice_spacing_of_an_affine_is_the_distance_between_its_planes() -> None:
    affine = geometry.affine_from_plane(
        (0, 0, 0), ORIENTATION[:3], ORIENTATION[3:], (0.7, 0.8), (0.0, 0.0, FEED_MM)
    )
    assert geometry.spacing_from_affine(affine) == pytest.approx((2.898, 0.7, 0.8), abs=5e-4)
    # the voxel's volume is the product (the sheared voxel is a parallelepiped)
    assert np.prod(geometry.spacing_from_affine(affine)) == pytest.approx(
        abs(np.linalg.det(affine[:3, :3]))
    )
    straight = geometry.affine_from_plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (0.7, 0.8), (0, 0, -2.5))
    assert geometry.spacing_from_affine(straight) == pytest.approx((2.5, 0.7, 0.8))


def test_info_reports_the_spacing_between_planes(tilted, tmp_path, capsys) -> None:
    assert (
        main(["--log-file", str(tmp_path / "log"), "info", str(tmp_path / "tilted"), "--json"]) == 0
    )
    (series,) = json.loads(capsys.readouterr().out)["studies"][0]["series"]
    assert series["slice_spacing_mm"] == pytest.approx(2.898, abs=1e-3)
    assert "gantry_tilt" in {w["code"] for w in series["warnings"]}
    assert main(["--log-file", str(tmp_path / "log"), "info", str(tmp_path / "tilted")]) == 0
    assert "slices 2.9 mm" in capsys.readouterr().out


def test_the_volume_keeps_the_shear_and_measures_along_the_normal(tilted) -> None:
    (series,) = scan([tilted.paths[0].parent]).series
    assert series.spacing_mm[0] == pytest.approx(BETWEEN_MM)
    volume = load_series(series)
    assert volume.spacing_mm == pytest.approx((BETWEEN_MM, 0.7, 0.8))
    # the affine still steps 3 mm along z a slice: each voxel where its file put it
    np.testing.assert_allclose(volume.affine[:3, 0], (0.0, 0.0, FEED_MM), atol=1e-6)
    np.testing.assert_allclose(
        volume.index_to_lps([(k, 0, 0) for k in range(8)]), tilted.positions, atol=1e-4
    )
    assert np.prod(volume.spacing_mm) == pytest.approx(abs(np.linalg.det(volume.affine[:3, :3])))

    state = ViewerState()
    state.set_volume(volume)
    assert "Thk 3.00 mm  Sp 2.90 mm" in corner_lines(state, Plane.AXIAL, 1.0)["bl"]


def test_a_converted_tilted_volume_keeps_shear_and_spacing(tilted, tmp_path) -> None:
    (series,) = scan([tilted.paths[0].parent]).series
    out = tmp_path / "tilted.nrrd"
    write_volume(load_series(series), out)
    again = read_image(out)
    np.testing.assert_allclose(again.affine[:3, 0], (0.0, 0.0, FEED_MM), atol=1e-5)
    assert again.spacing_mm[0] == pytest.approx(BETWEEN_MM, abs=1e-5)

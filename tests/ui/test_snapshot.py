"""`medview snapshot`: the PNG is the app's SliceView drawn offscreen; its pixels must follow
the window, the slice asked for and the radiological left/right convention, and every bad
option must end in one line with the right exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dicom_factory import write_ct_series
from PySide6 import QtGui

from medview.core.geometry import affine_from_plane
from medview.core.volume import Volume, VolumeMetadata
from medview.core.windowing import CT_PRESETS, Window
from medview.io.image_files import write_volume
from medview.ui.snapshot import png_bytes, render_view
from medview.viewer.planes import Plane

BONE = next(w for w in CT_PRESETS if w.name == "Bone")
# a tall-ish body: 6 axial slices of 40 x 60 voxels, 1 mm pixels, 2 mm slices
SHAPE = (6, 40, 60)


def ct(array: np.ndarray, affine: np.ndarray) -> Volume:
    return Volume(array.astype(np.int16), affine, VolumeMetadata(modality="CT", units="HU"))


def axial_affine(col_towards_left: bool = True) -> np.ndarray:
    """Axial stack; columns run towards the patient's left (+x) or, flipped, towards the
    right, so the display must turn the image round to keep patient left on screen right."""
    row_cos = (1, 0, 0) if col_towards_left else (-1, 0, 0)
    return affine_from_plane((0, 0, 0), row_cos, (0, 1, 0), (1.0, 1.0), (0, 0, 2.0))


def lps_grid(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    return np.indices(shape).reshape(3, -1).T @ affine[:3, :3].T + affine[:3, 3]


def grey(image: QtGui.QImage) -> np.ndarray:
    """(height, width) grey levels of a rendered image."""
    g = image.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(g.constBits(), np.uint8).reshape(g.height(), g.bytesPerLine())
    return arr[:, : g.width()].copy()


def decode(path: Path) -> QtGui.QImage:
    image = QtGui.QImage()
    assert image.load(str(path)), f"{path} is not a readable image"
    return image


def test_bone_window_air_dark_bone_bright(qapp):
    affine = axial_affine()
    vol = np.full(SHAPE, -1000)
    vol[:, 10:30, 10:50] = 40  # soft tissue
    vol[:, 15:25, 25:35] = 1200  # bone
    image = render_view(
        ct(vol, affine), Plane.AXIAL, 3, window=BONE, size=(120, 80), overlays=False
    )
    assert (image.width(), image.height()) == (120, 80)
    g = grey(image)  # 1 mm pixels shown 2x: image (row, col) -> screen (2 row, 2 col)
    assert g[4, 4] < 10  # air
    assert g[40, 60] > 200  # bone: (1200 + 500) / 2000 of full scale
    assert 50 < g[24, 30] < 90  # soft tissue, (40 + 500) / 2000


@pytest.mark.parametrize("col_towards_left", [True, False], ids=["cols-L", "cols-R"])
def test_patient_left_is_on_the_right_of_an_axial_image(qapp, col_towards_left):
    affine = axial_affine(col_towards_left)
    x = lps_grid(affine, SHAPE)[:, 0].reshape(SHAPE)
    vol = np.where(x > x.mean(), 1000, -1000)  # bright on the patient's left (+x in LPS)
    for plane in (Plane.AXIAL, Plane.CORONAL):
        g = grey(
            render_view(ct(vol, affine), plane, 0, window=BONE, size=(120, 80), overlays=False)
        )
        left, right = g[:, :60].mean(), g[:, 60:].mean()
        assert right > 3 * left + 10, (plane, left, right)


def test_sagittal_shows_anterior_on_the_left(qapp):
    affine = axial_affine()
    y = lps_grid(affine, SHAPE)[:, 1].reshape(SHAPE)
    vol = np.where(y < y.mean(), 1000, -1000)  # bright anteriorly (-y in LPS)
    g = grey(
        render_view(
            ct(vol, affine), Plane.SAGITTAL, 30, window=BONE, size=(120, 80), overlays=False
        )
    )
    assert g[:, :60].mean() > 3 * g[:, 60:].mean() + 10


def test_the_slice_asked_for_is_drawn(qapp):
    vol = np.repeat(np.arange(SHAPE[0]) * 100 - 200, SHAPE[1] * SHAPE[2]).reshape(SHAPE)
    for index in (0, 4):
        g = grey(
            render_view(
                ct(vol, axial_affine()),
                Plane.AXIAL,
                index,
                window=Window(0, 1000),
                size=(60, 40),
                overlays=False,
            )
        )
        expected = (index * 100 - 200 + 500) / 1000 * 255
        assert abs(float(np.median(g)) - expected) < 4


def test_overlays_draw_corner_text_and_png_round_trips(qapp):
    vol = ct(np.full(SHAPE, -1000), axial_affine())  # all black: anything bright is text
    plain = grey(render_view(vol, Plane.AXIAL, 2, size=(300, 200), overlays=False))
    annotated = render_view(vol, Plane.AXIAL, 2, size=(300, 200))
    assert plain.max() < 10
    g = grey(annotated)
    assert g[-40:, -150:].max() > 150  # "Im 3/6" bottom right
    assert g[80:120, :25].max() > 150  # orientation letter R on the left edge
    decoded = QtGui.QImage.fromData(png_bytes(annotated), "PNG")
    assert np.array_equal(grey(decoded), g)


# -- the command, run as a user runs it
def medview(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDVIEW_DATA_DIR": str(tmp_path / "data")}
    env.pop("DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)  # the command must choose offscreen by itself
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "medview",
            "--log-file",
            str(tmp_path / "log.txt"),
            "snapshot",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def dicom_series(tmp_path: Path) -> Path:
    # slice k holds k * 100 HU (stored k * 100 + 1024 with the series' -1024 intercept)
    write_ct_series(
        tmp_path / "dicom",
        n=5,
        rows=20,
        cols=30,
        spacing=(1.0, 1.0),
        pixel_fn=lambda k, rows, cols: np.full((rows, cols), 1024 + 100 * k),
    )
    return tmp_path / "dicom"


def test_command_draws_the_numbered_slice_at_the_size_asked(tmp_path, dicom_series):
    out = tmp_path / "shots" / "k.png"
    out.parent.mkdir()
    r = medview(
        tmp_path,
        str(dicom_series),
        "--out",
        str(out),
        "--slice",
        "4",
        "--window",
        "1000/0",
        "--size",
        "150x100",
        "--no-overlays",
    )
    assert r.returncode == 0, r.stderr
    image = decode(out)
    assert (image.width(), image.height()) == (150, 100)
    assert abs(float(np.median(grey(image))) - (300 + 500) / 1000 * 255) < 4
    assert [p.name for p in out.parent.iterdir()] == ["k.png"]  # no temp file left behind


def test_command_defaults_on_an_image_file(tmp_path):
    vol = np.full(SHAPE, -1000)
    vol[:, 15:25, 25:35] = 1200
    path = tmp_path / "v.nrrd"
    write_volume(ct(vol, axial_affine()), path)
    out = tmp_path / "v.png"
    r = medview(tmp_path, str(path), "--out", str(out), "--plane", "Coronal", "--window", "BONE")
    assert r.returncode == 0, r.stderr
    assert "coronal image 21/40" in r.stdout
    image = decode(out)
    assert (image.width(), image.height()) == (512, 512)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--slice", "6"], 2, "slices 1 to 5"),
        (["--slice", "0"], 2, "slices 1 to 5"),
        (["--slice", "two"], 2, "whole number"),
        (["--plane", "oblique"], 2, "axial, coronal, sagittal"),
        (["--window", "soft"], 2, "1500/-600"),
        (["--window", "0/40"], 2, "width above 0"),
        (["--size", "10x10"], 2, "16 to 8192"),
        (["--size", "big"], 2, "WIDTHxHEIGHT"),
        (["--out", "{tmp}/x.jpg"], 2, ".png"),
        (["--out", "{tmp}/missing/x.png"], 1, "no such folder"),
        (["--out", "{tmp}/dicom/IM0000.dcm/x.png"], 1, "no such folder"),
    ],
    ids=lambda v: v if isinstance(v, int) else " ".join(v) if isinstance(v, list) else None,
)
def test_bad_options_end_in_one_line(tmp_path, dicom_series, args, code, words):
    args = [a.format(tmp=tmp_path) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "x.png")]
    r = medview(tmp_path, str(dicom_series), *args)
    assert r.returncode == code, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr
    assert r.stderr.startswith("medview: ") and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.png"))


def test_unreadable_input_exits_1(tmp_path):
    (tmp_path / "empty").mkdir()
    r = medview(tmp_path, str(tmp_path / "empty"), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr

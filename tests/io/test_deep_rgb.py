"""16- and 32-bit RGB (pydicom's SC_rgb_16bit / SC_rgb_32bit and their RLE, big-endian and
2-frame twins: 12 real files, copied, never changed) keep their stored values through the
reader and `medview convert` — uint16 and uint32, equal to pydicom's — instead of coming
out as 0..255; files written from them read back the same."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medview.cli import main
from medview.io.dicom.index import scan
from medview.io.dicom.volume import load_series
from medview.io.image_files import read_image

DEEP_RGB = [
    f"SC_rgb_{kind}{bits}{frames}.dcm"
    for kind in ("", "rle_", "expb_")
    for bits in ("16bit", "32bit")
    for frames in ("", "_2frame")
]


def _copied(name: str, folder: Path) -> Path:
    with warnings.catch_warnings():  # pydicom-data's download note on an offline machine
        warnings.simplefilter("ignore")
        source = get_testdata_file(name)
    if source is None:
        pytest.fail(f"pydicom's test file {name} is missing")
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, folder / name))


def _pydicom_frames(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array  # big-endian files come out big-endian: compare in native order
    frames = frames.astype(frames.dtype.newbyteorder("="))
    return frames if int(ds.get("NumberOfFrames", 1)) > 1 else frames[np.newaxis]


def test_all_twelve_files_are_there() -> None:
    assert len(DEEP_RGB) == 12


@pytest.mark.parametrize("name", DEEP_RGB)
def test_the_reader_keeps_the_stored_values(tmp_path: Path, name: str) -> None:
    path = _copied(name, tmp_path)
    (series,) = scan([path]).series
    volume = load_series(series)
    want = _pydicom_frames(path)
    assert volume.array.dtype == np.dtype("uint16" if "16bit" in name else "uint32")
    assert volume.array.dtype == want.dtype and volume.array.max() > 255
    np.testing.assert_array_equal(volume.array, want)


@pytest.mark.parametrize("name", DEEP_RGB)
@pytest.mark.parametrize("suffix", [".nrrd", ".npy"])
def test_convert_keeps_the_stored_values(tmp_path: Path, name: str, suffix: str, capsys) -> None:
    path = _copied(name, tmp_path / "in")
    out = tmp_path / f"out{suffix}"
    assert main(["--log-file", str(tmp_path / "log"), "convert", str(path), str(out)]) == 0
    capsys.readouterr()
    got = np.load(out) if suffix == ".npy" else read_image(out).array
    want = _pydicom_frames(path)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nii.gz"])
def test_deep_rgb_round_trips_through_every_format(tmp_path: Path, suffix: str, capsys) -> None:
    path = _copied("SC_rgb_32bit_2frame.dcm", tmp_path / "in")
    out = tmp_path / f"out{suffix}"
    assert main(["--log-file", str(tmp_path / "log"), "convert", str(path), str(out)]) == 0
    capsys.readouterr()
    got = read_image(out)
    assert got.is_colour and got.array.dtype == np.uint32
    np.testing.assert_array_equal(got.array, _pydicom_frames(path))

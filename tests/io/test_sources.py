"""Paths a file names stay inside its folder: a MetaImage / NRRD header's detached data file
(ElementDataFile / data file: one name, a LIST or a numbered pattern) that is absolute or
leads outside the header's folder — by "..", or by a link — is refused in one sentence and
never read; the DICOMDIR's case-insensitive file-name fallback does not follow a link out."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medview.core.errors import InvalidInputError
from medview.io.image_files import read_image
from medview.io.sources import resolve_dicomdir_reference

SHAPE = (3, 4, 5)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """Raw voxel bytes outside the study folder, which a hostile header tries to read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.raw"
    path.write_bytes(np.arange(60, dtype="<i2").tobytes())
    return path


@pytest.fixture
def study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    return folder


def _mhd(study: Path, data_file: str) -> Path:
    """A header written by SimpleITK, its ElementDataFile pointed at `data_file`."""
    path = study / "ct.mhd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros(SHAPE, np.int16)), str(path))
    (study / "ct.raw").unlink()
    text = path.read_text().replace("ElementDataFile = ct.raw", f"ElementDataFile = {data_file}")
    path.write_text(text)
    return path


def _nhdr(study: Path, data_file: str, extra: str = "") -> Path:
    path = study / "ct.nhdr"
    path.write_text(
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 5 4 3\nencoding: raw\n"
        "endian: little\nspace: left-posterior-superior\n"
        "space directions: (1,0,0) (0,1,0) (0,0,1)\n"
        f"data file: {data_file}\n{extra}\n"
    )
    return path


def _refused(path: Path, words: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        read_image(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and words in message
    assert "\n" not in message


@pytest.mark.parametrize("write", [_mhd, _nhdr])
def test_a_data_file_in_the_headers_folder_is_read(study: Path, secret: Path, write) -> None:
    (study / "parts").mkdir()
    (study / "parts" / "ct.raw").write_bytes(secret.read_bytes())
    volume = read_image(write(study, "parts/ct.raw"))
    np.testing.assert_array_equal(volume.array, np.arange(60).reshape(SHAPE))


@pytest.mark.parametrize("write", [_mhd, _nhdr])
def test_a_data_file_outside_the_folder_is_refused(study: Path, secret: Path, write) -> None:
    _refused(
        write(study, "../outside/secret.raw"),
        "names a data file outside its own folder (../outside/secret.raw); refused",
    )


@pytest.mark.parametrize("write", [_mhd, _nhdr])
def test_an_absolute_data_file_is_refused(study: Path, secret: Path, write) -> None:
    # the path is shown, shortened when long: a temporary folder's may be
    _refused(write(study, str(secret)), "names its data file by an absolute path (/")


@pytest.mark.parametrize("write", [_mhd, _nhdr])
def test_a_link_out_of_the_folder_is_refused(study: Path, secret: Path, write) -> None:
    header = write(study, "ct.raw")
    os.symlink(secret, study / "ct.raw")
    _refused(header, "names a data file outside its own folder (ct.raw)")


def test_a_nrrd_list_of_data_files_is_checked_line_by_line(study: Path, secret: Path) -> None:
    for i in range(2):
        (study / f"s{i}.raw").write_bytes(secret.read_bytes()[40 * i : 40 * (i + 1)])
    path = _nhdr(study, "LIST 2", "s0.raw\n../outside/secret.raw")
    path.write_text(path.read_text().replace("sizes: 5 4 3", "sizes: 5 4 2"))
    _refused(path, "outside its own folder (../outside/secret.raw)")
    path.write_text(path.read_text().replace("../outside/secret.raw", "s1.raw"))
    np.testing.assert_array_equal(read_image(path).array, np.arange(40).reshape(2, 4, 5))


def test_a_numbered_pattern_out_of_the_folder_is_refused(study: Path, secret: Path) -> None:
    _refused(
        _nhdr(study, "../outside/slice%03d.raw 1 3 1 2"),
        "outside its own folder (../outside/slice%03d.raw)",
    )


def test_the_case_insensitive_fallback_does_not_follow_a_link_out(
    tmp_path: Path, secret: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "DICOMDIR").write_bytes(b"")
    (media / "img2").write_bytes(b"inside")
    os.symlink(secret, media / "img1")
    assert resolve_dicomdir_reference(media / "DICOMDIR", ["IMG1"]) is None
    assert resolve_dicomdir_reference(media / "DICOMDIR", ["IMG2"]) == media / "img2"

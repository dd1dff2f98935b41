"""NIfTI, NRRD and MetaImage import and export through SimpleITK, plus .npy export.

SimpleITK works in LPS like the rest of MedView; its NIfTI reader and writer convert to and
from NIfTI's RAS themselves, so this module is the only place that RAS<->LPS happens and no
code here flips signs by hand. SimpleITK's array order (z, y, x) is our (slice, row, col),
so its spacing is (col, row, slice), its direction columns are (row cosine, column cosine,
slice direction) and its origin is our LPS origin.

Sheared grids (gantry tilt: the slice step is not perpendicular to the image plane):
SimpleITK keeps a non-orthogonal direction exactly in NRRD and MetaImage, so those are
written as they are. Its NIfTI writer instead "coerces" the direction to an orthogonal one,
which silently moves every voxel. For NIfTI we therefore resample onto an orthogonal grid
that covers the whole tilted stack (linear interpolation, outside = the volume's minimum),
as dcm2niix does for gantry tilt, and return a "resampled_shear" warning.

SimpleITK is imported inside functions: it costs a large part of a second to import and
`medview --help` must answer at once.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from medview.core import geometry
from medview.core.errors import InvalidInputError, ResourceLimitError, UnsupportedInputError
from medview.core.limits import format_bytes, max_volume_bytes
from medview.core.series import LoadWarning
from medview.core.volume import Volume, VolumeMetadata

SUPPORTED_READ_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SUPPORTED_WRITE_SUFFIXES: tuple[str, ...] = (*SUPPORTED_READ_SUFFIXES, ".npy")

_IMAGE_IO = {
    ".nii": "NiftiImageIO",
    ".nii.gz": "NiftiImageIO",
    ".nrrd": "NrrdImageIO",
    ".nhdr": "NrrdImageIO",
    ".mha": "MetaImageIO",
    ".mhd": "MetaImageIO",
}
_FORMAT_NAME = {".nii": "NIfTI", ".nrrd": "NRRD", ".mha": "MetaImage", ".npy": "NumPy"}
_FORMAT_NAME.update({".nii.gz": "NIfTI", ".nhdr": "NRRD", ".mhd": "MetaImage"})
_NIFTI = (".nii", ".nii.gz")
# NIfTI datatype codes of integer types of at most 16 bits: scaled values stay exact in float32.
_NIFTI_SMALL_INT_TYPES = {"2", "4", "256", "512"}
# A non-orthogonal affine that moves no voxel centre by more than this fraction of the
# smallest voxel size is written as orthogonal, without resampling.
_SHEAR_TOLERANCE_VOXELS = 0.01
_NUMPY_NAMES = ("UInt8", "Int8", "UInt16", "Int16", "UInt32", "Int32", "UInt64", "Int64")


def _suffix(path: Path, allowed: tuple[str, ...]) -> str | None:
    """The canonical (lower-case) suffix of `path` among `allowed`, handling `.nii.gz`."""
    name = path.name.lower()
    return next((s for s in sorted(allowed, key=len, reverse=True) if name.endswith(s)), None)


def is_image_file(path: str | Path) -> bool:
    """Whether `path` names a file `read_image` can open, judged by its suffix alone."""
    return _suffix(Path(path), SUPPORTED_READ_SUFFIXES) is not None


def _itk_reason(error: Exception) -> str:
    """The useful last line of an ITK exception, without source paths and object addresses."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    return re.sub(r"^(ITK ERROR: \w+\(0x[0-9a-f]+\): |sitk::ERROR: )", "", last).rstrip(".")


def _component_dtype(sitk: Any, pixel_id: int) -> np.dtype | None:
    """The numpy dtype of one component of a SimpleITK pixel type, None when unsupported."""
    for name in (*_NUMPY_NAMES, "Float32", "Float64"):
        ids = (getattr(sitk, f"sitk{name}"), getattr(sitk, f"sitkVector{name}"))
        if pixel_id in ids:
            return np.dtype(name.lower())
    return None


def _affine_from_image(geo: Any) -> np.ndarray:
    """Our (slice, row, col) -> LPS affine from a SimpleITK image or reader of 2 or 3 dims."""
    n = len(geo.GetSpacing())
    direction = np.eye(3)
    direction[:n, :n] = np.reshape(geo.GetDirection(), (n, n))
    spacing = np.ones(3)
    spacing[:n] = geo.GetSpacing()
    origin = np.zeros(3)
    origin[:n] = geo.GetOrigin()
    affine = np.eye(4)
    affine[:3, :3] = (direction * spacing)[:, ::-1]  # sitk axes (x, y, z) -> (slice, row, col)
    affine[:3, 3] = origin
    return affine


def _image_from_volume(sitk: Any, volume: Volume) -> Any:
    """A SimpleITK image with the volume's voxels and geometry (direction kept as given)."""
    axes = volume.affine[:3, 2::-1]  # columns (col step, row step, slice step) = sitk x, y, z
    spacing = np.linalg.norm(axes, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"volume affine has a zero-length axis: {volume.affine[:3, :3]}")
    image = sitk.GetImageFromArray(volume.array, isVector=volume.is_colour)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((axes / spacing).ravel().tolist())
    image.SetOrigin(volume.affine[:3, 3].tolist())
    return image


def _check_nifti_complete(path: Path, suffix: str, reader: Any, location: str) -> None:
    """Refuse a NIfTI file whose voxel data is cut short.

    ITK's NIfTI reader fills a truncated file with garbage instead of failing, so compare
    the size the header implies with what the file holds. For .nii.gz, gzip's trailer keeps
    the uncompressed size (mod 2**32): a match is accepted at once; otherwise (truncated,
    or a multi-member gzip) the stream is decompressed to count, which also checks the CRC.
    """
    dims = [int(reader.GetMetaData(f"dim[{i}]")) for i in range(1, 8)]
    n_voxels = int(np.prod(dims[: int(reader.GetMetaData("dim[0]"))], dtype=np.int64))
    expected = int(float(reader.GetMetaData("vox_offset"))) + n_voxels * (
        int(reader.GetMetaData("bitpix")) // 8
    )
    if suffix == ".nii":
        available = path.stat().st_size
    else:
        with path.open("rb") as f:
            f.seek(-4, os.SEEK_END)
            if int.from_bytes(f.read(4), "little") == expected % 2**32:
                return
        available = 0
        try:
            with gzip.open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    available += len(chunk)
        except (EOFError, OSError, zlib.error) as error:
            raise InvalidInputError(
                location, f"compressed data is damaged or cut short ({error}); copy it again"
            ) from None
    if available < expected:
        raise InvalidInputError(
            location,
            f"file is cut short: the header needs {expected} bytes but it holds {available}; "
            "copy it again",
        )


def _integral_rescale(reader: Any, array: np.ndarray) -> np.ndarray:
    """int16 (or int32) instead of float32 when a NIfTI's scl_slope/scl_inter are integers.

    ITK turns any NIfTI with a rescale (dcm2niix writes CT as raw values plus scl_inter
    -1024) into float32; for a small integer type and integer slope and intercept every
    value is an exact integer, so the smallest exact integer type holds it losslessly.
    """
    keys = set(reader.GetMetaDataKeys())
    if array.dtype != np.float32 or not {"scl_slope", "scl_inter", "datatype"} <= keys:
        return array
    slope, inter = float(reader.GetMetaData("scl_slope")), float(reader.GetMetaData("scl_inter"))
    if reader.GetMetaData("datatype") not in _NIFTI_SMALL_INT_TYPES or not (
        slope.is_integer() and inter.is_integer()
    ):
        return array
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    info = np.iinfo(np.int16)
    return array.astype(np.int16 if info.min <= lo and hi <= info.max else np.int32)


def read_image(path: str | Path) -> Volume:
    """Read a NIfTI, NRRD or MetaImage file into a Volume (LPS affine, dtype as stored).

    The header is read first and the size it declares checked against the memory limit
    before any voxel is allocated. 2D images become one slice; a 4D NIfTI (time series)
    loads its first time point with a warning, since MedView shows one volume at a time.
    """
    p = Path(path)
    location = str(p)
    suffix = _suffix(p, SUPPORTED_READ_SUFFIXES)
    if suffix is None:
        raise UnsupportedInputError(
            location,
            f"is not a NIfTI, NRRD or MetaImage file (MedView reads "
            f"{', '.join(SUPPORTED_READ_SUFFIXES)}); convert it to one of those",
        )
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        raise InvalidInputError(location, f"{what}; choose an image file")
    if p.stat().st_size == 0:
        raise InvalidInputError(location, "file is empty (0 bytes); copy or export it again")
    kind = _FORMAT_NAME[suffix]

    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO(_IMAGE_IO[suffix])  # by suffix: never let ITK guess from the content
    reader.SetFileName(location)
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InvalidInputError(
            location, f"cannot be read as {kind} ({_itk_reason(error)}); export it again"
        ) from None

    warnings: list[LoadWarning] = []
    size = list(reader.GetSize())
    if len(size) == 4:
        if size[3] > 1:
            warnings.append(
                LoadWarning(
                    "first_time_point",
                    f"{p.name} holds {size[3]} volumes (4D); showing the first only",
                )
            )
        reader.SetExtractIndex([0, 0, 0, 0])
        reader.SetExtractSize([*size[:3], 0])
        size = size[:3]
    elif len(size) not in (2, 3):
        raise UnsupportedInputError(
            location, f"has {len(size)} dimensions; MedView opens 2D, 3D and 4D images"
        )

    components = reader.GetNumberOfComponents()
    dtype = _component_dtype(sitk, reader.GetPixelID())
    if dtype is None or components not in (1, 3) or (components == 3 and dtype != np.uint8):
        raise UnsupportedInputError(
            location,
            f"holds {sitk.GetPixelIDValueAsString(reader.GetPixelID())} voxels with "
            f"{components} component(s); MedView opens scalar and 8-bit RGB images",
        )
    n_bytes = int(np.prod(size, dtype=np.int64)) * components * dtype.itemsize
    if n_bytes > max_volume_bytes():
        raise ResourceLimitError(
            location,
            f"declares {' x '.join(map(str, size))} voxels ({format_bytes(n_bytes)}), more "
            f"than the {format_bytes(max_volume_bytes())} allowed for one volume; "
            "crop or downsample it first",
        )
    if suffix in _NIFTI:
        _check_nifti_complete(p, suffix, reader, location)

    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InvalidInputError(
            location, f"voxel data cannot be read ({_itk_reason(error)}); export it again"
        ) from None
    affine = _affine_from_image(image)
    array = sitk.GetArrayFromImage(image)
    del image
    if len(size) == 2:
        array = array[np.newaxis]
    if suffix in _NIFTI:
        array = _integral_rescale(reader, array)
    metadata = VolumeMetadata(
        source=location, photometric="RGB" if components == 3 else "MONOCHROME2"
    )
    metadata.warnings.extend(warnings)
    return Volume(array, affine, metadata)


def _orthogonalised(affine: np.ndarray) -> np.ndarray:
    """The nearest orthogonal affine with the same origin, row cosine and voxel sizes in-plane.

    The column cosine is made perpendicular to the row cosine, and the slice step is
    replaced by the plane normal times the distance between slices along it (its sign
    follows the step, so slice order is kept).
    """
    row_cos = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
    col = affine[:3, 1] - (affine[:3, 1] @ row_cos) * row_cos
    col_cos = col / np.linalg.norm(col)
    normal = np.cross(row_cos, col_cos)
    slice_gap = float(affine[:3, 0] @ normal)
    if abs(slice_gap) < 1e-6 * np.linalg.norm(affine[:3, 0]):
        raise ValueError("the slice step lies in the image plane; the affine is degenerate")
    out = affine.copy()
    out[:3, 0] = normal * slice_gap
    out[:3, 1] = col_cos * np.linalg.norm(affine[:3, 1])
    out[:3, 2] = row_cos * np.linalg.norm(affine[:3, 2])
    return out


def _corner_indices(shape: tuple[int, int, int]) -> np.ndarray:
    return np.array(list(itertools.product(*[(0, n - 1) for n in shape])), float)


def _orthogonal_for_nifti(volume: Volume, location: str) -> tuple[Volume, list[LoadWarning]]:
    """The volume on an orthogonal grid NIfTI can hold: the same voxels when the affine is
    orthogonal (within a hundredth of a voxel), else resampled over the whole tilted stack."""
    ortho = _orthogonalised(volume.affine)
    corners = _corner_indices(volume.shape)
    moved = np.linalg.norm(
        geometry.index_to_lps(volume.affine, corners) - geometry.index_to_lps(ortho, corners),
        axis=1,
    ).max()
    spacing = np.array(geometry.spacing_from_affine(ortho))
    if moved <= _SHEAR_TOLERANCE_VOXELS * spacing.min():
        return Volume(volume.array, ortho, volume.metadata), []

    # Index coordinates of the tilted stack's corners in the orthogonal frame: the grid
    # spans them all, so no voxel is cut off.
    frame = ortho[:3, :3] / spacing
    coords = (geometry.index_to_lps(volume.affine, corners) - ortho[:3, 3]) @ frame / spacing
    low = np.floor(coords.min(axis=0) + 1e-3)
    shape = (np.ceil(coords.max(axis=0) - 1e-3) - low + 1).astype(int)
    target = ortho.copy()
    target[:3, 3] = ortho[:3, 3] + ortho[:3, :3] @ low
    components = 3 if volume.is_colour else 1
    n_bytes = int(np.prod(shape)) * components * volume.array.dtype.itemsize
    if n_bytes > max_volume_bytes():
        raise ResourceLimitError(
            location,
            f"straightening the tilted stack for NIfTI needs {format_bytes(n_bytes)}, more "
            "than allowed; save it as .nrrd or .mha, which keep the tilt",
        )

    import SimpleITK as sitk

    integral = volume.array.dtype.kind in "iu"
    float_type = sitk.sitkVectorFloat32 if volume.is_colour else sitk.sitkFloat32
    resampled = sitk.Resample(
        _image_from_volume(sitk, volume),
        size=[int(n) for n in shape[::-1]],
        transform=sitk.Transform(),
        interpolator=sitk.sitkLinear,
        outputOrigin=target[:3, 3].tolist(),
        outputSpacing=spacing[::-1].tolist(),
        outputDirection=frame[:, ::-1].ravel().tolist(),
        defaultPixelValue=float(volume.array.min()),
        outputPixelType=float_type if integral else sitk.sitkUnknown,
    )
    array = sitk.GetArrayFromImage(resampled)
    if integral:
        array = np.rint(array, out=array).astype(volume.array.dtype)
    warning = LoadWarning(
        "resampled_shear",
        f"the slices are tilted by {geometry.shear_angle_deg(volume.affine):.1f}° (gantry "
        f"tilt) and NIfTI cannot store a tilted grid, so the volume was resampled onto an "
        f"orthogonal {' x '.join(map(str, shape))} grid; save as .nrrd or .mha to keep it as is",
    )
    return Volume(array, target, volume.metadata), [warning]


def _metadata_warning(metadata: VolumeMetadata, kind: str) -> list[LoadWarning]:
    """Say which non-empty metadata the file format leaves out."""
    lost = [
        label
        for label, value in (
            ("modality", metadata.modality),
            ("patient details", any(vars(metadata.patient).values())),
            ("study and series identifiers", metadata.study_instance_uid),
            ("descriptions", metadata.study_description or metadata.series_description),
            ("display windows", metadata.windows),
        )
        if value
    ]
    if not lost:
        return []
    return [LoadWarning("metadata_not_saved", f"{kind} files do not keep {', '.join(lost)}")]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_volume(volume: Volume, path: str | Path) -> list[LoadWarning]:
    """Write a volume as NIfTI, NRRD, MetaImage (by suffix) or .npy; return what was lost.

    Writes are atomic: everything goes into a hidden temporary folder beside the target
    (same file system, and SimpleITK picks the format and names detached data files after
    the file name it is given) and is then renamed into place, data files before the header;
    on any failure the temporary folder is removed. `.npy` holds exactly `volume.array`.
    """
    p = Path(path)
    location = str(p)
    suffix = _suffix(p, SUPPORTED_WRITE_SUFFIXES)
    if suffix is None:
        raise UnsupportedInputError(
            location,
            f"cannot write this file type; use one of {', '.join(SUPPORTED_WRITE_SUFFIXES)}",
        )
    folder = p.parent
    kind = _FORMAT_NAME[suffix]
    try:
        temp_dir = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    except OSError as error:
        raise InvalidInputError(
            location, f"cannot write in {folder} ({error.strerror}); choose another folder"
        ) from None

    warnings = _metadata_warning(volume.metadata, kind)
    header = temp_dir / (p.name[: -len(suffix)] + suffix)
    moved: list[Path] = []
    try:
        if suffix == ".npy":
            np.save(header, volume.array)
            warnings.insert(
                0,
                LoadWarning(
                    "geometry_not_saved",
                    ".npy keeps voxels only: spacing, orientation and position are not saved",
                ),
            )
        else:
            import SimpleITK as sitk

            if suffix in _NIFTI:
                volume, shear_warnings = _orthogonal_for_nifti(volume, location)
                warnings = shear_warnings + warnings
            writer = sitk.ImageFileWriter()
            writer.SetImageIO(_IMAGE_IO[suffix])
            writer.SetFileName(str(header))
            writer.SetUseCompression(suffix != ".nii")
            writer.Execute(_image_from_volume(sitk, volume))
        data_files = sorted(f for f in temp_dir.iterdir() if f != header)
        for f in [*data_files, header]:
            _fsync(f)
        for f in data_files:
            os.replace(f, folder / f.name)
            moved.append(folder / f.name)
        os.replace(header, p)
        _fsync(folder)
    except (OSError, RuntimeError) as error:
        for f in moved:  # data files without their header are of no use to anyone
            f.unlink(missing_ok=True)
        reason = error.strerror if isinstance(error, OSError) else _itk_reason(error)
        raise InvalidInputError(
            location, f"could not be written as {kind} ({reason}); check the disk and folder"
        ) from None
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return warnings

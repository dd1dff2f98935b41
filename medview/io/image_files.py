"""NIfTI, NRRD and MetaImage import and export through SimpleITK, plus .npy export (and
greyscale .nii export streamed slice by slice without SimpleITK: io/nifti_stream.py).

SimpleITK works in LPS like MedView and its NIfTI IO converts RAS itself, so RAS<->LPS
happens only at this boundary (by hand only for a sheared sform, which ITK ignores). Its
array order (z, y, x) is our (slice, row, col): spacing (col, row, slice), direction columns
(row cosine, column cosine, slice direction).

Sheared grids (gantry tilt): SimpleITK keeps a non-orthogonal direction exactly in NRRD and
MetaImage; its NIfTI writer silently "coerces" it to an orthogonal one, moving every voxel.
So NIfTI gets the stack resampled onto an orthogonal grid covering all of it (linear,
outside = the volume's minimum), as dcm2niix does, with a "resampled_shear" warning.
SimpleITK is imported inside functions: importing it takes a large part of a second.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import shutil
import struct
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
from medview.io.nifti_stream import streamable, write_nifti
from medview.io.sources import check_detached_data_files

SUPPORTED_READ_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SUPPORTED_WRITE_SUFFIXES: tuple[str, ...] = (*SUPPORTED_READ_SUFFIXES, ".npy")

_NIFTI = (".nii", ".nii.gz")
_FORMATS = {  # suffix -> (name in messages, the SimpleITK ImageIO that reads and writes it)
    **dict.fromkeys(_NIFTI, ("NIfTI", "NiftiImageIO")),
    **dict.fromkeys((".nrrd", ".nhdr"), ("NRRD", "NrrdImageIO")),
    **dict.fromkeys((".mha", ".mhd"), ("MetaImage", "MetaImageIO")),
    ".npy": ("NumPy", ""),
}
# NIfTI datatype codes of integer types of at most 16 bits: scaled values stay exact in float32.
_NIFTI_SMALL_INT_TYPES = {"2", "4", "256", "512"}
# Orthogonalising an affine that moves no voxel by more than this (in voxels) is no resample.
_SHEAR_TOLERANCE_VOXELS = 0.01
# ITK reads a NIfTI vector image with one slice as 2D, dropping where that slice lies.
_ONE_COLOUR_SLICE = "SimpleITK loses where a single-slice colour NIfTI lies; use .nrrd or .mha"
_RGB = (np.uint8, np.uint16, np.uint32)  # RGB keeps its depth (io/dicom/decode.py)
_NUMPY_NAMES = ("UInt8", "Int8", "UInt16", "Int16", "UInt32", "Int32", "UInt64", "Int64")
_NPY_WARNING = LoadWarning("geometry_not_saved", ".npy keeps no spacing, orientation or position")


def _suffix(path: Path, allowed: tuple[str, ...]) -> str | None:
    """The canonical (lower-case) suffix of `path` among `allowed`, handling `.nii.gz`."""
    name = path.name.lower()
    return next((s for s in sorted(allowed, key=len, reverse=True) if name.endswith(s)), None)


def is_image_file(path: str | Path) -> bool:
    """Whether `path` names a file `read_image` can open, judged by its suffix alone."""
    return _suffix(Path(path), SUPPORTED_READ_SUFFIXES) is not None


def _itk_reason(error: Exception) -> str:
    """The useful last line of an ITK exception, without source paths and object addresses."""
    last = ([ln.strip() for ln in str(error).splitlines() if ln.strip()] or [repr(error)])[-1]
    return re.sub(r"^(ITK ERROR: (\w+\(0x[0-9a-f]+\): )?|sitk::ERROR: )", "", last).rstrip(".")


def _component_dtype(sitk: Any, pixel_id: int) -> np.dtype | None:
    """The numpy dtype of one component of a SimpleITK pixel type, None when unsupported."""
    names = (*_NUMPY_NAMES, "Float32", "Float64")
    ids = {getattr(sitk, f"sitk{v}{n}"): np.dtype(n.lower()) for n in names for v in ("", "Vector")}
    return ids.get(pixel_id)


def _affine_from_image(geo: Any) -> np.ndarray:
    """Our (slice, row, col) -> LPS affine from a SimpleITK image of 2 or 3 dimensions."""
    n = len(geo.GetSpacing())
    axes = np.eye(3)  # columns: sitk's x, y, z steps in LPS mm (a 2D image gets z = 1 mm)
    axes[:n, :n] = np.reshape(geo.GetDirection(), (n, n)) * geo.GetSpacing()
    affine = np.eye(4)
    affine[:3, :3] = axes[:, ::-1]  # (x, y, z) = (col, row, slice)
    affine[:n, 3] = geo.GetOrigin()
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


def _nifti_header(path: Path, suffix: str, location: str) -> tuple[int, np.ndarray | None]:
    """The bytes a NIfTI-1 file must hold (decompressed), and its sform as our (slice, row,
    col) -> LPS affine (None when sform_code is 0), from the raw header: ITK's metadata has
    6 digits, and ITK ignores a sheared sform (dcm2niix's uncorrected gantry tilt)."""
    try:
        with (gzip.open if suffix == ".nii.gz" else open)(path, "rb") as f:
            head = f.read(348)
    except (EOFError, OSError, zlib.error) as error:
        raise InvalidInputError(location, f"is not a readable NIfTI file ({error})") from None
    sizes = {int.from_bytes(head[:4], order): order for order in ("little", "big")}
    if 540 in sizes:  # NIfTI-2
        raise UnsupportedInputError(location, "is NIfTI-2, which SimpleITK cannot read; use .nii")
    if 348 not in sizes or len(head) < 348:
        raise InvalidInputError(location, "has no NIfTI-1 header; export it again")

    def field(fmt: str, offset: int) -> tuple[Any, ...]:
        return struct.unpack_from(("<" if sizes[348] == "little" else ">") + fmt, head, offset)

    dims, bitpix, vox_offset = field("8h", 40), field("h", 72)[0], field("f", 108)[0]
    expected = int(vox_offset) + int(np.prod(dims[1 : dims[0] + 1], dtype=np.int64)) * bitpix // 8
    if field("h", 254)[0] <= 0:  # sform_code
        return expected, None
    sform_ras = np.vstack([np.reshape(field("12f", 280), (3, 4)), [0, 0, 0, 1]])
    return expected, geometry.LPS_TO_RAS @ sform_ras[:, [2, 1, 0, 3]]


def _check_nifti_complete(path: Path, suffix: str, location: str, expected: int) -> None:
    """Refuse a NIfTI file whose voxels are cut short (ITK reads garbage instead of failing).
    A .nii.gz whose gzip trailer (size mod 2**32) matches is accepted at once; otherwise
    (truncated, or multi-member gzip) it is decompressed to count, which checks its CRC."""
    try:
        if suffix == ".nii":
            available = path.stat().st_size
        else:
            with path.open("rb") as f:
                f.seek(-4, os.SEEK_END)
                if int.from_bytes(f.read(4), "little") == expected % 2**32:
                    return
            with gzip.open(path, "rb") as f:
                available = sum(len(chunk) for chunk in iter(lambda: f.read(1 << 22), b""))
    except (EOFError, OSError, zlib.error) as error:
        raise InvalidInputError(location, f"is damaged ({error}); copy it again") from None
    if available < expected:
        raise InvalidInputError(
            location, f"is cut short: it holds {available} of {expected} bytes; copy it again"
        )


def _shear_mm(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[float, np.ndarray]:
    """How far (mm) orthogonalising `affine` moves the farthest voxel centre of a volume of
    `shape`, and the orthogonalised affine."""
    ortho = _orthogonalised(affine)
    corners = np.array(list(itertools.product(*[(0, n - 1) for n in shape[:3]])), float)
    moved = geometry.index_to_lps(affine, corners) - geometry.index_to_lps(ortho, corners)
    return float(np.linalg.norm(moved, axis=1).max()), ortho


def _refuse_if_too_big(location: str, shape: Any, voxel_bytes: int, advice: str) -> None:
    """Check a volume's size against the memory limit before anything is allocated."""
    n_bytes = int(np.prod(shape, dtype=np.int64)) * voxel_bytes
    if n_bytes > max_volume_bytes():
        raise ResourceLimitError(
            location,
            f"needs {' x '.join(map(str, shape))} voxels ({format_bytes(n_bytes)}), more than "
            f"the {format_bytes(max_volume_bytes())} allowed for one volume; {advice}",
        )


def _integral_rescale(reader: Any, array: np.ndarray) -> np.ndarray:
    """int16 (or int32) instead of float32 for a NIfTI of small integers with a rescale: ITK
    makes any scl_slope/scl_inter float32, but when every value is an integer the smallest
    integer type holds them exactly; the data, not the 6-digit metadata, decides."""
    if array.dtype != np.float32 or array.size == 0 or not reader.HasMetaDataKey("datatype"):
        return array
    if reader.GetMetaData("datatype") not in _NIFTI_SMALL_INT_TYPES:
        return array
    fits_int16 = np.iinfo(np.int16).min <= array.min() and array.max() <= np.iinfo(np.int16).max
    candidate = array.astype(np.int16 if fits_int16 else np.int32)
    return candidate if np.array_equal(candidate, array) else array


def read_image(path: str | Path) -> Volume:
    """Read a NIfTI, NRRD or MetaImage file into a Volume (LPS affine, dtype as stored).

    The size the header declares is checked against the memory limit before any voxel is
    allocated. 2D images become one slice; a 4D NIfTI (time series) loads its first time
    point with a warning, since MedView shows one volume at a time."""
    p = Path(path)
    location = str(p)
    suffix = _suffix(p, SUPPORTED_READ_SUFFIXES)
    if suffix is None:
        readable = ", ".join(SUPPORTED_READ_SUFFIXES)
        raise UnsupportedInputError(location, f"is not a file type MedView reads ({readable})")
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        raise InvalidInputError(location, f"{what}; choose an image file")
    if p.stat().st_size == 0:
        raise InvalidInputError(location, "file is empty (0 bytes); copy or export it again")
    kind, image_io = _FORMATS[suffix]
    if suffix in _NIFTI:
        expected_bytes, sform = _nifti_header(p, suffix, location)
    else:
        check_detached_data_files(p)

    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO(image_io)  # by suffix: never let ITK guess from the content
    reader.SetFileName(location)
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        problem = f"cannot be read as {kind} ({_itk_reason(error)}); export it again"
        raise InvalidInputError(location, problem) from None

    warnings: list[LoadWarning] = []
    size = list(reader.GetSize())
    if suffix in _NIFTI and len(size) == 2 and int(reader.GetMetaData("dim[0]")) > 2:
        raise UnsupportedInputError(location, _ONE_COLOUR_SLICE)
    if len(size) == 4:
        if size[3] > 1:
            message = f"{p.name} holds {size[3]} volumes (4D); showing the first only"
            warnings.append(LoadWarning("first_time_point", message))
        reader.SetExtractSize([*size[:3], 0])
        size = size[:3]
    elif len(size) not in (2, 3):
        raise UnsupportedInputError(location, f"has {len(size)} dimensions; MedView opens 2D to 4D")

    components = reader.GetNumberOfComponents()
    dtype = _component_dtype(sitk, reader.GetPixelID())
    if dtype is None or components not in (1, 3) or (components == 3 and dtype not in _RGB):
        pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
        raise UnsupportedInputError(location, f"has '{pixel}' voxels; MedView opens grey and RGB")
    _refuse_if_too_big(location, size, components * dtype.itemsize, "crop or downsample it")
    if suffix in _NIFTI:
        _check_nifti_complete(p, suffix, location, expected_bytes)

    try:
        image = reader.Execute()
    except RuntimeError as error:
        problem = f"voxel data cannot be read ({_itk_reason(error)}); export it again"
        raise InvalidInputError(location, problem) from None
    affine = _affine_from_image(image)
    if suffix in _NIFTI and sform is not None and len(size) > 2 and np.linalg.cond(sform) < 1e6:
        moved, _ = _shear_mm(sform, size[::-1])
        if moved > _SHEAR_TOLERANCE_VOXELS * min(geometry.spacing_from_affine(sform)):
            affine = sform
            tilt = f"{geometry.shear_angle_deg(sform):.1f}°"
            message = f"the slices are tilted by {tilt} (gantry tilt): placed by the NIfTI sform"
            warnings.append(LoadWarning("sheared_sform", message))
    array = sitk.GetArrayFromImage(image)
    del image
    array = _integral_rescale(reader, array) if suffix in _NIFTI else array
    array = array[np.newaxis] if len(size) == 2 else array
    photometric = "RGB" if components == 3 else "MONOCHROME2"
    metadata = VolumeMetadata(source=location, photometric=photometric, warnings=warnings)
    return Volume(array, affine, metadata)


def _orthogonalised(affine: np.ndarray) -> np.ndarray:
    """An orthogonal affine with the same origin, row cosine and in-plane voxel sizes; the slice
    step becomes the normal times the slice gap along it (same sign: slice order is kept)."""
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


def _orthogonal_for_nifti(volume: Volume, location: str) -> tuple[Volume, list[LoadWarning]]:
    """The volume on an orthogonal grid NIfTI can hold: the same voxels when the affine is
    orthogonal (within a hundredth of a voxel), else resampled over the whole tilted stack."""
    moved, ortho = _shear_mm(volume.affine, volume.shape)
    spacing = np.array(geometry.spacing_from_affine(ortho))
    if moved <= _SHEAR_TOLERANCE_VOXELS * spacing.min():
        return Volume(volume.array, ortho, volume.metadata), []

    # The new grid spans the tilted stack's corners (in its index coordinates): nothing is lost.
    corners = np.array(list(itertools.product(*[(0, n - 1) for n in volume.shape])), float)
    frame = ortho[:3, :3] / spacing
    coords = (geometry.index_to_lps(volume.affine, corners) - ortho[:3, 3]) @ frame / spacing
    low = np.floor(coords.min(axis=0) + 1e-3)
    shape = (np.ceil(coords.max(axis=0) - 1e-3) - low + 1).astype(int)
    target = ortho.copy()
    target[:3, 3] = ortho[:3, 3] + ortho[:3, :3] @ low
    voxel_bytes = volume.array.itemsize * (3 if volume.is_colour else 1)
    _refuse_if_too_big(location, shape, voxel_bytes, "save as .nrrd or .mha to keep the tilt")

    import SimpleITK as sitk

    integral = volume.array.dtype.kind in "iu"  # resampled in float32, then rounded back
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
    tilt = f"{geometry.shear_angle_deg(volume.affine):.1f}°"
    grid = " x ".join(map(str, shape))
    message = f"slices tilted by {tilt} (gantry tilt) were resampled onto an orthogonal {grid} "
    message += "grid, as NIfTI cannot hold a tilted one; .nrrd and .mha keep it as it is"
    return Volume(array, target, volume.metadata), [LoadWarning("resampled_shear", message)]


def _metadata_warning(metadata: VolumeMetadata, kind: str) -> list[LoadWarning]:
    """Say which non-empty metadata the file format leaves out."""
    present = {
        "modality": metadata.modality,
        "patient details": any(vars(metadata.patient).values()),
        "study and series identifiers": metadata.study_instance_uid,
        "descriptions": metadata.study_description or metadata.series_description,
        "display windows": metadata.windows,
    }
    lost = ", ".join(label for label, value in present.items() if value)
    return [LoadWarning("metadata_not_saved", f"{kind} files do not keep {lost}")] if lost else []


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_volume(volume: Volume, path: str | Path) -> list[LoadWarning]:
    """Write a volume as NIfTI, NRRD, MetaImage (by suffix) or .npy; return what was lost.

    Atomic: SimpleITK writes into a hidden temporary folder beside the target (it names
    detached data files after the file name it is given, so that name must be the final one),
    then each file is renamed into place, the header last; a failure leaves nothing behind.
    """
    p = Path(path)
    location = str(p)
    suffix = _suffix(p, SUPPORTED_WRITE_SUFFIXES)
    if suffix is None:
        writable = ", ".join(SUPPORTED_WRITE_SUFFIXES)
        raise UnsupportedInputError(location, f"is not a file type MedView writes ({writable})")
    if suffix in _NIFTI and volume.is_colour and volume.shape[0] == 1:
        raise UnsupportedInputError(location, _ONE_COLOUR_SLICE)
    folder = p.parent
    kind, image_io = _FORMATS[suffix]
    try:
        temp_dir = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    except OSError as error:
        problem = f"cannot write in {folder} ({error.strerror}); choose another folder"
        raise InvalidInputError(location, problem) from None

    warnings = _metadata_warning(volume.metadata, kind)
    header = temp_dir / (p.name[: -len(suffix)] + suffix)
    moved: list[Path] = []
    try:
        if suffix == ".npy":
            np.save(header, volume.array)
            warnings.insert(0, _NPY_WARNING)
        else:
            if suffix in _NIFTI:
                volume, shear_warnings = _orthogonal_for_nifti(volume, location)
                warnings = shear_warnings + warnings
            if suffix == ".nii" and streamable(volume):
                write_nifti(volume, header)  # no copy of the volume, no SimpleITK import
            else:
                import SimpleITK as sitk

                image = _image_from_volume(sitk, volume)
                sitk.WriteImage(image, str(header), suffix != ".nii", imageIO=image_io)
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
        reason = _itk_reason(error) if isinstance(error, RuntimeError) else error.strerror or error
        problem = f"could not be written as {kind} ({reason}); check the disk and folder"
        raise InvalidInputError(location, problem) from None
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return warnings

"""SeriesInfo -> Volume: pixels in modality values, each slice placed where the scan put it.

Native little-endian pixels are read straight from the file into the preallocated volume
(measured 0.44x SimpleITK's time, NOTES.md); compressed frames are decoded one at a time with
the fastest plugin. Rescale (or the Modality LUT) is applied per frame, because enhanced
multi-frames and some scanners change it from slice to slice, and the volume keeps int16
wherever that is exact, so a 300-slice CT needs 2 bytes a voxel and no float copy."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np

from medview.core.errors import (
    InvalidInputError,
    MedviewError,
    ResourceLimitError,
    UnsupportedInputError,
)
from medview.core.jobs import CancelToken, ProgressCallback, report
from medview.core.limits import format_bytes, max_volume_bytes
from medview.core.series import FrameRef, PixelFormat, SeriesInfo
from medview.core.volume import Volume, VolumeMetadata
from medview.io import sources
from medview.io.dicom_decode import FileDecoder, stored_dtype

log = logging.getLogger(__name__)

SliceCallback = Callable[[int], None]
INT16 = np.iinfo(np.int16)


def _stored_range(pf: PixelFormat) -> tuple[int, int]:
    if pf.pixel_representation:
        return -(1 << (pf.bits_stored - 1)), (1 << (pf.bits_stored - 1)) - 1
    return 0, (1 << pf.bits_stored) - 1


def choose_dtype(series: SeriesInfo) -> np.dtype:
    """The smallest dtype that holds every rescaled value exactly, decided from headers.

    int16 when every slope and intercept is integral and the rescaled stored range fits;
    float32 otherwise. (Stored ranges wider than int16 are narrowed later if the data
    allow it, see _fit_int16.)"""
    frames = series.frames
    if series.samples_per_pixel == 3:
        return np.dtype(np.uint8)
    if any(f.pixel.float_pixels or f.pixel.has_modality_lut_sequence for f in frames):
        return np.dtype(np.float32)
    integral = all(float(f.rescale_slope).is_integer() and float(f.rescale_intercept).is_integer()
                   for f in frames)
    if not integral:
        return np.dtype(np.float32)
    if all(f.pixel.bits_allocated == 8 and f.pixel.pixel_representation == 0
           and f.rescale_slope == 1 and f.rescale_intercept == 0 for f in frames):
        return np.dtype(np.uint8)
    return np.dtype(np.int16) if _fits_int16(frames) else np.dtype(np.int32)


def _fits_int16(frames: list[FrameRef]) -> bool:
    for f in frames:
        lo, hi = _stored_range(f.pixel)
        a, b = lo * f.rescale_slope + f.rescale_intercept, hi * f.rescale_slope + \
            f.rescale_intercept
        if min(a, b) < INT16.min or max(a, b) > INT16.max:
            return False
    return True


def _fit_int16(array: np.ndarray) -> np.ndarray:
    """Narrow an int32 volume to int16 when its actual values allow (e.g. 16-bit unsigned
    storage with -1024 intercept whose real data span -1024..3071)."""
    if array.dtype == np.int32 and array.size:
        lo, hi = int(array.min()), int(array.max())
        if lo >= INT16.min and hi <= INT16.max:
            return array.astype(np.int16)
    return array


def load_series(series: SeriesInfo, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None, on_slice: SliceCallback | None = None,
                first_index: int | None = None) -> Volume:
    """Read every slice of `series` into one Volume.

    `first_index` is read first and `on_slice(i)` is called after each slice lands, so a
    viewer can show a slice before the whole series is in. Raises MedviewError (one sentence
    naming the file) for pixel data that cannot be read; JobCancelled on cancel."""
    n = len(series.slices)
    if n == 0:
        raise InvalidInputError(series.series_instance_uid, "has no images to load")
    dtype = choose_dtype(series)
    shape = series.shape
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes > max_volume_bytes():
        raise ResourceLimitError(
            str(series.frames[0].source),
            f"series would need {format_bytes(nbytes)}, more than MedView can load here "
            f"(limit {format_bytes(max_volume_bytes())})")
    out = np.empty(shape, dtype)
    filled = np.zeros(n, bool)
    order = list(range(n))
    if first_index is not None and 0 <= first_index < n:
        order.remove(first_index)
        order.insert(0, first_index)
    decoder = FileDecoder()
    with sources.SourceOpener() as opener, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for done, i in enumerate(order):
                fr = series.slices[i]
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if fr is None:
                    continue
                _read_slice(opener, decoder, fr, out[i])
                filled[i] = True
                if on_slice is not None:
                    on_slice(i)
                if done % 16 == 0:
                    report(progress, done / n, f"loaded {done} of {n} slices")
        finally:
            decoder.close()
    if not filled.all():
        out[~filled] = out[filled].min() if filled.any() else 0
    out = _fit_int16(out)
    report(progress, 1.0, f"loaded {n} slices")
    return Volume(out, series.affine.copy(), _metadata(series))


def _read_slice(opener: sources.SourceOpener, decoder: FileDecoder, fr: FrameRef,
                target: np.ndarray) -> None:
    pf = fr.pixel
    try:
        if pf.pixel_data_offset is not None and pf.samples_per_pixel == 1 \
                and pf.photometric != "PALETTE COLOR" and not pf.has_modality_lut_sequence:
            if _read_native_in_place(opener, fr, target):
                return
            raw = _read_native(opener, fr)
        else:
            raw = decoder.frame(opener, fr)
    except MedviewError:
        raise
    except NotImplementedError as exc:
        raise UnsupportedInputError(str(fr.source), f"uses a pixel encoding MedView cannot "
                                                    f"decode ({exc})") from exc
    except Exception as exc:  # decoders raise many kinds on damaged data
        log.debug("decode failed for %s", fr.source, exc_info=True)
        raise InvalidInputError(str(fr.source), f"has pixel data that could not be decoded "
                                                f"({_decoder_reason(exc)})") from exc
    if raw.ndim != target.ndim:
        raise InvalidInputError(str(fr.source), "is a colour image in a grey series (or the "
                                                "reverse); load it on its own")
    if raw.shape[:2] != target.shape[:2]:
        raise InvalidInputError(str(fr.source), f"frame is {raw.shape[1]} x {raw.shape[0]} "
                                                f"pixels, not {target.shape[1]} x "
                                                f"{target.shape[0]} as the header says")
    _rescale_into(raw, fr, target)


def _decoder_reason(exc: Exception) -> str:
    """The decoder's own reason, short. pydicom's "exceptions were raised by all available
    plugins:" puts the reasons on the following lines, so the first plugin's line is used."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    text = lines[1] if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return text[:160]


def _read_native_in_place(opener: sources.SourceOpener, fr: FrameRef,
                          target: np.ndarray) -> bool:
    """The fast path: read the stored bytes straight into the volume's slice and rescale
    there, with no temporary array. Possible when stored and volume dtypes have the same
    width, the stored range fits the volume dtype and the rescale is integral (checked)."""
    pf = fr.pixel
    dt = stored_dtype(pf)
    if (dt.itemsize != target.dtype.itemsize or target.dtype.kind not in "iu"
            or dt.kind not in "iu" or fr.rescale_slope != 1
            or not float(fr.rescale_intercept).is_integer()):
        return False
    lo, hi = _stored_range(pf)
    info = np.iinfo(target.dtype)
    if lo < info.min or hi > info.max:
        return False
    _readinto(opener, fr, memoryview(target.reshape(-1)).cast("B"))
    if pf.bits_stored < pf.bits_allocated:
        shift = pf.bits_allocated - pf.bits_stored
        if pf.pixel_representation:
            target <<= shift
            target >>= shift
        else:
            target &= (1 << pf.bits_stored) - 1
    if fr.rescale_intercept:
        target += int(fr.rescale_intercept)
    return True


def _readinto(opener: sources.SourceOpener, fr: FrameRef, buf: memoryview) -> None:
    pf = fr.pixel
    with opener.open(fr.source) as fh:
        fh.seek(pf.pixel_data_offset + fr.frame_index * len(buf))
        got = fh.readinto(buf)
    if got != len(buf):
        raise InvalidInputError(str(fr.source), f"pixel data ends early ({got} of "
                                                f"{len(buf)} bytes of frame "
                                                f"{fr.frame_index + 1}); the file is truncated")


def _read_native(opener: sources.SourceOpener, fr: FrameRef) -> np.ndarray:
    """One frame of native pixel data, read from its byte offset without pydicom."""
    pf = fr.pixel
    dt = stored_dtype(pf)
    buf = bytearray(pf.rows * pf.cols * dt.itemsize)
    _readinto(opener, fr, memoryview(buf))
    return _mask_bits(np.frombuffer(buf, dt).reshape(pf.rows, pf.cols), pf)


def _mask_bits(raw: np.ndarray, pf: PixelFormat) -> np.ndarray:
    """Apply BitsStored: clear unused high bits, sign-extend signed values (pydicom does the
    same in its decoders; the native fast path bypasses them)."""
    if pf.bits_stored >= pf.bits_allocated or raw.dtype.kind == "f":
        return raw
    shift = pf.bits_allocated - pf.bits_stored
    if pf.pixel_representation:
        return (raw << shift) >> shift
    return raw & ((1 << pf.bits_stored) - 1)


def _rescale_into(raw: np.ndarray, fr: FrameRef, target: np.ndarray) -> None:
    if target.ndim == 3:  # colour: decoder already gave RGB uint8
        target[...] = raw
        return
    slope, intercept = fr.rescale_slope, fr.rescale_intercept
    if fr.pixel.has_modality_lut_sequence:  # decoder applied the LUT already
        slope, intercept = 1.0, 0.0
    if target.dtype.kind == "f":
        np.multiply(raw, slope, out=target, casting="unsafe")
        if intercept:
            target += np.float32(intercept)
        return
    if slope == 1:
        if intercept:
            np.add(raw, int(intercept), out=target, casting="unsafe", dtype=np.int32)
        else:
            target[...] = raw
        return
    np.add(raw.astype(np.int32) * int(slope), int(intercept), out=target, casting="unsafe")


def _metadata(series: SeriesInfo) -> VolumeMetadata:
    thick = next((f.slice_thickness_mm for f in series.frames if f.slice_thickness_mm), None)
    return VolumeMetadata(
        modality=series.modality, patient=series.patient,
        study_instance_uid=series.study_instance_uid,
        series_instance_uid=series.series_instance_uid,
        frame_of_reference_uid=series.frame_of_reference_uid,
        study_date=series.study_date, study_description=series.study_description,
        series_description=series.description, series_number=series.series_number,
        windows=list(series.windows), units=series.units, photometric=series.photometric,
        invert_display=series.photometric == "MONOCHROME1", slice_thickness_mm=thick,
        warnings=list(series.warnings), source=str(series.frames[0].source),
    )


"""SeriesInfo -> Volume: pixels in modality values, each slice placed where the scan put it.

Native little-endian pixels are read straight from the file into the preallocated volume
(measured 0.44x SimpleITK's time, docs/development.md); compressed frames are decoded one
at a time with the fastest plugin. Rescale (or the Modality LUT) is applied per frame,
because enhanced multi-frames and some scanners change it from slice to slice, and the
volume keeps int16 wherever that is exact, so a 300-slice CT needs 2 bytes a voxel and no
float copy."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np

from medview.core.buffers import empty_populated
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
from medview.io.dicom.decode import FileDecoder, rgb_dtype, stored_dtype

log = logging.getLogger(__name__)

SliceCallback = Callable[[int, np.ndarray], None]
INT16 = np.iinfo(np.int16)


def _stored_range(pf: PixelFormat) -> tuple[int, int]:
    if pf.pixel_representation:
        return -(1 << (pf.bits_stored - 1)), (1 << (pf.bits_stored - 1)) - 1
    return 0, (1 << pf.bits_stored) - 1


class _Widen(Exception):
    """A slice's values do not fit the volume's int16: widen the volume and read it again."""


def choose_dtype(series: SeriesInfo) -> tuple[np.dtype, bool]:
    """The smallest dtype that holds every rescaled value exactly, and whether each slice
    must be checked against it.

    Integral rescale of 16-bit storage loads as int16. When the header's stored range could
    overflow int16 (signed 16-bit CT with a -1024 intercept, the common GE layout) the real
    values almost always fit, so each slice is checked and the volume widens to int32 only
    if one does not. Non-integral rescale gives float32; 32-bit storage int32, narrowed at
    the end when the values allow (_fit_int16)."""
    frames = series.frames
    if series.samples_per_pixel == 3:  # palette colour is looked up into 8-bit RGB
        return max(
            (
                np.dtype(np.uint8)
                if f.pixel.photometric == "PALETTE COLOR"
                else rgb_dtype(f.pixel.bits_allocated)
                for f in frames
            ),
            key=lambda d: d.itemsize,
        ), False
    if any(f.pixel.float_pixels or f.pixel.has_modality_lut_sequence for f in frames):
        return np.dtype(np.float32), False
    integral = all(
        float(f.rescale_slope).is_integer() and float(f.rescale_intercept).is_integer()
        for f in frames
    )
    if not integral:
        return np.dtype(np.float32), False
    if all(
        f.pixel.bits_allocated == 8
        and f.pixel.pixel_representation == 0
        and f.rescale_slope == 1
        and f.rescale_intercept == 0
        for f in frames
    ):
        return np.dtype(np.uint8), False
    if _fits_int16(frames):
        return np.dtype(np.int16), False
    if all(f.pixel.bits_allocated <= 16 for f in frames):
        return np.dtype(np.int16), True
    return np.dtype(np.int32), False


def _fits_int16(frames: list[FrameRef]) -> bool:
    for f in frames:
        lo, hi = _stored_range(f.pixel)
        a, b = (
            lo * f.rescale_slope + f.rescale_intercept,
            hi * f.rescale_slope + f.rescale_intercept,
        )
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


def load_series(
    series: SeriesInfo,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_slice: SliceCallback | None = None,
    first_index: int | None = None,
) -> Volume:
    """Read every slice of `series` into one Volume.

    `first_index` is read first and `on_slice(i, image)` is called after each slice lands
    (image is that slice of the volume being filled), so a viewer can show a slice before
    the whole series is in. Raises MedviewError (one sentence
    naming the file) for pixel data that cannot be read; JobCancelled on cancel."""
    n = len(series.slices)
    if n == 0:
        raise InvalidInputError(series.series_instance_uid, "has no images to load")
    dtype, checked = choose_dtype(series)
    shape = series.shape
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes > max_volume_bytes():
        raise ResourceLimitError(
            str(series.frames[0].source),
            f"series would need {format_bytes(nbytes)}, more than MedView can load here "
            f"(limit {format_bytes(max_volume_bytes())})",
        )
    filled = np.zeros(n, bool)
    order = list(range(n))
    if first_index is not None and 0 <= first_index < n:
        order.remove(first_index)
        order.insert(0, first_index)
    out: np.ndarray | None = None
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
                if out is None:
                    # the first slice goes to the viewer before the volume's memory is
                    # committed (populating 150 MiB takes ~0.05 s here)
                    first = np.empty((1, *shape[1:]), dtype)
                    first, checked = _read_widening(opener, decoder, fr, first, 0, checked)
                    if on_slice is not None:
                        on_slice(i, first[0])
                    out = empty_populated(shape, first.dtype)
                    out[i] = first[0]
                else:
                    out, checked = _read_widening(opener, decoder, fr, out, i, checked)
                    if on_slice is not None:
                        on_slice(i, out[i])
                filled[i] = True
                if done % 16 == 0:
                    report(progress, done / n, f"loaded {done} of {n} slices")
        finally:
            decoder.close()
    if out is None:
        out = np.zeros(shape, dtype)
    if not filled.all():
        out[~filled] = out[filled].min() if filled.any() else 0
    out = _fit_int16(out)
    report(progress, 1.0, f"loaded {n} slices")
    return Volume(out, series.affine.copy(), _metadata(series))


def _read_widening(
    opener: sources.SourceOpener,
    decoder: FileDecoder,
    fr: FrameRef,
    out: np.ndarray,
    i: int,
    checked: bool,
) -> tuple[np.ndarray, bool]:
    """Read slice i into `out`; if its values do not fit, widen `out` to int32 first."""
    try:
        _read_slice(opener, decoder, fr, out[i], checked)
        return out, checked
    except _Widen:
        out = out.astype(np.int32)
        _read_slice(opener, decoder, fr, out[i], False)
        return out, False


def _read_slice(
    opener: sources.SourceOpener,
    decoder: FileDecoder,
    fr: FrameRef,
    target: np.ndarray,
    checked: bool,
) -> None:
    pf = fr.pixel
    try:
        if (
            pf.pixel_data_offset is not None
            and pf.samples_per_pixel == 1
            and pf.photometric != "PALETTE COLOR"
            and not pf.has_modality_lut_sequence
        ):
            if _read_native_in_place(opener, fr, target, checked):
                return
            raw = _read_native(opener, fr)
        else:
            raw = decoder.frame(opener, fr)
    except (MedviewError, _Widen):
        raise
    except NotImplementedError as exc:
        raise UnsupportedInputError(
            str(fr.source), f"uses a pixel encoding MedView cannot decode ({exc})"
        ) from exc
    except Exception as exc:  # decoders raise many kinds on damaged data
        log.debug("decode failed for %s", fr.source, exc_info=True)
        raise InvalidInputError(
            str(fr.source), f"has pixel data that could not be decoded ({_decoder_reason(exc)})"
        ) from exc
    if raw.ndim != target.ndim:
        raise InvalidInputError(
            str(fr.source),
            "is a colour image in a grey series (or the reverse); load it on its own",
        )
    if raw.shape[:2] != target.shape[:2]:
        raise InvalidInputError(
            str(fr.source),
            f"frame is {raw.shape[1]} x {raw.shape[0]} "
            f"pixels, not {target.shape[1]} x "
            f"{target.shape[0]} as the header says",
        )
    _rescale_into(raw, fr, target, checked)


def _decoder_reason(exc: Exception) -> str:
    """The decoder's own reason, short. pydicom's "exceptions were raised by all available
    plugins:" puts the reasons on the following lines, so the first plugin's line is used."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    text = lines[1] if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return text[:160]


def _read_native_in_place(
    opener: sources.SourceOpener, fr: FrameRef, target: np.ndarray, checked: bool
) -> bool:
    """The fast path: read the stored bytes straight into the volume's slice and rescale
    there, with no temporary array. Possible when stored and volume dtypes have the same
    width and the rescale is a whole-number shift; with `checked`, the slice's real range
    is verified against the volume dtype first (raises _Widen if it does not fit)."""
    pf = fr.pixel
    dt = stored_dtype(pf)
    if (
        dt.itemsize != target.dtype.itemsize
        or target.dtype.kind not in "iu"
        or dt.kind not in "iu"
        or fr.rescale_slope != 1
        or not float(fr.rescale_intercept).is_integer()
    ):
        return False
    intercept = int(fr.rescale_intercept)
    lo, hi = _stored_range(pf)
    info = np.iinfo(target.dtype)
    guaranteed = lo + intercept >= info.min and hi + intercept <= info.max
    if not (guaranteed or checked):
        return False
    _readinto(opener, fr, memoryview(target.reshape(-1)).cast("B"))
    stored = target.view(dt)
    if pf.bits_stored < pf.bits_allocated:
        shift = pf.bits_allocated - pf.bits_stored
        if pf.pixel_representation:
            stored <<= shift
            stored >>= shift
        else:
            stored &= (1 << pf.bits_stored) - 1
    if not guaranteed and (
        int(stored.min()) + intercept < info.min or int(stored.max()) + intercept > info.max
    ):
        raise _Widen()
    if intercept or dt != target.dtype:
        np.add(
            stored,
            intercept,
            out=target,
            dtype=np.int64 if info.bits > 16 else np.int32,
            casting="unsafe",
        )
    return True


def _readinto(opener: sources.SourceOpener, fr: FrameRef, buf: memoryview) -> None:
    pf = fr.pixel
    with opener.open(fr.source) as fh:
        fh.seek(pf.pixel_data_offset + fr.frame_index * len(buf))
        got = fh.readinto(buf)
    if got != len(buf):
        raise InvalidInputError(
            str(fr.source),
            f"pixel data ends early ({got} of "
            f"{len(buf)} bytes of frame "
            f"{fr.frame_index + 1}); the file is truncated",
        )


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


def _rescale_into(raw: np.ndarray, fr: FrameRef, target: np.ndarray, checked: bool) -> None:
    if target.ndim == 3:  # colour: the decoder gave RGB values as stored
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
    wide = np.int64 if max(raw.dtype.itemsize, target.dtype.itemsize) > 2 else np.int32
    values = raw.astype(wide, copy=False)
    if slope != 1:
        values = values * int(slope)
    if intercept:
        values = values + int(intercept)
    if checked:
        info = np.iinfo(target.dtype)
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise _Widen()
    target[...] = values


def _metadata(series: SeriesInfo) -> VolumeMetadata:
    thick = next((f.slice_thickness_mm for f in series.frames if f.slice_thickness_mm), None)
    return VolumeMetadata(
        modality=series.modality,
        patient=series.patient,
        study_instance_uid=series.study_instance_uid,
        series_instance_uid=series.series_instance_uid,
        frame_of_reference_uid=series.frame_of_reference_uid,
        study_date=series.study_date,
        study_description=series.study_description,
        series_description=series.description,
        series_number=series.series_number,
        windows=list(series.windows),
        units=series.units,
        photometric=series.photometric,
        invert_display=series.photometric == "MONOCHROME1",
        slice_thickness_mm=thick,
        warnings=list(series.warnings),
        source=str(series.frames[0].source),
    )

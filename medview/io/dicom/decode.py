"""Decode frames that cannot be read raw: compressed, deflated, big-endian, colour, or with a
Modality LUT. Keeps the last parsed files so a multi-frame file is parsed once per load."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

from medview.core.errors import InvalidInputError
from medview.core.series import FrameRef, PixelFormat, SourceRef
from medview.io.dicom.parse import is_deflated, read_deflated
from medview.io.dicom.pixel_codecs import plugin_for
from medview.io.sources import SourceOpener

KEEP_PARSED = 2


def stored_dtype(pf: PixelFormat) -> np.dtype:
    """numpy dtype of the stored values (little endian) for native pixel data."""
    if pf.float_pixels:
        return np.dtype("<f4" if pf.bits_allocated == 32 else "<f8")
    size = {8: 1, 16: 2, 32: 4, 64: 8}[pf.bits_allocated]
    return np.dtype(f"<{'i' if pf.pixel_representation else 'u'}{size}")


class FileDecoder:
    """Decodes one frame at a time through pydicom's pixel backends."""

    def __init__(self) -> None:
        self._parsed: OrderedDict[SourceRef, Dataset] = OrderedDict()

    def close(self) -> None:
        self._parsed.clear()

    def _dataset(self, opener: SourceOpener, ref: SourceRef) -> Dataset:
        ds = self._parsed.get(ref)
        if ds is not None:
            self._parsed.move_to_end(ref)
            return ds
        with opener.open(ref) as fp:
            if is_deflated(fp):
                ds = read_deflated(fp, str(ref), stop_before_pixels=False)
            else:
                ds = pydicom.dcmread(fp, force=True)
            # touch the pixel bytes while the file is open (values may be deferred)
            for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
                if kw in ds:
                    ds[kw].value  # noqa: B018
        if not any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            # the header scan saw the pixel element, but pydicom drops a dataset whose
            # encapsulated pixel data runs off the end of the file without an error
            # (docs/development.md)
            raise InvalidInputError(
                str(ref), "pixel data ends before its end marker; the file is truncated"
            )
        if not ds.file_meta.get("TransferSyntaxUID"):
            implicit, little = ds.original_encoding
            ds.file_meta.TransferSyntaxUID = (
                "1.2.840.10008.1.2"
                if implicit
                else "1.2.840.10008.1.2.1"
                if little
                else "1.2.840.10008.1.2.2"
            )
        self._parsed[ref] = ds
        while len(self._parsed) > KEEP_PARSED:
            self._parsed.popitem(last=False)
        return ds

    def frame(self, opener: SourceOpener, fr: FrameRef) -> np.ndarray:
        """One frame: grey in stored values (or Modality-LUT values), RGB in its stored
        values (uint8, uint16 or uint32), palette colour as RGB uint8."""
        ds = self._dataset(opener, fr.source)
        pf = fr.pixel
        arr = pixel_array(
            ds,
            index=fr.frame_index if pf.n_frames > 1 else None,
            decoding_plugin=plugin_for(pf.transfer_syntax_uid),
        )
        if pf.n_frames > 1 and arr.ndim == (4 if pf.samples_per_pixel == 3 else 3):
            arr = arr[0]
        if pf.photometric == "PALETTE COLOR":
            return _palette_rgb(arr, ds)
        if pf.samples_per_pixel == 3:
            return rgb_as_stored(arr)
        if pf.has_modality_lut_sequence:
            return np.asarray(apply_modality_lut(arr, ds), np.float32)
        return arr


def _palette_rgb(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Palette colour indices as RGB uint8.

    pydicom 3.0 reads non-segmented 16-bit LUT data in little-endian order even from a
    big-endian file (docs/development.md; OBXXXX1A_expb.dcm came out black), so it is
    swapped back here.
    The LUT Descriptor's third value is the entry depth: 8-bit entries may sit in 16-bit
    words, and must not be shifted down as if they were 16-bit."""
    rgb = apply_color_lut(arr, ds)
    if (
        rgb.dtype.itemsize == 2
        and "RedPaletteColorLookupTableData" in ds
        and ds.original_encoding[1] is False
    ):
        rgb = rgb.byteswap()
    return _to_uint8_rgb(rgb, int(ds.RedPaletteColorLookupTableDescriptor[2]))


def rgb_dtype(bits_allocated: int) -> np.dtype:
    """The dtype an RGB image of this storage keeps its values in: 16- and 32-bit RGB
    (secondary captures, microscopy) are measurements, not 8-bit screen colours."""
    return np.dtype({16: np.uint16, 32: np.uint32}.get(bits_allocated, np.uint8))


def rgb_as_stored(arr: np.ndarray) -> np.ndarray:
    """RGB values kept as stored: unsigned samples of 8, 16 or 32 bits unchanged (the
    display windows them), a signed or float rarity clipped into the unsigned type."""
    if arr.dtype in (np.uint8, np.uint16, np.uint32):
        return arr
    target = rgb_dtype(8 * arr.dtype.itemsize)
    return np.clip(arr, 0, np.iinfo(target).max).astype(target)


def _to_uint8_rgb(arr: np.ndarray, bits: int) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind in "ui":
        top = int(arr.max()) if arr.size else 0
        shift = max(0, (max(bits, top.bit_length())) - 8)
        return (arr >> shift).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)

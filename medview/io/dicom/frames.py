"""Turn one parsed image header into FrameRefs: single-frame files give one, multi-frame
files one per frame with geometry and rescale from the per-frame functional groups
(which pydicom's apply_modality_lut and SimpleITK both ignore, docs/development.md)."""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from medview.core.series import FrameRef, PixelFormat, SourceRef


@lru_cache(maxsize=256)
def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag


_ASCII_VRS = {"DS": float, "IS": int, "CS": str, "UI": str}
_BINARY_VRS = {"US": "H", "UL": "I", "SS": "h", "SL": "i"}


@lru_cache(maxsize=256)
def _dictionary_vr(tag: int) -> str:
    return dictionary_VR(tag)


def _raw_value(raw: RawDataElement) -> Any:
    """Convert the value of an unconverted element of an ASCII-only or binary-integer VR
    directly; pydicom's general conversion (with validation) was two thirds of the time of a
    header scan. Returns _SLOW for anything else, which then goes through pydicom."""
    vr = raw.VR or _dictionary_vr(raw.tag)
    data = raw.value
    if data is None or raw.length == 0xFFFFFFFF:
        return _SLOW
    if vr in _ASCII_VRS:
        parts = [p.strip(" \x00") for p in data.decode("ascii", "replace").split("\\")]
        if vr == "UI" or vr == "CS":
            return parts[0] if len(parts) == 1 else parts
        if not any(parts):
            return None
        conv = _ASCII_VRS[vr]
        nums = [conv(float(p)) if conv is int else conv(p) for p in parts]
        return nums[0] if len(nums) == 1 else nums
    code = _BINARY_VRS.get(vr)
    if code is not None and len(data) % struct.calcsize(code) == 0 and data:
        vals = struct.unpack(
            ("<" if raw.is_little_endian else ">") + code * (len(data) // struct.calcsize(code)),
            data,
        )
        return vals[0] if len(vals) == 1 else list(vals)
    return _SLOW


_SLOW = object()


def value(ds: Dataset | None, keyword: str) -> Any:
    """An element's value or None, looked up by tag (pydicom's keyword access goes through
    __getattr__) and converted directly where the VR allows."""
    if ds is None:
        return None
    tag = _tag(keyword)
    try:
        raw = ds.get_item(tag)
    except KeyError:
        return None
    if raw is None:
        return None
    if isinstance(raw, RawDataElement):
        try:
            got = _raw_value(raw)
        except (ValueError, UnicodeDecodeError, struct.error):
            got = _SLOW
        if got is not _SLOW:
            return got
    return ds[tag].value


def floats(ds: Dataset | None, keyword: str, n: int) -> tuple[float, ...] | None:
    """A keyword's value as exactly n finite floats, or None if absent or malformed."""
    try:
        v = value(ds, keyword)
        if v is None or v == "":
            return None
        vals = [float(x) for x in (v if n > 1 else [v])]
    except (TypeError, ValueError):
        return None
    if len(vals) != n or any(x != x or abs(x) == float("inf") for x in vals):
        return None
    return tuple(vals)


def _float(ds: Dataset | None, keyword: str) -> float | None:
    v = floats(ds, keyword, 1)
    return v[0] if v else None


def _int(ds: Dataset | None, keyword: str) -> int | None:
    try:
        v = value(ds, keyword)
        return None if v is None or v == "" else int(v)
    except (TypeError, ValueError):
        return None


def _first(ds: Dataset | None, seq_keyword: str) -> Dataset | None:
    try:
        seq = value(ds, seq_keyword)
        return seq[0] if seq else None
    except (TypeError, IndexError):
        return None


def _group(per_frame: Dataset | None, shared: Dataset | None, seq_keyword: str) -> Dataset | None:
    """A functional group item: the per-frame one wins over the shared one."""
    return _first(per_frame, seq_keyword) or _first(shared, seq_keyword)


def _pixel_spacing(ds: Dataset | None) -> tuple[float, float] | None:
    sp = floats(ds, "PixelSpacing", 2) or floats(ds, "ImagerPixelSpacing", 2)
    return sp if sp and sp[0] > 0 and sp[1] > 0 else None


def _orientation(ds: Dataset | None) -> tuple[float, ...] | None:
    o = floats(ds, "ImageOrientationPatient", 6)
    if o is None:
        return None
    r, c = o[:3], o[3:]
    nr = sum(x * x for x in r) ** 0.5
    nc = sum(x * x for x in c) ** 0.5
    if nr < 1e-3 or nc < 1e-3:
        return None
    return tuple(x / nr for x in r) + tuple(x / nc for x in c)


def _temporal_key(ds: Dataset | None) -> tuple:
    keys = []
    for kw in ("TemporalPositionIdentifier", "EchoNumbers", "AcquisitionNumber"):
        v = _int(ds, kw)
        keys.append(v if v is not None else -1)
    for kw in ("TriggerTime", "EchoTime", "DiffusionBValue"):
        v = _float(ds, kw)
        keys.append(v if v is not None else -1.0)
    return tuple(keys)


def frames_of(ds: Dataset, ref: SourceRef, pf: PixelFormat, sop_uid: str) -> list[FrameRef]:
    """FrameRefs for every frame of one file, geometry and rescale per frame."""
    instance = _int(ds, "InstanceNumber")
    if pf.n_frames == 1 and _tag("PerFrameFunctionalGroupsSequence") not in ds:
        return [
            FrameRef(
                source=ref,
                frame_index=0,
                pixel=pf,
                sop_instance_uid=sop_uid,
                instance_number=instance,
                position_lps=floats(ds, "ImagePositionPatient", 3),
                orientation=_orientation(ds),
                pixel_spacing_row_col_mm=_pixel_spacing(ds),
                rescale_slope=_float(ds, "RescaleSlope") or 1.0,
                rescale_intercept=_float(ds, "RescaleIntercept") or 0.0,
                slice_thickness_mm=_float(ds, "SliceThickness"),
                temporal_key=_temporal_key(ds),
            )
        ]
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame_seq = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame_seq is not None and len(per_frame_seq) == pf.n_frames:
        return [
            _enhanced_frame(ds, ref, pf, sop_uid, instance, i, per_frame_seq[i], shared)
            for i in range(pf.n_frames)
        ]
    return _legacy_multiframe(ds, ref, pf, sop_uid, instance)


def _enhanced_frame(
    ds: Dataset,
    ref: SourceRef,
    pf: PixelFormat,
    sop_uid: str,
    instance: int | None,
    i: int,
    item: Dataset,
    shared: Dataset | None,
) -> FrameRef:
    pos = floats(_group(item, shared, "PlanePositionSequence"), "ImagePositionPatient", 3)
    orient = _orientation(_group(item, shared, "PlaneOrientationSequence"))
    measures = _group(item, shared, "PixelMeasuresSequence")
    transform = _group(item, shared, "PixelValueTransformationSequence")
    content = _group(item, shared, "FrameContentSequence")
    slope = _float(transform, "RescaleSlope") or _float(ds, "RescaleSlope") or 1.0
    intercept = _float(transform, "RescaleIntercept")
    if intercept is None:
        intercept = _float(ds, "RescaleIntercept") or 0.0
    temporal = (_int(content, "TemporalPositionIndex") or -1, _int(content, "StackID") or -1)
    try:
        dims = tuple(int(x) for x in (content.get("DimensionIndexValues") or [])) if content else ()
    except (TypeError, ValueError):
        dims = ()
    return FrameRef(
        source=ref,
        frame_index=i,
        pixel=pf,
        sop_instance_uid=sop_uid,
        instance_number=instance,
        position_lps=pos or floats(ds, "ImagePositionPatient", 3),
        orientation=orient or _orientation(ds),
        pixel_spacing_row_col_mm=_pixel_spacing(measures) or _pixel_spacing(ds),
        rescale_slope=slope,
        rescale_intercept=intercept,
        slice_thickness_mm=_float(measures, "SliceThickness") or _float(ds, "SliceThickness"),
        temporal_key=(*temporal, *dims),
    )


def _legacy_multiframe(
    ds: Dataset, ref: SourceRef, pf: PixelFormat, sop_uid: str, instance: int | None
) -> list[FrameRef]:
    """Multi-frame without functional groups (RT dose, NM, US cine): frames step along the
    normal by GridFrameOffsetVector or SpacingBetweenSlices when the file says so."""
    pos0 = floats(ds, "ImagePositionPatient", 3)
    orient = _orientation(ds)
    offsets: list[float] | None = None
    try:
        gfov = ds.get("GridFrameOffsetVector")
        if gfov is not None and len(gfov) == pf.n_frames:
            offsets = [float(x) for x in gfov]
    except (TypeError, ValueError):
        offsets = None
    spacing = _float(ds, "SpacingBetweenSlices")
    if offsets is None and spacing:
        offsets = [k * spacing for k in range(pf.n_frames)]
    normal = None
    if orient is not None and pos0 is not None and offsets is not None:
        r, c = orient[:3], orient[3:]
        normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    out = []
    for i in range(pf.n_frames):
        pos = None
        if normal is not None:
            pos = tuple(pos0[a] + normal[a] * offsets[i] for a in range(3))
        out.append(
            FrameRef(
                source=ref,
                frame_index=i,
                pixel=pf,
                sop_instance_uid=sop_uid,
                instance_number=i + 1 if instance is None else instance * 100000 + i,
                position_lps=pos,
                orientation=orient if pos else None,
                pixel_spacing_row_col_mm=_pixel_spacing(ds),
                rescale_slope=_float(ds, "RescaleSlope") or 1.0,
                rescale_intercept=_float(ds, "RescaleIntercept") or 0.0,
                slice_thickness_mm=_float(ds, "SliceThickness"),
            )
        )
    return out

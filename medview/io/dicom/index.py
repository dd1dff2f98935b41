"""Header-only scan of folders, DICOMDIRs, zip archives and files into studies and series.

No pixel is decoded here, so `medview info` and the study browser answer fast; bad files
are listed with a reason and never stop the good ones from loading."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import medview.io.dicom.lean_import  # noqa: F401  (first: pydicom without its downloader)

# isort: split
import pydicom
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.uid import UID

from medview.core.errors import InvalidInputError, MedviewError
from medview.core.jobs import CancelToken, ProgressCallback, report
from medview.core.series import (
    FrameRef,
    LoadWarning,
    NonImageObject,
    PatientInfo,
    ScanResult,
    SeriesInfo,
    Skipped,
    SourceRef,
    StudyInfo,
    build_stack,
    dedupe_by_sop,
    rescale_warning,
    split_by_shape,
    split_warning,
)
from medview.io import sources
from medview.io.dicom.frames import frames_of, value
from medview.io.dicom.parse import (
    MEDIA_STORAGE_DIRECTORY,
    NON_IMAGE_WITH_PIXELS,
    NotDicomError,
    parse_header,
    pixel_format,
)
from medview.io.dicom.pixel_codecs import decodable

log = logging.getLogger(__name__)


@dataclass
class _ImageFile:
    frames: list[FrameRef]
    ds: Dataset
    warnings: list[LoadWarning] = field(default_factory=list)


def _text(ds: Dataset, keyword: str) -> str:
    try:
        v = value(ds, keyword)
    except Exception:  # malformed value: treat as absent
        return ""
    return "" if v is None else str(v).strip()


def _patient(ds: Dataset) -> PatientInfo:
    return PatientInfo(
        name=_text(ds, "PatientName"),
        id=_text(ds, "PatientID"),
        birth_date=_text(ds, "PatientBirthDate"),
        sex=_text(ds, "PatientSex"),
        age=_text(ds, "PatientAge"),
    )


def _numbers(v: object) -> list[float]:
    """A numeric value that may be single or multi-valued, as a list of floats."""
    if v is None:
        return []
    items = v if hasattr(v, "__iter__") and not isinstance(v, (str, bytes)) else [v]
    return [float(x) for x in items]


def _windows(ds: Dataset) -> list[tuple[float, float]]:
    """The file's own (center, width) windows, from the image or its functional groups."""
    try:
        c, w = value(ds, "WindowCenter"), value(ds, "WindowWidth")
        if c is None or w is None:
            voi = None
            for fg in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
                seq = value(ds, fg)
                if seq and value(seq[0], "FrameVOILUTSequence"):
                    voi = seq[0].FrameVOILUTSequence[0]
                    break
            c, w = value(voi, "WindowCenter"), value(voi, "WindowWidth")
        pairs = zip(_numbers(c), _numbers(w), strict=False)
    except (TypeError, ValueError, AttributeError, IndexError):
        return []
    return [(cc, ww) for cc, ww in pairs if ww > 0]


def read_file_header(
    opener: sources.SourceOpener, ref: SourceRef
) -> _ImageFile | NonImageObject | str:
    """One file's frames, or its non-image record, or "DICOMDIR"; raises MedviewError."""
    where = str(ref)
    size = opener.size(ref)
    with opener.open(ref) as fp:
        ph = parse_header(fp, ref, size)
    ds = ph.dataset
    sop_class = _text(ds, "SOPClassUID") or _text(ds.file_meta, "MediaStorageSOPClassUID")
    if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
        return "DICOMDIR"
    name = NON_IMAGE_WITH_PIXELS.get(sop_class)
    if ph.pixel_tag is None or name:
        if not sop_class and not _text(ds, "Modality"):
            raise InvalidInputError(
                where,
                "has no image data and no SOP Class; it is not a DICOM object MedView can use",
            )
        cls_name = name or (UID(sop_class).name if sop_class else "unknown object")
        if "Image Storage" in cls_name and not name:
            raise InvalidInputError(
                where, f"is a {cls_name} object without pixel data; the file is probably truncated"
            )
        return NonImageObject(
            where, _text(ds, "Modality"), sop_class, cls_name, _text(ds, "SeriesInstanceUID")
        )
    pf = pixel_format(ph, where)
    sop_uid = _text(ds, "SOPInstanceUID") or _text(ds.file_meta, "MediaStorageSOPInstanceUID")
    return _ImageFile(frames_of(ds, ref, pf, sop_uid), ds, ph.warnings)


def _dicomdir_refs(path: Path, skipped: list[Skipped]) -> Iterator[SourceRef]:
    """Files a DICOMDIR references; references leading outside its folder are refused."""
    try:
        ds = pydicom.dcmread(path, force=True)
        records = ds.DirectoryRecordSequence
    except Exception as exc:  # damaged DICOMDIR: say so, scan nothing from it
        skipped.append(
            Skipped(str(path), f"is a damaged DICOMDIR ({exc}); open its folder instead")
        )
        return
    if not any(rec.get("ReferencedFileID") for rec in records):
        skipped.append(Skipped(str(path), "is a DICOMDIR that references no image files"))
    for rec in records:
        fid = rec.get("ReferencedFileID")
        if not fid:
            continue
        parts = [fid] if isinstance(fid, str) else list(fid)
        shown = "/".join(str(p) for p in parts)
        target = sources.resolve_dicomdir_reference(path, parts)
        if target is None:
            skipped.append(
                Skipped(
                    f"{path}: {shown}",
                    "is referenced by the DICOMDIR but "
                    "points outside its folder; it was not opened",
                )
            )
        elif not target.is_file():
            skipped.append(Skipped(str(target), "is referenced by the DICOMDIR but missing"))
        else:
            yield SourceRef(str(target))


def _is_dicomdir(path: Path) -> bool:
    """A DICOMDIR under another name (a copy, renamed media) says so in its file meta; a file
    named on the command line is checked so it is followed instead of silently ignored."""
    try:
        meta = read_file_meta_info(path)
    except Exception:  # not DICOM, or no file meta: not a DICOMDIR
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY


def enumerate_sources(paths: Sequence[str | Path], skipped: list[Skipped]) -> list[SourceRef]:
    """Every file to read from the given paths, de-duplicated, in a stable order."""
    refs: list[SourceRef] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InvalidInputError(str(p), "does not exist; check the path")
        if p.is_dir():
            for f in sources.iter_folder(p):
                refs.extend(
                    sources.iter_zip(f, skipped)
                    if f.suffix.lower() == ".zip"
                    else [SourceRef(str(f))]
                )
        elif p.name.upper() == "DICOMDIR" or _is_dicomdir(p):
            refs.extend(_dicomdir_refs(p, skipped))
        elif sources.is_zip(p):
            refs.extend(sources.iter_zip(p, skipped))
        else:
            refs.append(SourceRef(str(p)))
    seen: set[SourceRef] = set()
    return [r for r in refs if not (r in seen or seen.add(r))]


def scan(
    paths: Sequence[str | Path],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ScanResult:
    """Find every study and series under `paths`, reading headers only."""
    result = ScanResult()
    refs = enumerate_sources(paths, result.skipped)
    named = {SourceRef(str(Path(p))) for p in paths}  # files the reader named themselves
    report(progress, 0.0, f"reading {len(refs)} files")
    images: list[_ImageFile] = []
    with sources.SourceOpener() as opener, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, ref in enumerate(refs):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if i % 50 == 0 and i:
                report(progress, i / len(refs), f"read {i} of {len(refs)} files")
            try:
                got = read_file_header(opener, ref)
            except NotDicomError as exc:
                if ref in named:
                    result.skipped.append(Skipped(str(ref), exc.problem))
                else:
                    result.other_files.append(str(ref))
                continue
            except MedviewError as exc:
                result.skipped.append(Skipped(str(ref), exc.problem))
                continue
            except Exception as exc:  # a parser bug must not stop the scan
                log.debug("unexpected error reading %s", ref, exc_info=True)
                result.skipped.append(Skipped(str(ref), f"could not be read ({exc})"))
                continue
            if isinstance(got, _ImageFile):
                images.append(got)
            elif isinstance(got, NonImageObject):
                result.non_image_objects.append(got)
    result.studies = _group(images)
    report(progress, 1.0, f"found {len(result.series)} series")
    return result


def _group(images: list[_ImageFile]) -> list[StudyInfo]:
    by_series: dict[tuple[str, str], list[_ImageFile]] = {}
    for f in images:
        study = _text(f.ds, "StudyInstanceUID") or "unknown-study"
        series = _text(f.ds, "SeriesInstanceUID") or (
            f"unknown-series-{Path(f.frames[0].source.path).parent}"
        )
        by_series.setdefault((study, series), []).append(f)
    studies: dict[str, StudyInfo] = {}
    for (study_uid, series_uid), files in by_series.items():
        first = files[0].ds
        study = studies.get(study_uid)
        if study is None:
            study = studies[study_uid] = StudyInfo(
                study_uid,
                study_date=_text(first, "StudyDate"),
                study_time=_text(first, "StudyTime"),
                description=_text(first, "StudyDescription"),
                accession_number=_text(first, "AccessionNumber"),
                patient=_patient(first),
            )
        study.series.extend(_series_infos(study_uid, series_uid, files))
    for st in studies.values():
        st.series.sort(
            key=lambda s: (
                s.series_number if s.series_number is not None else 1 << 30,
                s.description,
                s.key,
            )
        )
    return sorted(studies.values(), key=lambda s: (s.study_date, s.study_instance_uid))


def _series_infos(study_uid: str, series_uid: str, files: list[_ImageFile]) -> list[SeriesInfo]:
    first = files[0].ds
    frames, warnings_ = dedupe_by_sop([fr for f in files for fr in f.frames])
    for f in files:
        warnings_.extend(f.warnings)
    groups = split_by_shape(frames)
    stacks, first_stacks = [], []
    for g in groups:
        first_stacks.append(len(stacks) + 1)
        stacks.extend(build_stack(g))
    n = len(stacks)
    if len(groups) > 1:
        warnings_.append(split_warning(groups, first_stacks, n))
    modality = _text(first, "Modality")
    out = []
    for k, stack in enumerate(stacks):
        fr = stack.slices[0] or next(s for s in stack.slices if s)
        real = [s for s in stack.slices if s is not None]
        ws = list(warnings_) + stack.warnings
        rw = rescale_warning(real)
        if rw:
            ws.append(rw)
        tss = sorted({s.pixel.transfer_syntax_uid for s in real})
        for ts in tss:
            if not decodable(ts):
                ws.append(
                    LoadWarning(
                        "undecodable",
                        f"pixel data in {UID(ts).name} cannot be decoded with the installed codecs",
                    )
                )
        out.append(
            SeriesInfo(
                study_instance_uid=study_uid,
                series_instance_uid=series_uid,
                modality=modality,
                description=_text(first, "SeriesDescription"),
                series_number=_int_or_none(_text(first, "SeriesNumber")),
                frame_of_reference_uid=_text(first, "FrameOfReferenceUID"),
                patient=_patient(first),
                study_date=_text(first, "StudyDate"),
                study_description=_text(first, "StudyDescription"),
                slices=stack.slices,
                affine=stack.affine,
                rows=fr.pixel.rows,
                cols=fr.pixel.cols,
                # samples of the loaded volume: palette colour indices load as RGB
                samples_per_pixel=3
                if fr.pixel.photometric == "PALETTE COLOR"
                else fr.pixel.samples_per_pixel,
                photometric=fr.pixel.photometric,
                windows=_windows(first),
                units="HU" if modality == "CT" else _text(first, "RescaleType"),
                transfer_syntaxes=tss,
                warnings=ws,
                stack_label=f"stack {k + 1} of {n}" if n > 1 else "",
                has_geometry=stack.has_geometry,
            )
        )
    return out


def _int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None

"""The AI's findings as a DICOM SR Measurement Report (TID 1500), built with highdicom: one
volumetric ROI group (TID 1411) per finding, referencing the finding's segment in the SEG
sent beside it, with its volume, longest axial diameter and mean value, the reader's
decision, and the model's name and version as the algorithm (TID 4019) and the observing
device. It goes to the PACS with the SEG so colleagues and reports see the numbers."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medview import __version__
from medview.core.errors import InvalidInputError
from medview.core.findings import Finding
from medview.io.workspace import atomic_write_bytes

SR_SERIES_NUMBER = 901
# a finding in a lesion model's output is a morphologically altered structure; its type the
# SEG segment's property type
_CATEGORY = ("49755003", "SCT", "Morphologically Altered Structure")
_DECISION_CONCEPT = ("121071", "DCM", "Finding")


def _segments(seg: Any) -> dict[str, tuple[int, Any]]:
    """SegmentLabel -> (segment number, segmented property type) of a SEG."""
    out = {}
    for item in seg.SegmentSequence:
        ptype = item.SegmentedPropertyTypeCodeSequence[0]
        out[str(item.SegmentLabel)] = (int(item.SegmentNumber), ptype)
    return out


def _copy_type2(headers: Sequence[Any]) -> None:
    for ds in headers:
        for keyword in (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "PatientSex",
            "StudyDate",
            "StudyTime",
            "StudyID",
            "AccessionNumber",
            "ReferringPhysicianName",
        ):
            if keyword not in ds:
                setattr(ds, keyword, "")


def build_measurement_report(
    findings: Sequence[Finding], source_headers: Sequence[Any], seg: Any
) -> Any:
    """The SR dataset (highdicom Comprehensive3DSR). `source_headers`: the images' headers
    (the SR's evidence, with the SEG); `seg`: the SEG dataset the findings' segments are
    in. Every finding must be of one model, whose name and version the SR records."""
    import highdicom as hd
    from highdicom.sr.coding import CodedConcept
    from pydicom.sr.codedict import codes

    if not findings:
        raise InvalidInputError(None, "there are no findings to report")
    models = {(f.model_name, f.model_version) for f in findings}
    if len(models) != 1:
        raise InvalidInputError(
            None, "the findings come from more than one model; send one report per model"
        )
    ((name, version),) = models
    algorithm = hd.sr.AlgorithmIdentification(name=name, version=version)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(),
            name=name[:64],
            manufacturer_name="MedView",
            model_name=f"{name} {version}"[:64],
        ),
    )
    context = hd.sr.ObservationContext(observer_device_context=observer)
    segments = _segments(seg)
    series_uid = str(source_headers[0].SeriesInstanceUID)
    groups = []
    for f in findings:
        if f.label_name[:64] not in segments:
            raise InvalidInputError(
                None, f"the SEG has no segment {f.label_name!r} for finding {f.id}"
            )
        number, ptype = segments[f.label_name[:64]]
        measurements = [
            hd.sr.Measurement(
                name=codes.SCT.Volume,
                value=round(f.volume_ml, 4),
                unit=CodedConcept("ml", "UCUM", "milliliter"),
                algorithm_id=algorithm,
            ),
            hd.sr.Measurement(
                name=CodedConcept("103339001", "SCT", "Long Axis"),
                value=round(f.longest_axial_diameter_mm, 3),
                unit=codes.UCUM.Millimeter,
                algorithm_id=algorithm,
            ),
            hd.sr.Measurement(
                name=CodedConcept("373098007", "SCT", "Mean"),
                value=round(f.mean_hu, 2),
                unit=CodedConcept("[hnsf'U]", "UCUM", "Hounsfield unit"),
                algorithm_id=algorithm,
            ),
        ]
        evaluation = hd.sr.QualitativeEvaluation(
            name=CodedConcept("121071", "DCM", "Finding"),
            value=CodedConcept(
                {"accepted": "373066001", "rejected": "373067005", "pending": "261665006"}[
                    f.decision
                ],
                "SCT",
                {"accepted": "Yes", "rejected": "No", "pending": "Unknown"}[f.decision],
            ),
        )
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=hd.UID(), identifier=f"finding {f.id}"
                ),
                referenced_segment=hd.sr.ReferencedSegment(
                    sop_class_uid=str(seg.SOPClassUID),
                    sop_instance_uid=str(seg.SOPInstanceUID),
                    segment_number=number,
                    source_series=hd.sr.SourceSeriesForSegmentation(series_uid),
                ),
                finding_type=CodedConcept(
                    ptype.CodeValue, ptype.CodingSchemeDesignator, ptype.CodeMeaning
                ),
                finding_category=CodedConcept(*_CATEGORY),
                algorithm_id=algorithm,
                measurements=measurements,
                qualitative_evaluations=[evaluation],
            )
        )
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
    )
    headers = list(source_headers)
    _copy_type2(headers)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*headers, seg],
        content=report,
        series_number=SR_SERIES_NUMBER,
        series_instance_uid=hd.UID(),
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="MedView",
        series_description=f"AI findings ({name} {version})"[:64],
        institution_name=None,
        is_complete=True,
        is_final=False,
        is_verified=False,
    )
    sr.SoftwareVersions = __version__
    return sr


def write_measurement_report(
    findings: Sequence[Finding], source_files: Sequence[Path], seg_path: Path, out_path: Path
) -> Path:
    """Build the report from the series' files and the SEG file, write it atomically."""
    import pydicom

    try:
        headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in source_files]
        seg = pydicom.dcmread(seg_path)
    except (OSError, pydicom.errors.InvalidDicomError) as err:
        raise InvalidInputError(
            str(getattr(err, "filename", "") or seg_path), f"cannot be read for the report ({err})"
        ) from None
    sr = build_measurement_report(findings, headers, seg)
    buf = io.BytesIO()
    sr.save_as(buf)
    atomic_write_bytes(out_path, buf.getvalue())
    return out_path

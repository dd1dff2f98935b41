"""`medview info`: what a scan found, as text for people or JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from medview.commands import EXIT_BAD_INPUT, EXIT_OK
from medview.core.jobs import Progress
from medview.core.series import ScanResult, SeriesInfo, StudyInfo


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def series_json(s: SeriesInfo, show_phi: bool) -> dict[str, Any]:
    spacing = s.spacing_mm
    out: dict[str, Any] = {
        "series_instance_uid": s.series_instance_uid,
        "key": s.key,
        "stack": s.stack_label,
        "series_number": s.series_number,
        "modality": s.modality,
        "description": s.description,
        "n_instances": s.n_instances,
        "n_slices": len(s.slices),
        "shape": list(s.shape),
        "samples_per_pixel": s.samples_per_pixel,
        "photometric": s.photometric,
        "pixel_spacing_row_col_mm": [_r(spacing[1]), _r(spacing[2])],
        "slice_spacing_mm": _r(spacing[0]) if len(s.slices) > 1 else None,
        "origin_mm": [_r(v) for v in s.affine[:3, 3]],
        "slice_normal": [_r(v, 6) for v in s.slice_normal],
        "has_geometry": s.has_geometry,
        "transfer_syntaxes": s.transfer_syntaxes,
        "windows": [[c, w] for c, w in s.windows],
        "warnings": [{"code": w.code, "message": w.message} for w in s.warnings],
    }
    if show_phi:
        out["patient"] = {"name": s.patient.name, "id": s.patient.id}
    return out


def study_json(st: StudyInfo, show_phi: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "study_instance_uid": st.study_instance_uid,
        "study_date": st.study_date,
        "description": st.description,
        "series": [series_json(s, show_phi) for s in st.series],
    }
    if show_phi:
        out["patient"] = {
            "name": st.patient.name,
            "id": st.patient.id,
            "birth_date": st.patient.birth_date,
            "sex": st.patient.sex,
        }
    return out


def scan_json(result: ScanResult, show_phi: bool = False) -> dict[str, Any]:
    return {
        "studies": [study_json(st, show_phi) for st in result.studies],
        "non_image_objects": [
            {
                "path": o.path,
                "modality": o.modality,
                "sop_class_uid": o.sop_class_uid,
                "sop_class_name": o.sop_class_name,
                "series_instance_uid": o.series_instance_uid,
            }
            for o in result.non_image_objects
        ],
        "skipped": [{"path": s.path, "reason": s.reason} for s in result.skipped],
        "other_files": list(result.other_files),
        "warnings": [{"code": w.code, "message": w.message} for w in result.warnings],
    }


def scan_text(result: ScanResult, show_phi: bool = False) -> str:
    lines: list[str] = []
    said: set[tuple[str, str]] = set()  # a series' warning is said once, not once per stack
    for st in result.studies:
        date = f" {st.study_date}" if st.study_date else ""
        lines.append(f'Study{date} "{st.description}"  [{st.study_instance_uid}]')
        if show_phi:
            lines.append(f"  Patient: {st.patient.name} ({st.patient.id})")
        for s in st.series:
            sp = s.spacing_mm
            dims = " x ".join(str(d) for d in s.shape)
            stack = f" ({s.stack_label})" if s.stack_label else ""
            lines.append(
                f"  Series {s.series_number if s.series_number is not None else '-'} "
                f'{s.modality} "{s.description}"{stack}: {s.n_instances} file(s), {dims}, '
                f"pixels {sp[1]:.3g} x {sp[2]:.3g} mm, slices {sp[0]:.3g} mm  "
                f"[{s.series_instance_uid}]"
            )
            for w in s.warnings:
                if (s.series_instance_uid, w.message) not in said:
                    said.add((s.series_instance_uid, w.message))
                    lines.append(f"    warning: {w.message}")
    if result.non_image_objects:
        lines.append(f"Non-image objects: {len(result.non_image_objects)}")
        lines.extend(
            f"  {o.sop_class_name} ({o.modality or '-'}): {o.path}"
            for o in result.non_image_objects
        )
    if result.other_files:
        lines.append(result.other_files_note())
    if result.skipped:
        lines.append(f"Skipped: {len(result.skipped)} file(s)")
        lines.extend(f"  {s.path}: {s.reason}" for s in result.skipped)
    lines.extend(f"warning: {w.message}" for w in result.warnings)
    if not result.studies:
        lines.append("No image series found.")
    return "\n".join(lines)


def terminal_progress(p: Progress) -> None:
    """Progress on stderr for folders of thousands of files, only when someone watches."""
    if sys.stderr.isatty():
        end = "\n" if p.fraction >= 1 else ""
        print(f"\r{p.message:60.60s}", end=end, file=sys.stderr, flush=True)


def run_info(paths: Sequence[str], as_json: bool = False, show_phi: bool = False) -> int:
    from medview.io.dicom.index import scan

    result = scan(paths, progress=terminal_progress)
    print(
        json.dumps(scan_json(result, show_phi), indent=1)
        if as_json
        else scan_text(result, show_phi)
    )
    if result.studies:
        return EXIT_OK
    # stdout keeps the full listing (scripts read the JSON); stderr gets the one line
    where = paths[0] if len(paths) == 1 else f"the {len(paths)} paths given"
    skipped = (
        f" ({len(result.skipped)} file(s) not read: {result.skipped[0].reason})"
        if result.skipped
        else ""
    )
    print(f"medview: {where}: no image series found{skipped}", file=sys.stderr)
    return EXIT_BAD_INPUT

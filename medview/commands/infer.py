"""`medview infer`: run a segmentation model on a study, headless, and write what it found.

Writes into DIR only (created if missing):
    seg.dcm                    DICOM SEG referencing the source images (DICOM input only)
    labels.nii.gz              uint8 label map at the threshold (the card's label values):
                               the listed findings' regions, like seg.dcm, when the card
                               has a postprocess; every region at the threshold otherwise
    probabilities_<value>.nii.gz  uint8 probability per label; probability = value / 255,
                               0 where another label is more probable
    uncertainty.nii.gz         with --tta: uint8 spread across flips; std = value / 510
    findings.json              model, threshold, files, timings, warnings and the findings,
                               with the disclaimer; written last, so its presence means done
DIR must be empty or hold only these names (a previous run's output, which is then
replaced, stale files of that run included); anything else there is refused, so a typo
cannot overwrite a folder of other files. Every file is written atomically."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from medview.commands.info import terminal_progress
from medview.core.errors import InvalidInputError
from medview.core.jobs import CancelToken, JobContext

_OUTPUT = re.compile(
    r"^(seg\.dcm|labels\.nii\.gz|uncertainty\.nii\.gz|findings\.json|"
    r"probabilities_\d+\.nii\.gz)$"
)
_TEMP = re.compile(r"^\.(.+)\.[^.]+\.tmp$")  # workspace.atomic_write_bytes' temporaries


def _is_ours(name: str) -> bool:
    temp = _TEMP.match(name)
    return bool(_OUTPUT.match(temp.group(1) if temp else name))


def prepare_out_dir(out: str | Path) -> tuple[Path, list[Path]]:
    """The output folder, made if missing, and the earlier run's files found in it."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(str(folder), "is a file; give a folder for the results")
    if folder.is_dir():
        entries = sorted(folder.iterdir())
        foreign = [p for p in entries if not _is_ours(p.name) or not p.is_file()]
        if foreign:
            raise InvalidInputError(
                str(folder),
                f"holds {foreign[0].name}, which medview "
                f"infer did not write; choose an empty or "
                f"new folder",
            )
        return folder, entries
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise InvalidInputError(str(folder), f"cannot be created ({exc.strerror})") from exc
    return folder, []


def _write_map(array: Any, volume: Any, path: Path) -> list[str]:
    from medview.core.volume import Volume, VolumeMetadata
    from medview.io.image_files import write_volume

    out = Volume(array, volume.affine, VolumeMetadata(source=str(path)))
    return [w.message for w in write_volume(out, path)]


def _summary(result: Any, volume: Any, path: str, files: list[str], tta: bool) -> dict:
    from medview.ai.models.cards import DISCLAIMER

    card = result.card
    return {
        "disclaimer": DISCLAIMER,
        "model": {
            "name": card.name,
            "version": card.version,
            "task": card.task,
            "weights_sha256": card.weights_sha256,
        },
        "input": str(path),
        "study_instance_uid": volume.metadata.study_instance_uid,
        "series_instance_uid": volume.metadata.series_instance_uid,
        "threshold": result.threshold,
        "tta": tta,
        "device": result.device,
        "labels": [
            {
                "value": lab.value,
                "name": lab.name,
                "colour": list(lab.colour),
                "code": list(lab.code),
                "probability_file": f"probabilities_{lab.value}.nii.gz",
            }
            for lab in card.labels
        ],
        "probability_scale": "probability = stored value / 255 (0 where another label is "
        "more probable)",
        "uncertainty_scale": "standard deviation across flips = stored value / 510"
        if tta
        else None,
        "files": files,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        "reused": result.reused,
        "warnings": result.warnings,
        "findings": [f.to_dict() for f in result.findings],
    }


class SeveralModelsFit(InvalidInputError):
    """More than one installed model fits and none was named: the reader must choose."""


def default_model(modality: str) -> str:
    """The model to run when `--model` is not given: the active version of the only
    segmentation model made for `modality` (any segmentation model when the image does not
    say its modality), as the AI panel would offer it. Raises SeveralModelsFit listing the
    candidates when several fit, InvalidInputError when none does."""
    from medview.ai.models.registry import list_models

    wanted = modality.upper()
    fits = [
        e
        for e in list_models()
        if e.active
        and e.card.task == "segmentation"
        and (not wanted or e.card.modality.upper() == wanted)
    ]
    what = f"{wanted} series" if wanted else "series that does not say its modality"
    if not fits:
        raise InvalidInputError(
            None, f"no installed segmentation model fits this {what}; see medview models"
        )
    if len(fits) > 1:
        refs = ", ".join(e.ref for e in fits)
        raise SeveralModelsFit(
            None, f"{len(fits)} models fit this {what} ({refs}); choose one with --model NAME"
        )
    return fits[0].ref


def run_infer(
    path: str,
    model: str | None,
    out: str,
    series_key: str | None = None,
    device: str = "auto",
    threshold: float = 0.5,
    tta: bool = False,
) -> int:
    """Run `model` (None: the only model that fits, see default_model) and write DIR."""
    from medview.commands import EXIT_USAGE
    from medview.io.open_volume import find_series, load_found
    from medview.io.workspace import atomic_write_text
    from medview.jobs.inference import infer_job

    found = find_series([path], series_key)
    if model is None:
        try:
            model = default_model(found.modality if found is not None else "")
        except SeveralModelsFit as exc:
            print(f"medview: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(
            f"model: {model} (the active version of the only model that fits; choose "
            f"another with --model)"
        )
    folder, previous = prepare_out_dir(out)
    (folder / "findings.json").unlink(missing_ok=True)  # present again only when all is done
    volume, series = load_found([path], found, progress=terminal_progress)
    ctx = JobContext(CancelToken(), terminal_progress)
    job = infer_job(
        volume,
        model,
        ctx,
        device=device,
        tta=tta,
        threshold=threshold,
        series_key=series.key if series is not None else "",
    )
    try:
        while True:
            next(job)
    except StopIteration as stop:
        result = stop.value

    seg = result.segmentation
    label_map = result.label_map()
    notes = [w.message for w in volume.metadata.warnings]
    written = []
    if series is not None:
        from medview.io.dicom.seg import write_seg

        notes += write_seg(label_map, series, result.card, folder / "seg.dcm")
        written.append("seg.dcm")
    notes += _write_map(label_map, volume, folder / "labels.nii.gz")
    written.append("labels.nii.gz")
    for lab in result.card.labels:
        name = f"probabilities_{lab.value}.nii.gz"
        _write_map(seg.probability(lab.value), volume, folder / name)
        written.append(name)
    if seg.uncertainty is not None:
        _write_map(seg.uncertainty, volume, folder / "uncertainty.nii.gz")
        written.append("uncertainty.nii.gz")
    for stale in previous:
        if stale.name not in written:
            stale.unlink(missing_ok=True)
    summary = _summary(result, volume, path, [*written, "findings.json"], tta)
    atomic_write_text(folder / "findings.json", json.dumps(summary, indent=1) + "\n")

    for note in dict.fromkeys([*notes, *result.warnings]):
        print(f"medview: warning: {note}", file=sys.stderr)
    card = result.card
    print(
        f"{card.name} {card.version}: {len(result.findings)} finding(s) at threshold "
        f"{result.threshold:g} on {result.device} — {summary['disclaimer']}"
    )
    for f in result.findings:
        print(
            f"  {f.id:3d}  {f.label_name:16.16s} {f.volume_ml:8.2f} mL "
            f"{f.longest_axial_diameter_mm:6.1f} mm  slices {f.slice_range[0] + 1}-"
            f"{f.slice_range[1] + 1}  peak {f.peak_probability:.2f}"
        )
    print(f"wrote {folder} ({', '.join(summary['files'])})")
    return 0

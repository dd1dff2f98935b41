"""Training from the department's PACS: `medview train --data pacs://NODE[?query]`. The
studies on the node that carry a MedView SEG marked done (content label MEDVIEW_DONE; the
newest per series) are retrieved into the received folder, and a folder of labelled studies
is made of them as training reads it (<study>/series/ hard links to the received images and
labels.nii.gz from the SEG), with pacs.json naming the node and the hashes of the files.
One radiologist labels on one workstation, another trains on another, through the PACS.

The query takes the `pacs find` terms: pacs://NODE?patient_id=X&modality=CT&date=FROM-TO&
accession=A&description=D&name=N."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from medview.core.errors import InvalidInputError
from medview.core.jobs import CancelToken, JobContext, report
from medview.io.workspace import atomic_write_text
from medview.net import dimse, web
from medview.net.nodes import DimseNode, Node, pacs_dir, resolve_node
from medview.net.query import StudyQuery, parse_date_range
from medview.net.retrieve import retrieve
from medview.net.studydb import StudyDB

SCHEME = "pacs://"
DONE_LABEL = "MEDVIEW_DONE"  # io.labels.seg.CONTENT_LABEL_DONE (net does not import labels)
_TERMS = {"patient_id", "name", "modality", "accession", "description", "date"}


def parse_pacs_data(text: str) -> tuple[str, StudyQuery]:
    """(node, query) of `pacs://NODE[?query]`; one sentence for anything malformed."""
    if not text.startswith(SCHEME):
        raise InvalidInputError(text, "is not a pacs://NODE[?query] address")
    rest = text[len(SCHEME) :]
    node, _, query = rest.partition("?")
    if not node:
        raise InvalidInputError(text, "names no node; write pacs://NODE[?query]")
    terms = dict(parse_qsl(query, keep_blank_values=False))
    unknown = sorted(set(terms) - _TERMS)
    if unknown:
        raise InvalidInputError(
            text, f"has the unknown search term {unknown[0]!r} (use {', '.join(sorted(_TERMS))})"
        )
    lo, hi = parse_date_range(terms.pop("date")) if "date" in terms else ("", "")
    return node, StudyQuery(date_from=lo, date_to=hi, **terms)


def _find(node: Node, q: StudyQuery) -> list[str]:
    rows = dimse.find_studies(node, q) if isinstance(node, DimseNode) else web.find_studies(node, q)
    return [r.study_uid for r in rows]


def _seg_series(node: Node, study_uid: str) -> list[str]:
    rows = (
        dimse.find_series(node, study_uid)
        if isinstance(node, DimseNode)
        else web.find_series(node, study_uid)
    )
    return [r.series_uid for r in rows if r.modality == "SEG"]


@dataclass(frozen=True)
class DoneSeg:
    path: Path
    referenced_series: str
    when: str  # content date and time, for "the newest per series"


def _done_segs(files: list[Path]) -> list[DoneSeg]:
    import pydicom

    out = []
    for p in files:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            if str(ds.get("ContentLabel", "")) != DONE_LABEL:
                continue
            ref = str(ds.ReferencedSeriesSequence[0].SeriesInstanceUID)
        except Exception:  # not a SEG of ours, or malformed: not training data
            continue
        when = f"{ds.get('ContentDate', '')}{ds.get('ContentTime', '')}"
        out.append(DoneSeg(p, ref, when))
    return out


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:  # another file system, or no hard links: a copy
        shutil.copy2(src, dst)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _study_folder(seg: DoneSeg, images: list[Path], folder: Path) -> dict:
    """<folder>/series/ (the images) and labels.nii.gz (the SEG on their grid)."""
    from medview.core.labels import segment_for
    from medview.core.volume import Volume, VolumeMetadata
    from medview.io.dicom.index import scan
    from medview.io.dicom.seg import read_seg
    from medview.io.image_files import write_volume
    from medview.io.labels.files import write_segment_table

    for img in images:
        _link(img, folder / "series" / img.name)
    (series,) = [
        s
        for s in scan([folder / "series"]).series
        if s.series_instance_uid == seg.referenced_series
    ]
    labels = read_seg(seg.path, series)
    write_volume(
        Volume(
            labels.label_map.astype("uint8"), series.affine, VolumeMetadata(source=str(seg.path))
        ),
        folder / "labels.nii.gz",
    )
    # the SEG's segment names travel with the map, so training matches them to the model's
    # labels by name: a reader who accepted only liver lesions sent them as segment 1
    write_segment_table(
        folder / "labels.nii.gz",
        {v: segment_for(v, name) for v, name in labels.segment_labels.items()},
    )
    return {
        "seg_sha256": _sha256(seg.path),
        "images_sha256": hashlib.sha256(
            "".join(sorted(_sha256(i) for i in images)).encode()
        ).hexdigest(),
        "segments": {str(k): v for k, v in labels.segment_labels.items()},
    }


def fetch_training_data(
    text: str, ctx: JobContext | None = None, db: StudyDB | None = None, out: Path | None = None
) -> Path:
    """Make (or bring up to date) the folder of labelled studies for `pacs://NODE[?query]`
    and return it; InvalidInputError when the node holds no study labelled done."""
    ctx = ctx or JobContext(CancelToken())
    node_text, q = parse_pacs_data(text)
    node = resolve_node(node_text)
    db = db or StudyDB()
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    out = out or pacs_dir() / "training" / key
    studies = _find(node, q)
    record = {"node": node.address, "query": text, "studies": {}}
    for k, study in enumerate(studies):
        ctx.cancel.raise_if_cancelled()
        report(ctx.progress, k / max(1, len(studies)), f"study {k + 1} of {len(studies)}")
        segs = []
        for seg_series in _seg_series(node, study):
            retrieve(node, study, JobContext(ctx.cancel), series_uid=seg_series, db=db)
            segs += _done_segs(db.series_files(seg_series))
        newest: dict[str, DoneSeg] = {}
        for s in segs:
            if s.referenced_series not in newest or s.when > newest[s.referenced_series].when:
                newest[s.referenced_series] = s
        for series_uid, seg in newest.items():
            retrieve(node, study, JobContext(ctx.cancel), series_uid=series_uid, db=db)
            name = hashlib.sha256(f"{study}/{series_uid}".encode()).hexdigest()[:12]
            record["studies"][name] = _study_folder(seg, db.series_files(series_uid), out / name)
    if not record["studies"]:
        raise InvalidInputError(
            text,
            f"{node.name} holds no study with MedView labels marked done that matches the query",
        )
    atomic_write_text(out / "pacs.json", json.dumps(record, indent=1))
    report(ctx.progress, 1.0, f"{len(record['studies'])} labelled studies from {node.name}")
    return out

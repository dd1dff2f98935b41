"""The studies a fine-tune learns from: found in a folder of labelled studies or in the
workspace's "done" studies, checked (geometry, labels), split by patient and cached as plain
arrays that training memory-maps.

Torch-free on purpose: the training panel lists studies and their label counts through
this module without loading torch, and the child process caches them before its first step.

A study folder holds a label map (labels.nii.gz, .nii, .nrrd or .mha: io.labels.files, where
the viewer finds the same label map beside a series it opens) and its image: a
`series/` folder of DICOM (the demo generator's layout), an image file named `image.*`, or
the DICOM files beside the label map. Nothing identifying leaves this module: a study is
known by a hash of its UIDs (`key`), a patient by a hash of the patient ID, and the card
records only those hashes.

Labels: a study's values are the base model's values unless names say otherwise. When the
study's segments have names (the workspace's label store), they are matched to the card's
label names; an explicit mapping (`{"3": "liver lesion", "tumour": "liver lesion",
"5": "ignore"}`) wins over both. A value the model does not know is refused in one sentence
that says how to map it."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from medview.ai.models.cards import ModelCard
from medview.ai.training.job import write_file
from medview.core.errors import InvalidInputError, SettingError
from medview.core.series import SeriesInfo
from medview.io.labels.files import segment_names, study_label_file
from medview.io.patient_key import current_key, patient_key

IMAGE_NAMES = ("image.nii.gz", "image.nii", "image.nrrd", "image.mha")
IGNORE = ("ignore", "background")
AFFINE_TOLERANCE_MM = 0.05
CT_FILE, LABEL_FILE, META_FILE = "image.npy", "labels.npy", "meta.json"


def short_hash(*parts: str) -> str:
    """12 hex digits of SHA-256: enough to tell studies apart, says nothing about them."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TrainStudy:
    key: str  # hash of study + series UIDs (or of the path when the image has none)
    name: str  # the folder's name, for the panel and messages
    patient: str  # hash of the patient ID (the key when there is none)
    image: str  # DICOM folder or image file
    labels: str  # the label map file
    segments: dict[int, str] = field(default_factory=dict)  # value -> name, when known
    series_key: str | None = None
    store: str = ""  # the workspace's labels folder, for a done study (labels = its folder)
    affine: tuple = ()  # the grid the workspace's label map was drawn on

    def to_json(self) -> dict:
        return {**asdict(self), "segments": {str(k): v for k, v in self.segments.items()}}

    @staticmethod
    def from_json(data: dict) -> TrainStudy:
        return TrainStudy(
            **{
                **data,
                "affine": tuple(tuple(r) for r in data.get("affine", ())),
                "segments": {int(k): v for k, v in data.get("segments", {}).items()},
            }
        )


def _image_source(folder: Path) -> Path:
    if (folder / "series").is_dir():
        return folder / "series"
    return next((folder / n for n in IMAGE_NAMES if (folder / n).is_file()), folder)


def _describe(folder: Path, labels: Path) -> TrainStudy:
    image = _image_source(folder)
    study_uid = series_uid = patient = ""
    series_key = None
    if image.is_dir():
        from medview.io.dicom.index import scan

        found = [s for s in scan([image]).series if s.modality != "SEG"]
        if not found:
            raise InvalidInputError(
                str(folder),
                "holds a label map but no image series; put "
                "the DICOM series in a 'series' folder (or "
                "the image as image.nii.gz) beside it",
            )
        if len(found) > 1:
            raise InvalidInputError(
                str(folder),
                f"holds {len(found)} image series beside its "
                f"label map; keep one series per study folder",
            )
        s = found[0]
        study_uid, series_uid, patient = s.study_instance_uid, s.series_instance_uid, s.patient.id
        series_key = s.key
    key = short_hash(study_uid, series_uid) if series_uid else short_hash(str(image.resolve()))
    # names in a segment table beside the label map (a reader's export, a SEG from the PACS)
    # are matched to the card's labels like the workspace's
    return TrainStudy(
        key,
        folder.name,
        patient_key(patient) if patient else key,
        str(image),
        str(labels),
        segment_names(labels),
        series_key,
    )


WORKSPACE = "workspace"


def workspace_studies(root: Path | None = None) -> list[TrainStudy]:
    """The studies marked done in the workspace's label store (medview.io.labels.catalog)."""
    from medview.io.labels.catalog import done_studies

    out = []
    for d in done_studies(root):
        src = d.source
        key = (
            short_hash(src.study_instance_uid, src.series_instance_uid)
            if src.series_instance_uid
            else short_hash(d.series_key)
        )
        name = Path(src.series_folder).name or key
        image = src.series_folder
        # a label map saved before patient keys were salted gets the salted key here, so
        # one patient's old and new label maps stay on one side of the split
        patient = current_key(src.patient_key, src.source_files)
        out.append(
            TrainStudy(
                key,
                name,
                patient or key,
                image,
                str(d.label_folder),
                dict(d.segments),
                d.series_key,
                str(d.label_folder.parent),
                tuple(tuple(r) for r in src.affine),
            )
        )
    return out


def find_studies(data: str | Path) -> list[TrainStudy]:
    """The labelled studies in `data`: "workspace" (or the data folder, or its labels
    folder) for the studies marked done there; a study folder; or a folder of them (each
    sub-folder holding a label map, sorted by name)."""
    from medview.io import saved

    if str(data) == WORKSPACE or Path(data) == saved.root():
        data = saved.labels_dir()
        if not data.is_dir():
            raise InvalidInputError(
                None,
                "the workspace holds no studies marked done; label "
                "studies and mark them done first",
            )
    root = Path(data)
    if root.name == "labels" and root.is_dir() and any(root.glob("*/label.json")):
        studies = workspace_studies(root)
        if not studies:
            raise InvalidInputError(
                str(root), "holds no studies marked done; label studies and mark them done first"
            )
        return studies
    if not root.is_dir():
        raise InvalidInputError(
            str(root), "is not a folder; give a folder of labelled studies or the workspace"
        )
    own = study_label_file(root)
    if own is not None:
        return [_describe(root, own)]
    studies = [
        _describe(sub, lab)
        for sub in sorted(root.iterdir())
        if sub.is_dir()
        and not sub.name.startswith(".")
        and (lab := study_label_file(sub)) is not None
    ]
    if not studies:
        raise InvalidInputError(
            str(root),
            "holds no labelled studies (no sub-folder with a "
            "labels.nii.gz and its image); label and mark "
            "studies done first",
        )
    keys = [s.key for s in studies]
    if len(set(keys)) != len(keys):
        twice = next(s.name for s in studies if keys.count(s.key) > 1)
        raise InvalidInputError(
            str(root), f"holds the same series twice ({twice} and another); keep one copy"
        )
    return studies


def split_by_patient(
    studies: list[TrainStudy], val_fraction: float = 0.25, seed: int = 0
) -> dict[str, list[str]]:
    """Train / validation study keys, every patient's studies on one side (a patient in both
    would flatter the validation numbers). Seeded, so the same studies give the same split."""
    patients = sorted({s.patient for s in studies})
    rng = np.random.default_rng(seed)
    order = [patients[i] for i in rng.permutation(len(patients))]
    n_val = min(len(patients) - 1, max(1, round(val_fraction * len(patients))))
    val = set(order[: max(n_val, 0)])
    return {
        "train": [s.key for s in studies if s.patient not in val],
        "val": [s.key for s in studies if s.patient in val],
    }


def label_mapping(
    study: TrainStudy, present: list[int], card: ModelCard, explicit: dict[str, str] | None = None
) -> dict[int, int]:
    """Study value -> card value (0 drops it) for every value present in the label map."""
    by_name = {lab.name.lower(): lab.value for lab in card.labels}
    known = {lab.value for lab in card.labels}
    explicit = {str(k).lower(): str(v).lower() for k, v in (explicit or {}).items()}
    card_name = {lab.value: lab.name for lab in card.labels}
    out = {}
    for value in present:
        name = study.segments.get(value, "")
        # an unnamed value is the card's label of that value: --map "lung nodule=ignore"
        # applies to it (it was silently ignored)
        alias = name or card_name.get(value, "")
        target = explicit.get(str(value), explicit.get(alias.lower()))
        if target is not None:
            if target in IGNORE:
                out[value] = 0
            elif target in by_name:
                out[value] = by_name[target]
            elif target.isdigit() and int(target) in known:
                out[value] = int(target)
            else:
                raise InvalidInputError(
                    None,
                    f"the label mapping sends {value} to "
                    f"{target!r}, which {card.ref} does not have "
                    f"(it knows {_known(card)})",
                )
        elif name and name.lower() in by_name:
            out[value] = by_name[name.lower()]
        elif not name and value in known:
            out[value] = value
        else:
            shown = f"{value} ({name})" if name else str(value)
            raise SettingError(
                "mapping",
                str(name or value),
                "unmapped",
                str(study.labels),
                study=study.name,
                label=shown,
                model=card.ref,
                known=_known(card),
                example=card.labels[0].name,
            )
    return out


def _known(card: ModelCard) -> str:
    return ", ".join(f"{lab.value} {lab.name}" for lab in card.labels)


@dataclass(frozen=True)
class PreparedStudy:
    """A study's image and mapped labels as memory-mapped arrays, (slice, row, col)."""

    key: str
    name: str
    image: np.ndarray
    labels: np.ndarray
    spacing_mm: tuple[float, float, float]
    counts: dict[int, int]  # voxels per card label value
    folder: Path  # its cache folder (what is derived from it is kept there too)
    # voxel index -> LPS mm (4 x 4 rows): a 3D model turns the study to its own axes
    affine: tuple = ()


def _check_geometry(
    study: TrainStudy,
    image_shape: tuple,
    image_affine: np.ndarray,
    label_shape: tuple,
    label_affine: np.ndarray,
) -> None:
    if tuple(image_shape) != tuple(label_shape):
        raise InvalidInputError(
            study.labels,
            f"of study {study.name} has {label_shape} "
            f"voxels but its image has {tuple(image_shape)}; export the "
            f"label map on the image's grid",
        )
    corners = np.array(
        [[0, 0, 0, 1], [image_shape[0] - 1, image_shape[1] - 1, image_shape[2] - 1, 1]], float
    ).T
    moved = np.abs(image_affine @ corners - label_affine @ corners).max()
    if moved > AFFINE_TOLERANCE_MM:
        raise InvalidInputError(
            study.labels,
            f"of study {study.name} is placed {moved:.1f} "
            f"mm away from its image (a different orientation, spacing "
            f"or origin); export the label map on the image's grid",
        )


def _source(study: TrainStudy) -> list:
    """What the cache of a study follows: relabelled, or its image replaced or a missing
    slice restored, it is cached again."""
    stat = Path(study.labels, "label.json" if study.store else "").stat()
    return [study.labels, stat.st_mtime_ns, stat.st_size, *_fingerprint(Path(study.image))]


def cached_meta(
    study: TrainStudy, card: ModelCard, cache: Path, mapping: dict[str, str] | None = None
) -> dict | None:
    """The cache's record of a study when it is current for this model and mapping."""
    meta_path = Path(cache) / study.key / META_FILE
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    current = (
        meta.get("mapping") == (mapping or {})
        and meta.get("card") == card.ref
        and meta.get("source") == _source(study)
    )
    return meta if current else None


def prepare_study(
    study: TrainStudy, card: ModelCard, cache: Path, mapping: dict[str, str] | None = None
) -> PreparedStudy:
    """Load, check and cache one study (once: later runs and resumes memory-map the cache,
    until its label map changes)."""
    folder = Path(cache) / study.key
    meta = cached_meta(study, card, cache, mapping)
    if meta is not None:
        return _open(study, folder, meta)
    source = _source(study)
    from medview.io.image_files import read_image
    from medview.io.open_volume import load_volume

    volume, series = load_volume([study.image], study.series_key)
    if study.store:
        raw = _store_labels(study)
        label_affine = np.array(study.affine, float)
    else:
        label_volume = read_image(study.labels)
        raw, label_affine = np.asarray(label_volume.array), label_volume.affine
    _check_geometry(study, volume.shape, volume.affine, raw.shape, label_affine)
    if raw.dtype.kind == "f" and not np.all(raw == np.round(raw)):
        raise InvalidInputError(
            study.labels,
            f"of study {study.name} holds fractional values; a label map holds whole label numbers",
        )
    present = [int(v) for v in np.unique(raw) if v != 0]
    lut = np.zeros(int(max(present, default=0)) + 1, np.uint8)
    for src, dst in label_mapping(study, present, card, mapping).items():
        lut[src] = dst
    if raw.min() < 0:
        raise InvalidInputError(study.labels, f"of study {study.name} holds negative labels")
    labels = lut[raw.astype(np.int64)]
    _check_blank_slices(study, series, labels)
    folder.mkdir(parents=True, exist_ok=True)
    # the base model's mistakes on the old labels; a temp file of a worker ended mid-write
    for stale in [*folder.glob("mined-*.npy"), *folder.glob(".*.tmp")]:
        stale.unlink(missing_ok=True)
    dtype = (
        np.int16
        if volume.array.dtype.kind in "iu" and volume.array.dtype.itemsize <= 2
        else np.float32
    )
    save_cached(folder / CT_FILE, np.ascontiguousarray(volume.array, dtype=dtype))
    save_cached(folder / LABEL_FILE, labels)
    counts = {
        int(v): int(n) for v, n in zip(*np.unique(labels, return_counts=True), strict=True) if v
    }
    meta = {
        "spacing_mm": list(volume.spacing_mm),
        "affine": np.asarray(volume.affine, float).tolist(),
        "counts": counts,
        "card": card.ref,
        "mapping": mapping or {},
        "source": source,
    }
    save_cached(folder / META_FILE, json.dumps(meta).encode())  # last: marks it whole
    return _open(study, folder, meta)


def _check_blank_slices(study: TrainStudy, series: SeriesInfo | None, labels: np.ndarray) -> None:
    """A slice missing from the series is loaded blank (dicom_volume keeps the others in
    place); a lesion labelled there would teach the network that a flat grey slice holds
    one, so that study is refused."""
    blank = [i for i, f in enumerate(series.slices) if f is None] if series else []
    marked = [i for i in blank if labels[i].any()]
    if marked:
        raise InvalidInputError(
            study.image,
            f"of study {study.name} has no image for slice "
            f"{marked[0] + 1} (a missing file) where its label map marks "
            f"a lesion; restore the missing file or leave the study out",
        )


def _fingerprint(image: Path) -> list[int]:
    """File count, bytes and newest change of a study's image (a file or a DICOM folder):
    cheap, and different once any of its files is replaced, added or removed."""
    files = [image] if image.is_file() else [p for p in image.rglob("*") if p.is_file()]
    stats = [p.stat() for p in files]
    return [
        len(stats),
        sum(s.st_size for s in stats),
        max((s.st_mtime_ns for s in stats), default=0),
    ]


def save_cached(path: Path, array: np.ndarray | bytes) -> None:
    """Atomically (temp file, rename): another run memory-mapping the file never sees it half
    written, and a full disk is one sentence that leaves no partial file (it was an internal
    error that left a 20 MB temp file on the full disk)."""
    if isinstance(array, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, array)
        array = buf.getvalue()
    write_file(path, array, "study cache", "run again")


def _store_labels(study: TrainStudy) -> np.ndarray:
    from medview.io.labels.catalog import done_studies, load_done_labels

    root = Path(study.store)
    done = next((d for d in done_studies(root) if d.series_key == study.series_key), None)
    if done is None:
        raise InvalidInputError(
            study.labels,
            f"of study {study.name} is no longer marked done; mark it done again or edit the split",
        )
    return load_done_labels(done, root)


def _open(study: TrainStudy, folder: Path, meta: dict) -> PreparedStudy:
    return PreparedStudy(
        study.key,
        study.name,
        np.load(folder / CT_FILE, mmap_mode="r"),
        np.load(folder / LABEL_FILE, mmap_mode="r"),
        tuple(float(v) for v in meta["spacing_mm"]),
        {int(k): int(v) for k, v in meta["counts"].items()},
        folder,
        tuple(tuple(float(x) for x in row) for row in meta.get("affine", ())),
    )


def label_counts(study: TrainStudy) -> tuple[dict[int, int], float | None]:
    """Voxels per label value in a study's label map (for the panel, before any mapping)
    and one voxel's volume in mL (None when the map's grid is unknown): the panel shows
    volumes, which a reader compares across studies of other slice thickness."""
    from medview.io.image_files import read_image

    if study.store:
        labels = _store_labels(study)
        affine = np.asarray(study.affine, float) if study.affine else None
    else:
        image = read_image(study.labels)
        labels, affine = np.asarray(image.array), np.asarray(image.affine, float)
    voxel_ml = (
        abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
        if affine is not None and affine.shape == (4, 4)
        else None
    )
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(n) for v, n in zip(values, counts, strict=True) if v}, voxel_ml or None


def studies_hash(studies: list[TrainStudy]) -> str:
    """One hash for a set of studies (order-free): what the card records of its data."""
    return hashlib.sha256("\n".join(sorted(s.key for s in studies)).encode()).hexdigest()[:16]

"""What a header scan found: StudyInfo / SeriesInfo records, and the pure geometry rules that
turn a bag of frames into ordered stacks with warnings carrying measured values (after 3D
Slicer's DICOMUtils.getSortedImageFiles: sort along the normal, never by file name or
InstanceNumber, and say what looks wrong instead of silently guessing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np

from medview.core import geometry

# Positions closer than this along the normal are "the same slice".
SAME_POSITION_MM = 0.01
# A spacing that deviates more than this fraction from the typical one is reported.
SPACING_TOLERANCE = 0.01
# Slice step more than this many degrees off the plane normal is a sheared (tilted) stack.
TILT_TOLERANCE_DEG = 0.5
# Orientation cosines that differ by less than this belong to the same stack.
ORIENTATION_TOLERANCE = 1e-3
# Never invent more blank slices than this many times the real ones to fill gaps.
MAX_FILL_RATIO = 1.0
# Slices placed on one regular grid may sit this far from their true position, in mm, at
# least; see position_error_limit_mm.
MIN_POSITION_ERROR_LIMIT_MM = 1.0


@dataclass(frozen=True)
class LoadWarning:
    code: str
    message: str


@dataclass(frozen=True)
class PatientInfo:
    name: str = ""
    id: str = ""
    birth_date: str = ""
    sex: str = ""
    age: str = ""


@dataclass(frozen=True)
class SourceRef:
    """Where the bytes of one file live: a path, or a member of a zip archive at `path`."""

    path: str
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path


@dataclass(frozen=True)
class PixelFormat:
    """How one file stores its pixels; shared by all frames of a multi-frame file."""

    transfer_syntax_uid: str
    rows: int
    cols: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int  # 0 unsigned, 1 signed
    photometric: str
    planar_configuration: int
    n_frames: int
    # Byte offset and length of native (uncompressed, not deflated) pixel data in the file,
    # so the loader can read it straight into the volume; None when it must be decoded.
    pixel_data_offset: int | None = None
    pixel_data_length: int | None = None
    has_modality_lut_sequence: bool = False
    float_pixels: bool = False  # FloatPixelData / DoubleFloatPixelData


@dataclass(frozen=True)
class FrameRef:
    """One 2D image: a single-frame file, or one frame of a multi-frame file."""

    source: SourceRef
    frame_index: int
    pixel: PixelFormat
    sop_instance_uid: str
    instance_number: int | None = None
    position_lps: tuple[float, float, float] | None = None
    orientation: tuple[float, float, float, float, float, float] | None = None
    pixel_spacing_row_col_mm: tuple[float, float] | None = None
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    slice_thickness_mm: float | None = None
    # second-level order for frames that share a position (echo, phase, b-value, time)
    temporal_key: tuple = ()


@dataclass
class SeriesInfo:
    study_instance_uid: str
    series_instance_uid: str
    modality: str = ""
    description: str = ""
    series_number: int | None = None
    frame_of_reference_uid: str = ""
    patient: PatientInfo = field(default_factory=PatientInfo)
    study_date: str = ""
    study_description: str = ""
    # one entry per output slice in order along the normal; None marks a blank slice that
    # fills a gap where slices are missing
    slices: list[FrameRef | None] = field(default_factory=list)
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    rows: int = 0
    cols: int = 0
    samples_per_pixel: int = 1
    photometric: str = "MONOCHROME2"
    windows: list[tuple[float, float]] = field(default_factory=list)
    units: str = ""
    transfer_syntaxes: list[str] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)
    stack_label: str = ""  # "stack 2 of 3" when one SeriesInstanceUID was split
    has_geometry: bool = True

    @property
    def frames(self) -> list[FrameRef]:
        return [f for f in self.slices if f is not None]

    @property
    def n_instances(self) -> int:
        return len({f.source for f in self.frames})

    @property
    def shape(self) -> tuple[int, ...]:
        base = (len(self.slices), self.rows, self.cols)
        return (*base, 3) if self.samples_per_pixel == 3 else base

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return geometry.spacing_from_affine(self.affine)

    @property
    def slice_normal(self) -> np.ndarray:
        return geometry.slice_normal(self.affine[:3, 2], self.affine[:3, 1])

    @property
    def key(self) -> str:
        """Identifies this stack among a scan's results (UID plus split label)."""
        return self.series_instance_uid + (f"#{self.stack_label}" if self.stack_label else "")


@dataclass
class StudyInfo:
    study_instance_uid: str
    study_date: str = ""
    study_time: str = ""
    description: str = ""
    accession_number: str = ""
    patient: PatientInfo = field(default_factory=PatientInfo)
    series: list[SeriesInfo] = field(default_factory=list)


@dataclass(frozen=True)
class NonImageObject:
    path: str
    modality: str
    sop_class_uid: str
    sop_class_name: str
    series_instance_uid: str = ""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class ScanResult:
    studies: list[StudyInfo] = field(default_factory=list)
    non_image_objects: list[NonImageObject] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)
    # files found in a folder that do not claim to be DICOM (README.txt, a label map, a
    # JSON): a quiet note, not an error; a file named on its own is skipped with the reason
    other_files: list[str] = field(default_factory=list)

    @property
    def series(self) -> list[SeriesInfo]:
        return [s for st in self.studies for s in st.series]

    def other_files_note(self, shown: int = 5) -> str:
        """'3 other files not read (README.txt, labels.nii.gz, lesions.json)', or ''."""
        n = len(self.other_files)
        if not n:
            return ""
        names = [PurePath(p.split("!")[-1]).name for p in self.other_files[:shown]]
        more = f" and {n - shown} more" if n > shown else ""
        return (
            f"{n} other file{'s' if n > 1 else ''} not read ({', '.join(names)}{more}): not DICOM"
        )

    def find_series(self, uid_or_key: str) -> SeriesInfo | None:
        for s in self.series:
            if uid_or_key in (s.key, s.series_instance_uid):
                return s
        return None


# ---------------------------------------------------------------------------------------
# Stacking rules


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def dedupe_by_sop(frames: Sequence[FrameRef]) -> tuple[list[FrameRef], list[LoadWarning]]:
    """Drop repeated copies of the same instance (same SOP Instance UID and frame), which
    appear when a study was exported twice into one folder."""
    seen: dict[tuple[str, int], FrameRef] = {}
    dupes: list[str] = []
    for f in frames:
        key = (f.sop_instance_uid, f.frame_index)
        if f.sop_instance_uid and key in seen:
            dupes.append(str(f.source))
            continue
        seen[key] = f
    warnings = []
    if dupes:
        warnings.append(
            LoadWarning(
                "duplicate_sop_instance",
                f"{len(dupes)} file(s) repeat an instance already loaded (same SOP Instance UID) "
                f"and were ignored, e.g. {dupes[0]}",
            )
        )
    return list(seen.values()), warnings


def _shape_key(f: FrameRef) -> tuple:
    orient = (
        tuple(round(v / ORIENTATION_TOLERANCE) for v in f.orientation) if f.orientation else None
    )
    spacing = (
        tuple(round(v, 4) for v in f.pixel_spacing_row_col_mm)
        if f.pixel_spacing_row_col_mm
        else None
    )
    return (f.pixel.rows, f.pixel.cols, f.pixel.samples_per_pixel, orient, spacing)


def split_by_shape(frames: Sequence[FrameRef]) -> list[list[FrameRef]]:
    """Group frames that can share one voxel grid: same size, orientation and pixel spacing.
    A localizer, a second orientation or a reformat inside one series becomes its own stack."""
    groups: dict[tuple, list[FrameRef]] = {}
    for f in frames:
        groups.setdefault(_shape_key(f), []).append(f)
    # biggest stack first, so the main acquisition is stack 1
    return sorted(groups.values(), key=len, reverse=True)


def plane_description(orientation: Sequence[float] | None) -> str:
    """'axial', 'sagittal' or 'coronal' by the plane's normal, with the tilt when the plane
    is more than a degree oblique ('coronal tilted 16°'), for warnings a reader can follow."""
    if orientation is None:
        return "no orientation"
    normal = np.abs(geometry.slice_normal(orientation[:3], orientation[3:]))
    axis = int(np.argmax(normal))
    name = ("sagittal", "coronal", "axial")[axis]
    tilt = float(np.degrees(np.arccos(min(1.0, float(normal[axis])))))
    return f"{name} tilted {_degrees(tilt)}" if tilt >= 1.0 else name


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def split_warning(
    groups: Sequence[Sequence[FrameRef]], first_stacks: Sequence[int], n_stacks: int
) -> LoadWarning:
    """The one warning for a series whose images cannot share a grid (split_by_shape):
    what differs (size, orientation, pixel spacing, colour) and each group's value, e.g.
    'different orientation (stack 1: axial, 1 image; stack 2: sagittal, 1 image)'.
    `first_stacks` is the stack number (from 1) each group's first stack gets."""

    def size(g: Sequence[FrameRef]) -> str:
        return f"{g[0].pixel.cols} x {g[0].pixel.rows} pixels"

    def spacing(g: Sequence[FrameRef]) -> str:
        sp = g[0].pixel_spacing_row_col_mm
        return f"{_fmt(sp[1])} x {_fmt(sp[0])} mm pixels" if sp else "no pixel spacing"

    def colour(g: Sequence[FrameRef]) -> str:
        return "colour" if g[0].pixel.samples_per_pixel == 3 else "grey"

    planes = [plane_description(g[0].orientation) for g in groups]
    if len(set(planes)) < len({_shape_key(g[0])[3] for g in groups}):
        # orientations that differ by less than a degree: say by how much
        base = groups[0][0].orientation
        planes = [
            p
            if k == 0 or g[0].orientation is None or base is None
            else f"{p}, {_degrees(_angle_deg(base, g[0].orientation))} from stack 1"
            for k, (p, g) in enumerate(zip(planes, groups, strict=True))
        ]
    aspects = {
        "size": [size(g) for g in groups],
        "orientation": planes,
        "pixel spacing": [spacing(g) for g in groups],
        "colour": [colour(g) for g in groups],
    }
    differing = [name for name, values in aspects.items() if len(set(values)) > 1]
    parts = []
    for k, g in enumerate(groups):
        what = ", ".join(aspects[name][k] for name in differing)
        parts.append(f"stack {first_stacks[k]}: {what + ', ' if what else ''}{_images(len(g))}")
    return LoadWarning(
        "split_series",
        f"one series holds images of different {' and '.join(differing) or 'geometry'} "
        f"({'; '.join(parts)}); shown as {n_stacks} stacks",
    )


def _degrees(angle: float) -> str:
    return f"{angle:.0f}°" if angle >= 1.0 else f"{angle:.2f}°"


def _angle_deg(a: Sequence[float], b: Sequence[float]) -> float:
    na = geometry.slice_normal(a[:3], a[3:])
    nb = geometry.slice_normal(b[:3], b[3:])
    return float(np.degrees(np.arccos(min(1.0, abs(float(na @ nb))))))


def _instance_order(f: FrameRef) -> tuple:
    return (f.instance_number if f.instance_number is not None else 0, f.frame_index, str(f.source))


@dataclass
class Stack:
    slices: list[FrameRef | None]
    affine: np.ndarray
    warnings: list[LoadWarning]
    has_geometry: bool


def _split_repeated_positions(
    frames: list[FrameRef], dist: np.ndarray
) -> tuple[list[list[FrameRef]], list[LoadWarning]]:
    """Frames that share positions: equal repeats everywhere (multi-echo, cardiac phases,
    b-values) become separate stacks; otherwise the first of each position is kept."""
    groups: list[list[int]] = []
    order = np.argsort(dist, kind="stable")
    for i in order:
        if groups and abs(dist[i] - dist[groups[-1][0]]) < SAME_POSITION_MM:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    counts = {len(g) for g in groups}
    if counts == {1}:
        return [frames], []
    if len(counts) == 1 and len(groups) > 1:
        m = counts.pop()
        ordered = [
            sorted((frames[i] for i in g), key=lambda f: (f.temporal_key, *_instance_order(f)))
            for g in groups
        ]
        stacks = [[g[k] for g in ordered] for k in range(m)]
        return stacks, [
            LoadWarning(
                "repeated_positions",
                f"every position holds {m} images (echoes, phases or time points); "
                f"shown as {m} separate stacks",
            )
        ]
    kept, dropped_positions = [], []
    for g in groups:
        g_sorted = sorted(g, key=lambda i: _instance_order(frames[i]))
        kept.append(frames[g_sorted[0]])
        if len(g) > 1:
            dropped_positions.append(float(dist[g[0]]))
    n_drop = len(frames) - len(kept)
    where = ", ".join(_fmt(d) for d in dropped_positions[:3])
    return [kept], [
        LoadWarning(
            "duplicate_position",
            f"{n_drop} image(s) share a slice position with another image (at {where} mm along "
            f"the normal); the first by instance number was kept",
        )
    ]


def build_stack(frames: Sequence[FrameRef]) -> list[Stack]:
    """Order frames of one shape group along the slice normal and measure the geometry.

    Returns one stack, or several when every position repeats. Gaps that are whole multiples
    of the typical spacing are filled with blank slices so every image sits at its true
    position (SimpleITK instead spreads the gap over all slices, misplacing them)."""
    frames = list(frames)
    with_geo = [f for f in frames if f.position_lps is not None and f.orientation is not None]
    spacing_rc = frames[0].pixel_spacing_row_col_mm
    if len(with_geo) < len(frames) or not frames:
        ordered = sorted(frames, key=_instance_order)
        rc = spacing_rc or (1.0, 1.0)
        # no orientation: DICOM's default axial plane (rows along L, columns along P), as
        # SimpleITK/GDCM assume, so an exported image is not turned on its side
        affine = geometry.affine_from_plane(
            (0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), rc, (0.0, 0.0, 1.0)
        )
        if frames[0].orientation and frames[0].position_lps:
            affine = geometry.affine_from_plane(
                frames[0].position_lps,
                frames[0].orientation[:3],
                frames[0].orientation[3:],
                rc,
                geometry.slice_normal(frames[0].orientation[:3], frames[0].orientation[3:])
                * (frames[0].slice_thickness_mm or 1.0),
            )
        warnings = []
        if len(frames) > 1 or not spacing_rc:
            what = (
                "image position or orientation"
                if spacing_rc
                else "image position, orientation or pixel spacing"
            )
            warnings.append(
                LoadWarning(
                    "missing_geometry",
                    f"{len(frames) - len(with_geo)} of {len(frames)} images have no {what}; "
                    f"ordered by instance number and shown with assumed 1 mm spacing where absent, "
                    f"so distances are not reliable",
                )
            )
        return [Stack(list(ordered), affine, warnings, False)]

    row_cos = np.asarray(frames[0].orientation[:3], float)
    col_cos = np.asarray(frames[0].orientation[3:], float)
    normal = geometry.slice_normal(row_cos, col_cos)
    pos = np.array([f.position_lps for f in frames], float)
    dist = pos @ normal
    stacks_frames, warnings = _split_repeated_positions(frames, dist)
    out = []
    for sf in stacks_frames:
        out.extend(
            _stack_geometry(sf, row_cos, col_cos, normal, spacing_rc or (1.0, 1.0), list(warnings))
        )
    return out


def position_error_limit_mm(step_mm: float) -> float:
    """How far a slice may sit from its true position on a regular grid before its series
    is shown as separate stacks instead of one volume: half the slice step, at least
    MIN_POSITION_ERROR_LIMIT_MM.

    Half a step is where a slice starts being drawn nearer to its neighbour's place than to
    its own: below it every image still lands in its own grid cell, and the error is within
    the slab the slice already stands for (a 5 mm slice shows anything within ±2.5 mm), so
    the volume adds no uncertainty a reader does not already have. Above it an MPR shows
    anatomy where it is not and a distance across slices is off by more than a slice. The
    1 mm floor keeps sub-millimetre series whole when their positions merely jitter (written
    with few decimals, table rounding), an error below what a caliper reading resolves."""
    return max(0.5 * abs(step_mm), MIN_POSITION_ERROR_LIMIT_MM)


def _fit_error(pos: np.ndarray) -> float:
    """Largest distance from a position to the regular grid through the first and last."""
    if len(pos) < 3:
        return 0.0
    k = np.arange(len(pos), dtype=float)
    fitted = pos[0] + np.outer(k, (pos[-1] - pos[0]) / (len(pos) - 1))
    return float(np.max(np.linalg.norm(fitted - pos, axis=1)))


def _regular_runs(pos: np.ndarray, diffs: np.ndarray) -> list[slice]:
    """Split positions ordered along the normal into runs that each fit one regular grid
    within position_error_limit_mm of their own step.

    Consecutive steps that agree form a segment; a slice between two segments (the end of
    one, the start of the next) goes to the longer one, so an odd outlier slice becomes a
    run of its own rather than pulling a regular run apart (Routine Brain: one slice 202.5
    mm away from three at 1.25 mm gives runs of 3 and 1)."""
    segments: list[tuple[int, int]] = []  # (first slice, last slice), inclusive
    i = 0
    while i < len(diffs):
        j = i + 1
        while (
            j < len(diffs)
            and abs(diffs[j] - diffs[i]) <= position_error_limit_mm(diffs[i])
            and _fit_error(pos[i : j + 2])
            <= position_error_limit_mm(float(np.linalg.norm(pos[j + 1] - pos[i])) / (j + 1 - i))
        ):
            j += 1
        segments.append((i, j))
        i = j
    owner = [-1] * len(pos)
    for k in sorted(range(len(segments)), key=lambda k: segments[k][0] - segments[k][1]):
        first, last = segments[k]
        for n in range(first, last + 1):
            if owner[n] < 0:
                owner[n] = k
    runs: list[slice] = []
    for n in range(len(pos)):
        if n == 0 or owner[n] != owner[n - 1]:
            runs.append(slice(n, n + 1))
        else:
            runs[-1] = slice(runs[-1].start, n + 1)
    return runs


def _split_irregular(
    frames: list[FrameRef],
    pos: np.ndarray,
    diffs: np.ndarray,
    err: float,
    row_cos: np.ndarray,
    col_cos: np.ndarray,
    normal: np.ndarray,
    spacing_rc: tuple[float, float],
    warnings: list[LoadWarning],
) -> list[Stack]:
    """A series whose regular grid would misplace slices by more than the limit: each run
    of regular spacing becomes its own stack at its true position (largest first), so no
    MPR or measurement across the gaps is off by the error."""
    runs = sorted(_regular_runs(pos, diffs), key=lambda r: r.stop - r.start, reverse=True)
    note = LoadWarning(
        "irregular_spacing_split",
        f"slice spacing varies from {_fmt(float(diffs.min()))} to {_fmt(float(diffs.max()))} "
        f"mm; one regular grid would place slices up to {_fmt(err)} mm from where they were "
        f"taken, so the {_images(len(frames))} are shown as {len(runs)} separate stacks at "
        f"their true positions",
    )
    out = []
    for run in runs:
        out.extend(
            _stack_geometry(
                frames[run], row_cos, col_cos, normal, spacing_rc, [*warnings, note], split=False
            )
        )
    return out


def _stack_geometry(
    frames: list[FrameRef],
    row_cos: np.ndarray,
    col_cos: np.ndarray,
    normal: np.ndarray,
    spacing_rc: tuple[float, float],
    warnings: list[LoadWarning],
    split: bool = True,
) -> list[Stack]:
    """One stack on a regular grid, or (with `split`, when that grid would misplace slices
    past position_error_limit_mm) several, each regular, from _split_irregular."""
    pos = np.array([f.position_lps for f in frames], float)
    dist = pos @ normal
    order = np.argsort(dist, kind="stable")
    frames = [frames[i] for i in order]
    pos, dist = pos[order], dist[order]
    n = len(frames)
    if n == 1:
        thick = frames[0].slice_thickness_mm or 1.0
        affine = geometry.affine_from_plane(pos[0], row_cos, col_cos, spacing_rc, normal * thick)
        return [Stack(list(frames), affine, warnings, True)]

    diffs = np.diff(dist)
    typical = float(np.median(diffs))
    slices: list[FrameRef | None] = [frames[0]]
    gap_msgs: list[str] = []
    n_filled = 0
    irregular = False
    for i, d in enumerate(diffs):
        ratio = d / typical
        steps = round(ratio)
        if steps >= 2 and abs(ratio - steps) < 0.1 and n_filled + steps - 1 <= MAX_FILL_RATIO * n:
            gap_msgs.append(
                f"slice gap of {_fmt(d)} mm between images {i + 1} and {i + 2}, "
                f"{_fmt(typical)} mm expected"
            )
            slices.extend([None] * (steps - 1))
            n_filled += steps - 1
        elif abs(d - typical) > max(SPACING_TOLERANCE * typical, SAME_POSITION_MM):
            irregular = True
        slices.append(frames[i + 1])
    if gap_msgs:
        more = f" (and {len(gap_msgs) - 1} more gaps)" if len(gap_msgs) > 1 else ""
        warnings.append(
            LoadWarning(
                "slice_gap",
                f"{gap_msgs[0]}{more}; {n_filled} blank slice(s) inserted so the "
                f"other slices keep their true positions",
            )
        )

    # Fit the slice step as a vector, which keeps a gantry tilt as shear.
    k = np.array([i for i, f in enumerate(slices) if f is not None], float)
    step = (pos[-1] - pos[0]) / (k[-1] - k[0])
    fitted = pos[0] + np.outer(k, step)
    err = float(np.max(np.linalg.norm(fitted - pos, axis=1)))
    if split and irregular and err > position_error_limit_mm(float(np.linalg.norm(step))):
        return _split_irregular(
            frames, pos, diffs, err, row_cos, col_cos, normal, spacing_rc, warnings
        )
    if irregular:
        lo, hi = float(diffs.min()), float(diffs.max())
        warnings.append(
            LoadWarning(
                "unequal_spacing",
                f"slice spacing varies from {_fmt(lo)} to {_fmt(hi)} mm "
                f"(typical {_fmt(typical)} mm); slices are placed on a regular grid with up to "
                f"{_fmt(err)} mm position error",
            )
        )
    affine = geometry.affine_from_plane(pos[0], row_cos, col_cos, spacing_rc, step)
    tilt = geometry.shear_angle_deg(affine)
    if tilt > TILT_TOLERANCE_DEG:
        warnings.append(
            LoadWarning(
                "gantry_tilt",
                f"slices are sheared by {_fmt(tilt)}° from the image normal (gantry tilt or "
                f"sheared geometry); the affine keeps the shear, so positions stay correct",
            )
        )
    return [Stack(slices, affine, warnings, True)]


def rescale_warning(frames: Sequence[FrameRef]) -> LoadWarning | None:
    """Say when the rescale changes from slice to slice (it is applied per slice anyway)."""
    pairs = {(f.rescale_slope, f.rescale_intercept) for f in frames}
    if len(pairs) <= 1:
        return None
    slopes = sorted({p[0] for p in pairs})
    inters = sorted({p[1] for p in pairs})
    return LoadWarning(
        "rescale_varies",
        f"rescale changes between slices (slope {_fmt(slopes[0])}..{_fmt(slopes[-1])}, "
        f"intercept {_fmt(inters[0])}..{_fmt(inters[-1])}); applied per slice",
    )

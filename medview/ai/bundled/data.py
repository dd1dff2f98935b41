"""Training and evaluation data for the bundled models: demo studies generated once into a
cache folder, and the patches and slice sequences drawn from them.

Generating a 300-slice demo study takes seconds and writes 150 MB of DICOM, so each seed is
rendered once through the public generator, read back through MedView's own DICOM loader (so
the models see exactly what a user's viewer sees), checked against the generator's ground
truth, and kept as plain .npy arrays that training memory-maps. The DICOM is then removed.

Sampling is seeded and lesion-centred: lesions are a few hundred voxels in a volume of 80
million, so a uniform sampler would almost never show one. Each segmentation patch is centred
on a lesion (every lesion as likely as any other, whatever its size), on a dense structure
inside the lung (vessels, which look like nodules on one slice), or anywhere in the body."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.core.errors import InvalidInputError
from medview.core.volume import Volume, VolumeMetadata

CT_FILE, LABEL_FILE, SMALL_FILE, LESIONS_FILE = "ct.npy", "labels.npy", "small.npy", "lesions.json"
SMALL_SIZE = 128  # slice-classifier 1.0 sees each 512² slice as 128² (4 x 4 means)


SMALL_MM = 10.0  # "small" for PatchSampler's lesion weights


def drop_near_lesions(mined: np.ndarray, labels: np.ndarray, margin_px: int) -> np.ndarray:
    """Mined mistakes (N, 3) without those within `margin_px` in-plane (and one slice) of a
    lesion: a voxel just outside a lesion's edge is the edge's uncertainty, not a false
    positive, and teaching the network that it is background shrinks every outline and
    loses small faint lesions (a quarter of lesion-seg 1.1's mined voxels lay there)."""
    from scipy import ndimage

    if not len(mined):
        return mined
    yy, xx = np.mgrid[-margin_px : margin_px + 1, -margin_px : margin_px + 1]
    disc = np.zeros((3, 2 * margin_px + 1, 2 * margin_px + 1), bool)
    disc[:, yy**2 + xx**2 <= margin_px**2] = True
    keep = np.ones(len(mined), bool)
    for z in np.unique(mined[:, 0]):
        lo, hi = max(int(z) - 1, 0), min(int(z) + 2, labels.shape[0])
        near = ndimage.binary_dilation(np.asarray(labels[lo:hi]) > 0, disc)[int(z) - lo]
        mine = mined[:, 0] == z
        keep[mine] = ~near[mined[mine, 1], mined[mine, 2]]
    return mined[keep]


def normalise(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip to [low, high] and scale to 0..1 as float32, as a model card's intensity says."""
    out = np.clip(hu.astype(np.float32), low, high)
    out -= np.float32(low)
    out *= np.float32(1.0 / (high - low))
    return out


def downsample(slices: np.ndarray, size: int = SMALL_SIZE) -> np.ndarray:
    """(N, H, W) -> (N, size, size) block means; H and W must be multiples of size."""
    n, h, w = slices.shape
    if h % size or w % size:
        raise InvalidInputError(
            None, f"slices of {h} x {w} cannot be reduced to {size} x {size} by whole blocks"
        )
    return slices.reshape(n, size, h // size, size, w // size).mean(axis=(2, 4))


@dataclass(frozen=True)
class CachedStudy:
    folder: Path
    seed: int
    ct: np.ndarray  # (S, 512, 512) int16 HU, memory-mapped, slice 0 inferior
    labels: np.ndarray  # (S, 512, 512) uint8: 1 lung nodule, 2 liver lesion
    meta: dict  # the generator's lesions.json

    @property
    def lesions(self) -> list[dict]:
        return self.meta["lesions"]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.meta["spacing_mm"])

    def volume(self) -> Volume:
        """The study as the viewer holds it (HU, LPS affine, modality CT), so evaluation runs
        the same inference and findings code as the app and `medview infer`."""
        sp = self.spacing_mm
        affine = np.eye(4)
        affine[:3, :3] = [[0.0, 0.0, sp[2]], [0.0, sp[1], 0.0], [sp[0], 0.0, 0.0]]
        affine[:3, 3] = self.meta["origin_lps_mm"]
        return Volume(
            self.ct, affine, VolumeMetadata(modality="CT", units="HU", source=str(self.folder))
        )

    def small(self, low: float, high: float, size: int = SMALL_SIZE) -> np.ndarray:
        """The study's slices normalised and reduced to size² by block means, cached beside
        the volume (small.npy for 128², small<size>.npy otherwise) and memory-mapped: 96
        studies at 256² are 4 GB."""
        path = self.folder / (SMALL_FILE if size == SMALL_SIZE else f"small{size}.npy")
        if not path.exists():
            out = np.empty((self.ct.shape[0], size, size), np.float16)
            for k in range(0, self.ct.shape[0], 32):
                out[k : k + 32] = downsample(normalise(self.ct[k : k + 32], low, high), size)
            tmp = path.with_name(path.stem + ".tmp.npy")
            np.save(tmp, out)
            tmp.replace(path)  # a stopped run leaves no half-written cache
        return np.load(path, mmap_mode="r")


def cache_study(root: Path, seed: int, site: str = "a", slices: int | None = None) -> CachedStudy:
    """Generate demo study `seed` into root/<site>-<seed> unless it is there already."""
    folder = Path(root) / (f"{site}-{seed}" + ("" if slices is None else f"-{slices}"))
    if not (folder / LESIONS_FILE).exists():
        _render(folder, seed, site, slices)
    return open_cached(folder, seed)


def open_cached(folder: Path, seed: int) -> CachedStudy:
    meta = json.loads((folder / LESIONS_FILE).read_text(encoding="utf-8"))
    return CachedStudy(
        folder,
        seed,
        np.load(folder / CT_FILE, mmap_mode="r"),
        np.load(folder / LABEL_FILE, mmap_mode="r"),
        meta,
    )


def _render(folder: Path, seed: int, site: str, slices: int | None) -> None:
    import SimpleITK as sitk

    from medview.demo import generate_demo_study
    from medview.io.open_volume import load_volume

    work = folder.with_name(folder.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    study = generate_demo_study(work, seed=seed, site=site, slices=slices)
    volume, _ = load_volume([study.series_dir])
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(study.labels_path))).astype(np.uint8)
    ct = np.ascontiguousarray(volume.array, dtype=np.int16)
    if ct.shape != labels.shape or volume.affine[2, 0] <= 0:
        raise InvalidInputError(
            str(work), "does not load as a volume with slice 0 inferior on the label map's grid"
        )
    meta = json.loads(study.lesions_json.read_text(encoding="utf-8"))
    _check_hu(ct, labels, meta, str(work))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / CT_FILE, ct)
    np.save(folder / LABEL_FILE, labels)
    (folder / LESIONS_FILE).write_text(json.dumps(meta), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)


def _check_hu(ct: np.ndarray, labels: np.ndarray, meta: dict, where: str) -> None:
    """The generator measured each class's mean HU from what it wrote: the loaded volume
    must give the same, or slices are flipped or misregistered."""
    for value in (1, 2):
        lesions = [les for les in meta["lesions"] if les["label_value"] == value]
        n = sum(les["n_voxels"] for les in lesions)
        if not n:
            continue
        expected = sum(les["mean_hu"] * les["n_voxels"] for les in lesions) / n
        got = float(ct[labels == value].mean())
        if abs(got - expected) > 1.0:
            raise InvalidInputError(
                where, f"reads back label {value} at {got:.1f} HU, {expected:.1f} HU expected"
            )


def lung_candidates(ct: np.ndarray, step: int = 4) -> np.ndarray:
    """(slice, row, col) of dense voxels (> -400 HU) whose surroundings are mostly lung:
    vessels and nodules, the hard negatives of nodule detection. Found on a coarse grid."""
    from scipy.ndimage import uniform_filter

    sub = ct[:, ::step, ::step].astype(np.float32)
    local = uniform_filter(sub, size=(1, 9, 9))
    hit = (sub > -400) & (local < -450)
    k, i, j = np.nonzero(hit)
    return np.stack([k, i * step, j * step], 1).astype(np.int32)


class PatchSampler:
    """Seeded 2.5D patches (context slices as channels) and their centre-slice labels.

    `mix` weighs where patches are centred: on a lesion, on a dense structure in the lung,
    anywhere in the body and, when `mined` is given (per study, voxels a previous model
    wrongly called lesion), on those mistakes. Every lesion is equally likely, unless
    `lesion_weights` (extra weight for lesions under SMALL_MM, extra for ground-glass ones)
    favours the small and faint ones the network misses most."""

    def __init__(
        self,
        studies: list[CachedStudy],
        patch: int,
        context: int,
        low: float,
        high: float,
        seed: int,
        mix: tuple[float, ...] = (0.5, 0.25, 0.25),
        mined: list[np.ndarray] | None = None,
        lesion_weights: tuple[float, float] | None = None,
    ) -> None:
        self.studies, self.patch, self.half = studies, patch, context // 2
        self.low, self.high, self.mix = low, high, np.asarray(mix) / sum(mix)
        self.rng = np.random.default_rng(seed)
        self.lesion_voxels = []  # per (study, lesion): voxel indices
        weights = []
        for s, st in enumerate(studies):
            for les in st.lesions:
                if les["n_voxels"]:
                    self.lesion_voxels.append((s, _lesion_voxels(st, les)))
                    small, faint = lesion_weights or (0.0, 0.0)
                    weights.append(
                        1.0
                        + small * (les["diameter_mm"] < SMALL_MM)
                        + faint * (les["kind"] == "ground_glass")
                    )
        self.lesion_p = None if lesion_weights is None else np.asarray(weights) / sum(weights)
        self.vessels = [lung_candidates(st.ct) for st in studies]
        self.mined = mined or [np.zeros((0, 3), np.int32)] * len(studies)
        self.mined_studies = [s for s, m in enumerate(self.mined) if len(m)]
        if len(self.mix) > 3 and not self.mined_studies:
            raise InvalidInputError(None, "mined patches were asked for but none were given")

    def centre(self) -> tuple[int, np.ndarray]:
        rng = self.rng
        pool = None
        if self.lesion_p is not None:  # lesion or not first, then which lesion, by weight
            if rng.random() < self.mix[0]:
                s, pool = self.lesion_voxels[rng.choice(len(self.lesion_p), p=self.lesion_p)]
                kind = -1
            else:
                rest = np.concatenate([[0.0], self.mix[1:] / self.mix[1:].sum()])
                kind = rng.choice(len(self.mix), p=rest)
        else:
            kind = rng.choice(len(self.mix), p=self.mix)
        if kind == 0 and self.lesion_voxels:
            s, pool = self.lesion_voxels[rng.integers(len(self.lesion_voxels))]
        elif kind == 3:
            s = self.mined_studies[rng.integers(len(self.mined_studies))]
            pool = self.mined[s]
        if pool is not None:
            c = pool[rng.integers(len(pool))].copy()
            c[1:] += rng.integers(-self.patch // 4, self.patch // 4 + 1, 2)
            return s, c
        s = int(rng.integers(len(self.studies)))
        if kind == 1 and len(self.vessels[s]):
            return s, self.vessels[s][rng.integers(len(self.vessels[s]))].copy()
        n, h, w = self.studies[s].ct.shape
        mr, mc = min(96, h // 4), min(64, w // 4)  # the body, not the air around it
        return s, np.array([rng.integers(n), rng.integers(mr, h - mr), rng.integers(mc, w - mc)])

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One augmented patch: (context, P, P) float32 and (P, P) int64 labels."""
        s, (k, i, j) = self.centre()
        st, p = self.studies[s], self.patch
        n, h, w = st.ct.shape
        i0 = int(np.clip(i - p // 2, 0, h - p))
        j0 = int(np.clip(j - p // 2, 0, w - p))
        ks = np.clip(np.arange(k - self.half, k + self.half + 1), 0, n - 1)
        x = normalise(st.ct[ks, i0 : i0 + p, j0 : j0 + p], self.low, self.high)
        y = st.labels[k, i0 : i0 + p, j0 : j0 + p].astype(np.int64)
        return augment(x, y, self.rng)


def augment(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Flips in-plane and along z, a small intensity gain and offset (normalised units)."""
    if rng.random() < 0.5:
        x, y = x[:, :, ::-1], y[:, ::-1]
    if rng.random() < 0.5:
        x, y = x[:, ::-1, :], y[::-1, :]
    if rng.random() < 0.5:
        x = x[::-1]
    x = x * np.float32(rng.uniform(0.97, 1.03)) + np.float32(rng.uniform(-0.01, 0.01))
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y)


def _lesion_voxels(st: CachedStudy, les: dict) -> np.ndarray:
    """The voxels of one lesion: its label value in a box around its centre."""
    sp = np.asarray(st.spacing_mm)
    origin = np.asarray(st.meta["origin_lps_mm"])
    centre = np.asarray(les["centre_lps_mm"])
    idx = np.round(
        [
            (centre[2] - origin[2]) / sp[0],
            (centre[1] - origin[1]) / sp[1],
            (centre[0] - origin[0]) / sp[2],
        ]
    ).astype(int)
    r = np.ceil(0.8 * les["diameter_mm"] / sp + 3).astype(int)
    lo = np.maximum(idx - r, 0)
    box = st.labels[lo[0] : idx[0] + r[0] + 1, lo[1] : idx[1] + r[1] + 1, lo[2] : idx[2] + r[2] + 1]
    vox = np.argwhere(box == les["label_value"]) + lo
    return vox.astype(np.int32) if len(vox) else idx[None].astype(np.int32)


class SequenceSampler:
    """Seeded runs of neighbouring slices reduced to size², whether each holds any lesion
    voxel, and a coarse lesion map per slice (grid x grid cells); half the runs are placed
    to include a lesion, the rest anywhere in the scan."""

    def __init__(
        self,
        studies: list[CachedStudy],
        lengths: tuple[int, int],
        low: float,
        high: float,
        seed: int,
        grid: int = 16,
        size: int = SMALL_SIZE,
    ) -> None:
        self.lengths = lengths
        self.rng = np.random.default_rng(seed)
        self.small = [st.small(low, high, size) for st in studies]
        self.maps = [coarse_maps(st.labels, grid) for st in studies]
        self.targets = [m.any(axis=(1, 2)) for m in self.maps]

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(size, L, 1, S, S) float32 slices, (size, L) int64 targets and (size, L, grid,
        grid) float32 maps, one length L per batch."""
        rng = self.rng
        n_len = int(rng.integers(self.lengths[0], self.lengths[1] + 1))
        xs, ys, ms = [], [], []
        for _ in range(size):
            s = int(rng.integers(len(self.small)))
            n, pos = len(self.targets[s]), np.flatnonzero(self.targets[s])
            if rng.random() < 0.5 and len(pos):
                start = int(pos[rng.integers(len(pos))]) - int(rng.integers(n_len))
            else:
                start = int(rng.integers(n - n_len + 1))
            start = int(np.clip(start, 0, n - n_len))
            x = self.small[s][start : start + n_len].astype(np.float32)
            m = self.maps[s][start : start + n_len].astype(np.float32)
            if rng.random() < 0.5:
                x, m = x[:, :, ::-1], m[:, :, ::-1]
            if rng.random() < 0.5:
                x, m = x[:, ::-1, :], m[:, ::-1, :]
            if rng.random() < 0.5:
                x, m = x[::-1], m[::-1]
            x, m = _shift(x, m, rng.integers(-2, 3, 2))
            # targets from the moved maps: a lesion moved out of the image no longer counts
            y = m.any(axis=(1, 2)).astype(np.int64)
            x = x * np.float32(rng.uniform(0.97, 1.03)) + np.float32(rng.uniform(-0.01, 0.01))
            xs.append(x[:, None])
            ys.append(y)
            ms.append(m)
        return tuple(np.ascontiguousarray(np.stack(a)) for a in (xs, ys, ms))


def _roll(a: np.ndarray, step: int, axis: int) -> np.ndarray:
    """Shift along `axis` by `step`, filling the uncovered edge with 0 (air)."""
    if not step:
        return a
    out = np.roll(a, step, axis=axis)
    edge = [slice(None)] * a.ndim
    edge[axis] = slice(0, step) if step > 0 else slice(step, None)
    out[tuple(edge)] = 0
    return out


def _shift(x: np.ndarray, maps: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move (L, H, W) slices and their (L, g, g) maps in-plane by whole map cells."""
    cell = x.shape[-1] // maps.shape[-1]
    for axis, n in zip((1, 2), cells, strict=True):
        x, maps = _roll(x, int(n) * cell, axis), _roll(maps, int(n), axis)
    return x, maps


def coarse_maps(labels: np.ndarray, grid: int) -> np.ndarray:
    """(S, grid, grid) bool: the cell holds at least one lesion voxel."""
    n, h, w = labels.shape
    out = np.empty((n, grid, grid), bool)
    for k in range(n):
        out[k] = labels[k].reshape(grid, h // grid, grid, w // grid).any(axis=(1, 3))
    return out


def slice_targets(labels: np.ndarray) -> np.ndarray:
    """(S,) bool: the slice holds at least one lesion voxel."""
    return np.array([bool(labels[k].any()) for k in range(labels.shape[0])])

"""nnU-Net v2 models: importing a trained model folder (dataset.json, plans.json,
fold_N/checkpoint_final.pth, as nnU-Net training leaves it) and running it through nnU-Net's
own predictor (nnUNetPredictor), with its own preprocessing, sliding window and resampling.

nnU-Net is an optional extra (`pip install 'medview[nnunet]'`); without it an import or a run
says so in one sentence.

Safety: nnU-Net's own loader unpickles a checkpoint in full, which can run code hidden in
the pickle, so MedView never calls it: the checkpoint is read here with weights_only=True and
the weights are handed to the predictor (manual_initialization). The network is built by
nnU-Net's trainer class from the plans; the plans name classes to import, so only
dynamic_network_architectures networks with torch.nn building blocks are accepted, and
trainers are looked up inside nnunetv2 only.

Axis order: nnU-Net works on arrays as SimpleITK reads them, (z, y, x) with spacing in that
order, and does not reorient. A MedView volume is (slice, row, col), which is SimpleITK's
order for the same series, so the study goes in as it is."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medview.ai.models import registry
from medview.ai.models.cards import ModelCard
from medview.core.errors import InvalidInputError, UnsupportedInputError
from medview.core.jobs import CancelToken, ProgressCallback, report
from medview.core.volume import Volume

INSTALL = "install MedView's nnU-Net extra to run it: pip install 'medview[nnunet]'"
CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_best.pth")
_NETWORK_PREFIX = "dynamic_network_architectures."
_IMPORT_PREFIX = "torch.nn."


def _require_nnunet(where: str) -> None:
    try:
        import nnunetv2  # noqa: F401
    except ModuleNotFoundError as exc:
        raise UnsupportedInputError(where, f"is an nnU-Net v2 model; {INSTALL}") from exc


def is_nnunet_folder(path: Path) -> bool:
    return path.is_dir() and (path / "dataset.json").is_file() and (path / "plans.json").is_file()


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInputError(
            str(path), "is missing; an nnU-Net model folder holds dataset.json and plans.json"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(str(path), f"cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(str(path), "is not a JSON object")
    return data


def read_checkpoint(data: bytes, where: str) -> dict[str, Any]:
    """A checkpoint's contents, read with weights_only=True (numpy scalars allowed, as the
    training log holds them)."""
    safe = [np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]
    scalar = getattr(getattr(np, "_core", np), "multiarray", None)
    if scalar is not None and hasattr(scalar, "scalar"):
        safe.append(scalar.scalar)
    try:
        with torch.serialization.safe_globals(safe):
            ckpt = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise InvalidInputError(
            where, f"is not a checkpoint readable without running code ({line}); refused"
        ) from exc
    if (
        not isinstance(ckpt, dict)
        or not isinstance(ckpt.get("network_weights"), dict)
        or not isinstance(ckpt.get("trainer_name"), str)
        or not isinstance((ckpt.get("init_args") or {}).get("configuration"), str)
    ):
        raise InvalidInputError(
            where, "is not an nnU-Net v2 checkpoint (network_weights, trainer_name, init_args)"
        )
    return ckpt


def _check_plans(plans: dict[str, Any], configuration: str, where: str) -> None:
    """Only networks from dynamic_network_architectures built of torch.nn blocks."""
    conf = (plans.get("configurations") or {}).get(configuration)
    if not isinstance(conf, dict):
        raise InvalidInputError(
            where, f"has no configuration {configuration!r}, which the checkpoint was trained with"
        )
    arch = conf.get("architecture") or {}
    name = str(arch.get("network_class_name", ""))
    if not name.startswith(_NETWORK_PREFIX):
        raise UnsupportedInputError(
            where,
            f"names the network {name!r}; MedView runs nnU-Net "
            f"networks from dynamic_network_architectures",
        )
    kwargs = arch.get("arch_kwargs") or {}
    for key in arch.get("_kw_requires_import") or ():
        value = kwargs.get(key)
        if value is not None and not str(value).startswith(_IMPORT_PREFIX):
            raise UnsupportedInputError(
                where,
                f"has the network argument {key}={value!r}; only torch.nn classes are imported",
            )


def _labels(dataset: dict[str, Any], where: str) -> list[tuple[int, str]]:
    raw = dataset.get("labels")
    if not isinstance(raw, dict):
        raise InvalidInputError(where, "has no 'labels' mapping")
    out = []
    for name, value in raw.items():
        if isinstance(value, (list, tuple)):
            raise UnsupportedInputError(
                where,
                "is a region-based model (overlapping labels); MedView runs one label per voxel",
            )
        if int(value) > 0:
            out.append((int(value), str(name)))
    if not out or sorted(v for v, _ in out) != list(range(1, len(out) + 1)):
        raise InvalidInputError(where, "needs labels numbered 1, 2, ... after background 0")
    return sorted(out)


def import_nnunet(
    path: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    label_names: dict[int, str] | None = None,
    provenance: dict[str, Any] | None = None,
) -> registry.ModelEntry:
    """Import an nnU-Net v2 model folder as a new version (all folds found). `label_names`
    (value: name, for every label of dataset.json) and `provenance` come from a tool that
    ships the model (runtime.totalseg_models)."""
    from medview.ai.runtime.bundle_import import install, label_code
    from medview.core.labels import default_colour

    source = Path(path)
    where = str(source)
    _require_nnunet(where)
    dataset, plans = _json(source / "dataset.json"), _json(source / "plans.json")
    folds: dict[str, tuple[bytes, dict]] = {}
    for fold_dir in sorted(source.glob("fold_*")):
        ck = next((fold_dir / c for c in CHECKPOINTS if (fold_dir / c).is_file()), None)
        if ck is not None:
            data = ck.read_bytes()
            folds[fold_dir.name.removeprefix("fold_")] = (data, read_checkpoint(data, str(ck)))
    if not folds:
        raise InvalidInputError(
            where, "has no fold_N/checkpoint_final.pth (or checkpoint_best.pth)"
        )
    first = next(iter(folds.values()))[1]
    configuration = first["init_args"]["configuration"]
    _check_plans(plans, configuration, str(source / "plans.json"))
    labels = _labels(dataset, str(source / "dataset.json"))
    if label_names is not None:
        if sorted(label_names) != [v for v, _ in labels]:
            raise InvalidInputError(
                str(source / "dataset.json"),
                f"has labels {[v for v, _ in labels]}, not the {len(label_names)} its "
                f"provider names",
            )
        labels = [(v, label_names[v]) for v, _ in labels]
    channels = dataset.get("channel_names") or dataset.get("modality") or {}
    if len(channels) != 1:
        raise UnsupportedInputError(
            where, f"takes {len(channels)} input channels; MedView gives it one series"
        )
    modality = str(next(iter(channels.values()))).upper()
    files = {f"checkpoint_fold{k}.pth": v[0] for k, v in folds.items()}
    first_file = next(iter(files))
    card = {
        "name": name or plans.get("dataset_name", source.parent.name).lower().replace("_", "-"),
        "version": version or "1.0",
        "task": "segmentation",
        "modality": "CT" if modality == "CT" else "MR",  # nnU-Net: CT, else z-scored
        "labels": [
            {
                "value": v,
                "name": n,
                "colour": list(default_colour(v)),
                "code": list(label_code(n, v)),
            }
            for v, n in labels
        ],
        "intensity": {"low": 0, "high": 1},  # nnU-Net normalises by its plans
        "architecture": "nnunet",
        "weights_format": "nnunet",
        "weights_file": first_file,
        "weights_sha256": hashlib.sha256(files[first_file]).hexdigest(),
        "architecture_args": {
            "configuration": configuration,
            "trainer": first["trainer_name"],
            "folds": {
                k: {"file": f"checkpoint_fold{k}.pth", "sha256": hashlib.sha256(v[0]).hexdigest()}
                for k, v in folds.items()
            },
            "outputs": "probabilities",
        },
        "context_slices": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "description": str(dataset.get("description", ""))[:2000],
        "training_data": str(dataset.get("reference", ""))[:500],
        "provenance": {
            "kind": "nnunet-v2",
            "source": source.name,
            "dataset": plans.get("dataset_name", ""),
            "plans": plans.get("plans_name", ""),
            "folds": sorted(folds),
            **(provenance or {}),
        },
        "licence": str(dataset.get("licence", dataset.get("license", "")))[:20000],
        "claims": {},
    }

    def fill(folder: Path) -> None:
        for file_name, data in files.items():
            (folder / file_name).write_bytes(data)
        for json_name in ("dataset.json", "plans.json"):
            shutil.copy(source / json_name, folder / json_name)

    def validate(folder: Path, _card: ModelCard) -> None:
        """The network nnU-Net builds from the plans takes every fold's weights."""
        from medview.ai.runtime.loading import load_model

        model = load_model(folder, "cpu", reuse=False)
        for params in model.parameters:
            try:
                model.predictor.network.load_state_dict(params)
            except RuntimeError as exc:
                raise InvalidInputError(
                    None,
                    f"has weights that do not fit the network its "
                    f"plans describe ({str(exc)[:160]})",
                ) from exc

    return install(fill, card, where, validate)


class NnunetModel:
    """nnUNetPredictor set up from a MedView model folder, on one device."""

    logits = False

    def __init__(
        self, card: ModelCard, folder: Path, where: str, data: bytes, device: torch.device
    ) -> None:
        _require_nnunet(where)
        self.card, self.folder, self.where = card, folder, where
        args = card.architecture_args
        self.parameters = []
        for fold in args.get("folds", {}).values():
            path = folder / str(fold["file"])
            raw = data if path.name == card.weights_file else path.read_bytes()
            if hashlib.sha256(raw).hexdigest() != fold["sha256"]:
                raise InvalidInputError(str(path), "does not match the sha256 in its card; refused")
            self.parameters.append(read_checkpoint(raw, str(path))["network_weights"])
        self.dataset = _json(folder / "dataset.json")
        self.plans = _json(folder / "plans.json")
        _check_plans(self.plans, str(args["configuration"]), str(folder / "plans.json"))
        self.to(device)

    def to(self, device: torch.device | str) -> NnunetModel:
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
        from nnunetv2.utilities.label_handling.label_handling import (
            determine_num_input_channels,
        )
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        self.device = self.requested = torch.device(device)
        cuda = self.device.type == "cuda"
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its CPU notice
            predictor = nnUNetPredictor(
                tile_step_size=0.5,
                use_gaussian=True,
                use_mirroring=cuda,
                perform_everything_on_device=cuda,
                device=self.device,
                allow_tqdm=False,
            )
        plans = PlansManager(self.plans)
        conf = plans.get_configuration(str(self.card.architecture_args["configuration"]))
        import nnunetv2

        trainer = recursive_find_trainer_class_by_name(str(self.card.architecture_args["trainer"]))
        if trainer is None or not trainer.__module__.startswith(nnunetv2.__name__):
            raise UnsupportedInputError(self.where, "names a trainer nnunetv2 does not have")
        network = trainer.build_network_architecture(
            plans,
            conf,
            determine_num_input_channels(plans, conf, self.dataset),
            plans.get_label_manager(self.dataset).num_segmentation_heads,
            enable_deep_supervision=False,
        )
        network.load_state_dict(self.parameters[0])
        predictor.manual_initialization(
            network,
            plans,
            conf,
            self.parameters,
            self.dataset,
            str(self.card.architecture_args["trainer"]),
            None,
        )
        self.predictor = predictor
        return self

    def windows(self, shape: tuple[int, int, int], spacing: tuple[float, ...]) -> int:
        """Network calls nnU-Net makes for a study of this shape and spacing."""
        from nnunetv2.inference.sliding_window_prediction import (
            compute_steps_for_sliding_window,
        )

        conf = self.predictor.configuration_manager
        order = self.predictor.plans_manager.transpose_forward
        size = [max(1, round(shape[i] * spacing[i] / conf.spacing[j])) for j, i in enumerate(order)]
        patch = [max(p, 1) for p in conf.patch_size]
        steps = compute_steps_for_sliding_window(
            [max(s, p) for s, p in zip(size, patch, strict=True)], patch, 0.5
        )
        n = int(np.prod([len(s) for s in steps])) * len(self.parameters)
        mirror = self.predictor.allowed_mirroring_axes if self.predictor.use_mirroring else ()
        return n * 2 ** len(mirror or ())

    def patch_slices(self, spacing: tuple[float, ...]) -> int:
        """Study slices one patch spans along the study's slice axis (axis 0)."""
        conf = self.predictor.configuration_manager
        j = list(self.predictor.plans_manager.transpose_forward).index(0)
        return max(1, int(np.ceil(conf.patch_size[j] * conf.spacing[j] / spacing[0])))


def segment_nnunet(
    volume: Volume,
    model: NnunetModel,
    *,
    store: Callable[[int, np.ndarray], None],
    warnings: list[str],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    focus: int | None = None,
    on_partial: Callable[[tuple[int, int]], None] | None = None,
) -> dict[str, float]:
    """Run nnU-Net's predictor on the study; probabilities come back on the study's grid
    (nnU-Net resamples them itself) and go to `store` slab by slab.

    With `focus` (the slice the reader looks at), nnU-Net's predictor first runs on a crop
    of the study around it (`focus_slab`: at least one patch deep along the slices), whose
    middle slices go to `store` and `on_partial`; then on the whole study, whose result
    replaces them, so the final result is nnU-Net's own for the whole volume. The crop costs
    its share of a whole run again."""
    import time

    slab = focus_slab(model, volume, focus)
    shapes = [volume.shape]
    if slab is not None:
        shapes.append((slab[0][1] - slab[0][0], *volume.shape[1:]))
    total = sum(model.windows(shape, volume.spacing_mm) for shape in shapes)
    done = [0]

    def each_window(_module: Any, _inputs: Any) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        done[0] += 1
        report(
            progress,
            min(0.97, 0.97 * done[0] / max(total, 1)),
            f"{model.card.ref}: window {min(done[0], total)} of {total}",
        )

    import tqdm

    tqdm.tqdm.monitor_interval = 0  # nnU-Net's progress bars would leave a monitor thread
    timings = {"predict": 0.0, "postprocess": 0.0}
    hook = model.predictor.network.register_forward_pre_hook(each_window)
    try:
        if slab is not None:
            (run0, run1), (keep0, keep1) = slab
            t0 = time.perf_counter()
            probs = _predict(model, volume.array[run0:run1], volume.spacing_mm)
            t1 = time.perf_counter()
            _store(store, probs[:, keep0 - run0 : keep1 - run0], keep0)
            timings["predict"] += t1 - t0
            timings["postprocess"] += time.perf_counter() - t1
            if on_partial is not None:
                on_partial((keep0, keep1))
        t0 = time.perf_counter()
        probs = _predict(model, volume.array, volume.spacing_mm)
    finally:
        hook.remove()
    t1 = time.perf_counter()
    _store(store, probs, 0)
    timings["predict"] += t1 - t0
    timings["postprocess"] += time.perf_counter() - t1
    return timings


def focus_slab(
    model: NnunetModel, volume: Volume, focus: int | None
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """((run from, run to), (kept from, kept to)) in study slices: the slices around
    `focus` (FOCUS_HALF either side) are kept, run with half a patch of context either side
    and at least one patch deep (shifted inwards at the study's ends); None without a focus,
    or when the crop would be the whole study."""
    if focus is None:
        return None
    from medview.ai.runtime.inference import FOCUS_HALF

    s = volume.shape[0]
    k = min(max(int(focus), 0), s - 1)
    keep = (max(0, k - FOCUS_HALF), min(s, k + FOCUS_HALF + 1))
    patch = model.patch_slices(volume.spacing_mm)
    margin = -(-patch // 2)
    depth = max(keep[1] - keep[0] + 2 * margin, patch)
    start = max(0, min(keep[0] - margin, s - depth))
    run = (start, min(s, start + depth))
    return None if run == (0, s) else (run, keep)


def _predict(model: NnunetModel, array: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """nnU-Net's class probabilities (K, slice, row, col) for a (slice, row, col) array."""
    with contextlib.redirect_stdout(io.StringIO()):
        _, probs = model.predictor.predict_single_npy_array(
            array.astype(np.float32)[None], {"spacing": list(spacing)}, None, None, True
        )
    return np.asarray(probs, np.float32)


def _store(store: Callable[[int, np.ndarray], None], probs: np.ndarray, k0: int) -> None:
    """(K, n, R, C) probabilities of study slices k0..k0+n-1 to `store`, 8 slices a call."""
    for i in range(0, probs.shape[1], 8):
        store(k0 + i, np.ascontiguousarray(probs[:, i : i + 8].transpose(1, 0, 2, 3)))

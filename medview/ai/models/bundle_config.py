"""Reading a MONAI bundle (the Model Zoo layout: configs/metadata.json, configs/inference.json
or .yaml, models/model.pt or model.ts) WITHOUT running it, and saying what it would run.

A bundle's config is a program: `_target_` names classes to instantiate and `$` strings are
Python expressions evaluated by monai.bundle.ConfigParser. Nothing here evaluates or
instantiates anything. `@id` references are followed to the literal values they name; the
four parts MedView needs (network_def, preprocessing, inferer, postprocessing) are then
matched against allow-lists of MONAI classes with literal arguments. When everything needed
is understood, MedView runs the bundle with its own 3D runner (runtime.sliding3d) and only
loads the weights; otherwise `BundlePlan.needs_code` says, one line per part, what would
have to run, and the bundle is imported only with the reader's consent.

The rest of a zoo config (device, datalist, dataset, evaluator, handlers, run...) is
plumbing for `python -m monai.bundle run`; MedView does its own and never reads it. Torch-free,
so the import dialog describes a bundle at once."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.core.errors import InvalidInputError, UnsupportedInputError

CONFIG_NAMES = ("inference.json", "inference.yaml", "inference.yml")
WEIGHT_NAMES = ("model.pt", "model.ts")
LICENCE_NAMES = (
    "LICENSE",
    "LICENSE.txt",
    "license.txt",
    "docs/license.txt",
    "docs/data_license.txt",
    "data_license.txt",
)
MAX_ZIP_BYTES = 8 << 30  # a zoo bundle is at most a few GB unpacked
# monai.networks.nets classes MedView builds (cards.ARCHITECTURES names them "monai.X")
NETWORKS = (
    "UNet",
    "BasicUNet",
    "SegResNet",
    "UNETR",
    "SwinUNETR",
    "AttentionUnet",
    "VNet",
    "DynUNet",
)
# transforms that only move data around: MedView does their job itself, their arguments
# (often `@device` or output folders) are not read, let alone evaluated
STRUCTURAL = (
    "LoadImaged",
    "LoadImage",
    "EnsureChannelFirstd",
    "EnsureChannelFirst",
    "EnsureTyped",
    "EnsureType",
    "ToTensord",
    "ToTensor",
    "SaveImaged",
    "SaveImage",
    "Invertd",
    "CopyItemsd",
    "ToDeviced",
)
_PREFIXES = ("monai.networks.nets.", "monai.transforms.", "monai.inferers.", "monai.")
_REF = re.compile(r"^@([A-Za-z0-9_#\-]+)$")


@dataclass
class BundlePlan:
    """What a bundle would run, as far as it can be read without running it."""

    root: Path
    metadata: dict[str, Any]
    config_file: Path
    weights_file: Path | None
    network: str = ""  # a NETWORKS name, or "" when not understood
    network_args: dict[str, Any] = field(default_factory=dict)
    volume3d: dict[str, Any] = field(default_factory=dict)  # cards.Volume3D fields
    intensity: tuple[float, float] = (0.0, 1.0)
    labels: list[tuple[int, str]] = field(default_factory=list)
    modality: str = ""
    description: list[str] = field(default_factory=list)  # what would run, line by line
    needs_code: list[str] = field(default_factory=list)  # why MedView cannot run it alone
    not_applied: list[str] = field(default_factory=list)  # transforms MedView leaves out
    unsupported: list[str] = field(default_factory=list)  # what MedView cannot run at all
    config_keys: tuple[str, ...] = ()

    @property
    def runs_without_code(self) -> bool:
        return not self.needs_code and not self.unsupported


# ---------------------------------------------------------------------------------------
# Files


def find_root(folder: Path, where: str) -> Path:
    """The folder holding configs/metadata.json: `folder` itself or its only subfolder (a
    zoo zip holds one top folder named after the bundle)."""
    if (folder / "configs" / "metadata.json").is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))]
    if len(subs) == 1 and (subs[0] / "configs" / "metadata.json").is_file():
        return subs[0]
    raise InvalidInputError(
        where, "is not a MONAI bundle: no configs/metadata.json (the Model Zoo layout)"
    )


def extract_zip(path: Path, dest: Path) -> Path:
    """Unpack a bundle zip into `dest` (a staging folder), refusing members that would land
    outside it, links, and archives that unpack to more than MAX_ZIP_BYTES."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise InvalidInputError(where, "unpacks to more than 8 GB; refused")
            for m in members:
                target = (dest / m.filename).resolve()
                link = (m.external_attr >> 16) & 0o170000 == 0o120000
                if link or not target.is_relative_to(dest.resolve()):
                    raise InvalidInputError(
                        where,
                        f"holds {m.filename!r}, which would be written outside the bundle; refused",
                    )
            archive.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise InvalidInputError(where, "is not a readable zip file") from exc
    except OSError as exc:
        raise InvalidInputError(where, f"cannot be unpacked ({exc.strerror or exc})") from exc
    return find_root(dest, where)


def _read_structured(path: Path) -> Any:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(where, f"cannot be read ({exc})") from exc
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                where, f"is not valid JSON (line {exc.lineno}: {exc.msg})"
            ) from exc
    try:
        import yaml
    except ModuleNotFoundError as exc:
        raise UnsupportedInputError(
            where, "is YAML; install PyYAML (pip install pyyaml) to read it"
        ) from exc
    try:  # safe_load builds plain data only, never Python objects
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(where, f"is not valid YAML ({str(exc).splitlines()[0]})") from exc


def read_licence(root: Path) -> str:
    for name in LICENCE_NAMES:
        path = root / name
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8", errors="replace")[:20000]
            except OSError:
                continue
    return ""


# ---------------------------------------------------------------------------------------
# Static reading of the config


class _Config:
    """The config with `@id` references followed (never `$` or `%`)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, ref: str) -> Any:
        node: Any = self.data
        for part in ref.split("#"):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return _Missing(ref)
        return node

    def resolve(self, value: Any, depth: int = 0) -> Any:
        """`value` with every whole-string `@id` replaced by what it names (recursively);
        `$` and `%` strings are left as they are, for `code_in` to find."""
        if depth > 20:
            return _Missing("a reference cycle")
        if isinstance(value, str):
            m = _REF.match(value)
            return self.resolve(self.get(m.group(1)), depth + 1) if m else value
        if isinstance(value, list):
            return [self.resolve(v, depth + 1) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, depth + 1) for k, v in value.items()}
        return value


@dataclass(frozen=True)
class _Missing:
    ref: str


def code_in(value: Any) -> str:
    """The first thing in `value` that is not plain data ('' when it is all literal): a `$`
    expression, a `%` or unresolved `@` reference, a `_target_` component, a `_mode_`."""
    if isinstance(value, _Missing):
        return f"a reference to {value.ref!r}, which the config does not define"
    if isinstance(value, str):
        if value.startswith("$"):
            return f"the Python expression {value[:60]!r}"
        if value.startswith(("%", "@")):
            return f"the reference {value[:60]!r}"
        return ""
    if isinstance(value, list):
        return next((c for c in map(code_in, value) if c), "")
    if isinstance(value, dict):
        if "_target_" in value or "_mode_" in value:
            return f"the component {str(value.get('_target_', '?'))[:60]!r}"
        return next((c for c in map(code_in, value.values()) if c), "")
    return ""


def _class_name(target: Any) -> str:
    if not isinstance(target, str) or target.startswith(("$", "@", "%")):
        return ""
    for prefix in _PREFIXES:
        if target.startswith(prefix):
            target = target[len(prefix) :]
            target = target.rsplit(".", 1)[-1] if target.count(".") <= 1 else ""
            break
    return target if "." not in target else ""


def _args(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_")}


def _disabled(item: dict[str, Any]) -> bool:
    return item.get("_disabled_") in (True, "true", "True")


def _transforms(cfg: _Config, key: str, plan: BundlePlan) -> list[tuple[str, dict]]:
    """The transforms of a Compose (or a plain list) as (class name, literal-resolved item);
    a part that is not a literal list of components goes into needs_code."""
    raw = cfg.resolve(cfg.get(key))
    if isinstance(raw, _Missing):
        plan.unsupported.append(f"the config has no '{key}'")
        return []
    if isinstance(raw, dict) and _class_name(raw.get("_target_")) == "Compose":
        raw = raw.get("transforms")
    if not isinstance(raw, list):
        plan.needs_code.append(f"'{key}' is {code_in(raw) or 'not a list of transforms'}")
        return []
    out = []
    for item in raw:
        name = _class_name(item.get("_target_")) if isinstance(item, dict) else ""
        if not name:
            plan.needs_code.append(f"'{key}' holds {code_in(item) or repr(item)[:60]}")
            continue
        if not _disabled(item):
            out.append((name, item))
    return out


def _literal(plan: BundlePlan, where: str, item: dict, *names: str) -> dict[str, Any] | None:
    """The named arguments of a transform, when they are all plain data."""
    values = {n: item[n] for n in names if n in item}
    code = code_in(values)
    if code:
        plan.needs_code.append(f"{where} computes an argument with {code}")
        return None
    return values


def _preprocessing(cfg: _Config, plan: BundlePlan) -> None:
    v3 = plan.volume3d
    for name, item in _transforms(cfg, "preprocessing", plan):
        where = f"preprocessing {name}"
        if name in STRUCTURAL:
            plan.description.append(f"{name}: done by MedView itself")
        elif name == "Orientationd":
            a = _literal(plan, where, item, "axcodes")
            if a is not None:
                v3["axcodes"] = str(a.get("axcodes", "RAS"))
                plan.description.append(f"Orientationd: axes turned to {v3['axcodes']}")
        elif name == "Spacingd":
            a = _literal(plan, where, item, "pixdim")
            if a is not None:
                pix = a.get("pixdim")
                pix = [pix] * 3 if isinstance(pix, (int, float)) else pix
                if (
                    not isinstance(pix, list)
                    or len(pix) != 3
                    or not all(isinstance(p, (int, float)) and p > 0 for p in pix)
                ):
                    plan.unsupported.append(f"{where} has pixdim {pix!r}, not three sizes")
                else:
                    v3["spacing_mm"] = [float(p) for p in pix]
                    plan.description.append(f"Spacingd: resampled to {pix} mm")
        elif name == "ScaleIntensityRanged":
            a = _literal(plan, where, item, "a_min", "a_max", "b_min", "b_max", "clip")
            if a is not None:
                plan.intensity = (float(a.get("a_min", 0)), float(a.get("a_max", 1)))
                v3.update(
                    normalise="range",
                    out_low=float(a.get("b_min", 0) or 0),
                    out_high=float(a.get("b_max", 1) if a.get("b_max") is not None else 1),
                    clip=bool(a.get("clip", False)),
                )
                plan.description.append(
                    f"ScaleIntensityRanged: {plan.intensity[0]:g}.."
                    f"{plan.intensity[1]:g} to {v3['out_low']:g}.."
                    f"{v3['out_high']:g}"
                )
        elif name == "NormalizeIntensityd":
            a = _literal(plan, where, item, "nonzero", "subtrahend", "divisor")
            if a is not None:
                if a.get("subtrahend") is not None or a.get("divisor") is not None:
                    plan.unsupported.append(f"{where} uses a fixed subtrahend or divisor")
                v3.update(normalise="zscore", nonzero=bool(a.get("nonzero", False)))
                plan.description.append("NormalizeIntensityd: zero mean, unit variance")
        elif name == "CropForegroundd":
            plan.description.append("CropForegroundd: not needed, MedView runs the whole volume")
        else:
            plan.needs_code.append(
                f"preprocessing uses {name}, which MedView does not apply itself"
            )
            plan.not_applied.append(name)


def _postprocessing(cfg: _Config, plan: BundlePlan) -> None:
    softmax = argmax = False
    for name, item in _transforms(cfg, "postprocessing", plan):
        where = f"postprocessing {name}"
        if name in STRUCTURAL:
            plan.description.append(f"{name}: done by MedView itself")
        elif name == "Activationsd":
            a = _literal(plan, where, item, "softmax", "sigmoid")
            if a is not None:
                if a.get("sigmoid"):
                    plan.unsupported.append(
                        "the bundle ends in a sigmoid (overlapping "
                        "labels); MedView runs softmax models"
                    )
                softmax = softmax or bool(a.get("softmax"))
        elif name == "AsDiscreted":
            a = _literal(plan, where, item, "argmax", "threshold", "to_onehot")
            if a is not None:
                if a.get("threshold") is not None:
                    plan.unsupported.append(
                        "the bundle thresholds each channel; MedView runs softmax models"
                    )
                argmax = argmax or bool(a.get("argmax"))
        else:
            plan.needs_code.append(
                f"postprocessing uses {name}, which MedView does not apply itself"
            )
            plan.not_applied.append(name)
    plan.description.append(
        "Softmax over the classes, most probable label per voxel"
        + ("" if softmax or argmax else " (the bundle's output is read as logits)")
    )


def _inferer(cfg: _Config, plan: BundlePlan) -> None:
    raw = cfg.resolve(cfg.get("inferer"))
    name = _class_name(raw.get("_target_")) if isinstance(raw, dict) else ""
    if name != "SlidingWindowInferer":
        plan.unsupported.append(
            f"the inferer is {name or code_in(raw) or 'missing'}; "
            f"MedView runs bundles with a SlidingWindowInferer"
        )
        return
    a = _literal(
        plan, "the SlidingWindowInferer", raw, "roi_size", "sw_batch_size", "overlap", "mode"
    )
    if a is None:
        return
    roi = a.get("roi_size")
    if (
        not isinstance(roi, list)
        or len(roi) != 3
        or not all(isinstance(r, int) and r > 0 for r in roi)
    ):
        plan.unsupported.append(
            f"the SlidingWindowInferer's roi_size {roi!r} is not three sizes (a 3D model)"
        )
        return
    plan.volume3d.update(
        roi_size=roi,
        sw_batch_size=int(a.get("sw_batch_size", 1)),
        overlap=float(a.get("overlap", 0.25)),
        blend=str(a.get("mode", "constant")),
    )
    plan.description.append(
        f"SlidingWindowInferer: windows {roi}, overlap "
        f"{plan.volume3d['overlap']:g}, {plan.volume3d['blend']} blending"
    )


def _network(cfg: _Config, plan: BundlePlan) -> None:
    key = "network_def" if isinstance(cfg.data.get("network_def"), dict) else "network"
    raw = cfg.resolve(cfg.get(key))
    name = _class_name(raw.get("_target_")) if isinstance(raw, dict) else ""
    if name not in NETWORKS:
        what = (
            f"the class {raw.get('_target_')!r}"
            if isinstance(raw, dict)
            else code_in(raw) or repr(raw)[:60]
        )
        plan.needs_code.append(
            f"'{key}' builds {what}, which is not one of the MONAI "
            f"networks MedView builds ({', '.join(NETWORKS)})"
        )
        return
    args = _args(raw)
    code = code_in(args)
    if code:
        plan.needs_code.append(f"'{key}' ({name}) computes an argument with {code}")
        return
    if args.get("spatial_dims", args.get("dimensions", 3)) != 3:
        plan.unsupported.append(
            f"'{key}' is a {args.get('spatial_dims')}D {name}; MedView imports 3D bundles"
        )
    plan.network, plan.network_args = name, args
    plan.description.insert(
        0,
        f"Network: monai.networks.nets.{name}("
        + ", ".join(f"{k}={v!r}" for k, v in args.items())
        + ")",
    )


def _metadata_parts(plan: BundlePlan) -> None:
    meta = plan.metadata
    fmt = meta.get("network_data_format") if isinstance(meta, dict) else None
    fmt = fmt if isinstance(fmt, dict) else {}
    image = (fmt.get("inputs") or {}).get("image") or {}
    pred = (fmt.get("outputs") or {}).get("pred") or {}
    plan.modality = str(image.get("modality", "") or "").upper()
    channels = pred.get("channel_def") or {}
    labels = []
    for key, name in channels.items() if isinstance(channels, dict) else ():
        if str(key).isdigit() and int(key) > 0 and isinstance(name, str):
            labels.append((int(key), name))
    plan.labels = sorted(labels)
    if not plan.labels:
        plan.unsupported.append(
            "configs/metadata.json names no output labels "
            "(network_data_format.outputs.pred.channel_def)"
        )
    if int(image.get("num_channels", 1) or 1) != 1:
        plan.unsupported.append("the model takes several input channels; MedView gives one series")


def read_bundle(root: Path, evaluated: dict[str, Any] | None = None) -> BundlePlan:
    """Read and describe the bundle at `root` (an unpacked zoo layout); never runs it.
    `evaluated` replaces config items by values MONAI's ConfigParser computed (only after
    the reader's consent: runtime.bundle_import)."""
    meta_path = root / "configs" / "metadata.json"
    metadata = _read_structured(meta_path)
    if not isinstance(metadata, dict):
        raise InvalidInputError(str(meta_path), "is not a JSON object")
    config_file = next(
        (root / "configs" / n for n in CONFIG_NAMES if (root / "configs" / n).is_file()), None
    )
    if config_file is None:
        raise InvalidInputError(
            str(root / "configs"),
            "has no inference.json or inference.yaml; MedView runs a bundle's inference config",
        )
    data = _read_structured(config_file)
    if not isinstance(data, dict):
        raise InvalidInputError(str(config_file), "is not a mapping of config items")
    weights = next(
        (root / "models" / n for n in WEIGHT_NAMES if (root / "models" / n).is_file()), None
    )
    plan = BundlePlan(root, metadata, config_file, weights, config_keys=tuple(data))
    data = {**data, **(evaluated or {})}
    if weights is None:
        plan.unsupported.append("the bundle has no models/model.pt or models/model.ts")
    elif weights.suffix == ".ts":
        plan.needs_code.append(
            "the weights are a TorchScript program (models/model.ts), which is code"
        )
    cfg = _Config(data)
    _network(cfg, plan)
    _preprocessing(cfg, plan)
    _inferer(cfg, plan)
    _postprocessing(cfg, plan)
    _metadata_parts(plan)
    return plan


def bundle_name(metadata: dict[str, Any], fallback: str) -> str:
    """A plain model name from the bundle's `name` (or its folder's)."""
    raw = str(metadata.get("name") or fallback)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", raw.strip()).strip("-._").lower()
    return slug[:64] or "monai-bundle"


def bundle_version(metadata: dict[str, Any]) -> str:
    raw = str(metadata.get("version", "1.0"))
    m = re.match(r"^\d+(\.\d+){0,2}", raw)
    return m.group(0) if m else "1.0"


def published_numbers(metadata: dict[str, Any]) -> dict[str, Any]:
    """The model's own claims: metadata 'performance' / 'metrics' numbers (plain data)."""
    out: dict[str, Any] = {}
    for key in ("performance", "metrics", "validation"):
        value = metadata.get(key)
        if isinstance(value, dict) and not code_in(value):
            out.update(value)
    return out

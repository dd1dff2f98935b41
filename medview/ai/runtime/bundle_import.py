"""Importing a MONAI bundle (folder or zip, Model Zoo layout) as a new model version.

Without consent nothing from the bundle runs: its config is read as data
(models.bundle_config), the weights are read with torch.load(weights_only=True) and saved
as safetensors, and the card names an allow-listed MONAI network with literal arguments.
A bundle that needs more (a `$` expression or an unknown class where MedView needs a value,
a TorchScript model.ts) is refused with `CodeConsentRequired`, which lists why; with the
reader's consent (`allow_code`) MONAI's ConfigParser evaluates the parts MedView needs, the
network may be the bundle's own (built by ConfigParser at each load) or its TorchScript
program, and the card records the consent: when, and what it allowed.

As for .pt2 / ONNX imports (user_models), the import is all or nothing: staged in a hidden
folder, loaded and run on a test block of the card's window size, then moved into place."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medview.ai.models import registry
from medview.ai.models.bundle_config import (
    BundlePlan,
    bundle_name,
    bundle_version,
    extract_zip,
    find_root,
    published_numbers,
    read_bundle,
    read_licence,
)
from medview.ai.models.cards import ModelCard, card_from_dict
from medview.ai.runtime.volume_models import BUNDLE_FOLDER
from medview.core.errors import InvalidInputError, MedviewError, UnsupportedInputError
from medview.core.labels import COMMON_CODES
from medview.io.workspace import atomic_write_bytes

PRIVATE_SCHEME = "99MEDVIEW"  # a DICOM private coding scheme for names MedView cannot code


class CodeConsentRequired(InvalidInputError):
    """The model runs code: imported only with the reader's consent. `reasons` lists why."""

    def __init__(self, where: str, reasons: list[str]) -> None:
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        super().__init__(
            where,
            f"would run code from the model: {reasons[0]}{more}; import "
            f"it only if you trust where it came from, with consent "
            f"(medview models import --allow-code)",
        )
        self.reasons = reasons


def label_code(name: str, value: int) -> tuple[str, str, str]:
    """The SNOMED CT code of a label name MedView knows (core.labels.COMMON_CODES, by its
    last known word), else a private code that keeps the name."""
    known = {k.lower(): c for k, c in COMMON_CODES.items()}
    words = name.replace("_", " ").replace("-", " ").lower().split()
    hit = next((known[w] for w in reversed(words) if w in known), None)
    return hit[1].as_tuple() if hit else (PRIVATE_SCHEME, f"label-{value}", name[:64])


@contextlib.contextmanager
def opened_bundle(path: str | Path) -> Iterator[BundlePlan]:
    """The plan of a bundle folder or zip (a zip unpacked into a temporary folder that goes
    when the block ends)."""
    source = Path(path)
    where = str(source)
    if not source.exists():
        raise InvalidInputError(where, "does not exist")
    if source.is_dir():
        yield read_bundle(find_root(source, where))
        return
    if source.suffix.lower() != ".zip":
        raise UnsupportedInputError(where, "is not a MONAI bundle folder or zip")
    with tempfile.TemporaryDirectory(prefix="medview-bundle-") as tmp:
        yield read_bundle(extract_zip(source, Path(tmp)))


def _plain(value: Any) -> Any:
    """A ConfigParser result (ConfigComponent items inside) as plain data."""
    from monai.bundle.config_item import ConfigItem

    if isinstance(value, ConfigItem):
        value = value.get_config()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def evaluated_plan(plan: BundlePlan) -> BundlePlan:
    """With consent only: the plan again, after MONAI's ConfigParser evaluated the parts
    MedView needs (runs the config's expressions)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(plan.config_file))
    parser["bundle_root"] = str(plan.root)
    values: dict[str, Any] = {}
    net_key = "network_def" if "network_def" in parser.config else "network"
    for key in (net_key, "preprocessing", "inferer", "postprocessing"):
        if key in parser.config:
            values[key] = _plain(parser.get_parsed_content(key, instantiate=False))
    return read_bundle(plan.root, values)


def _weights(plan: BundlePlan) -> tuple[bytes, str]:
    """(file bytes, format): the state dict of model.pt as safetensors, or model.ts."""
    assert plan.weights_file is not None
    where = str(plan.weights_file)
    data = plan.weights_file.read_bytes()
    if plan.weights_file.suffix == ".ts":
        return data, "torchscript"
    from safetensors.torch import save

    try:  # never weights_only=False: a pickle can run code
        obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise InvalidInputError(
            where, "is not plain weights (a state dict readable with weights_only=True); refused"
        ) from exc
    for key in ("model", "state_dict", "network"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise InvalidInputError(where, "does not hold a state dict (names mapped to tensors)")
    return save({k: v.contiguous() for k, v in obj.items()}), "safetensors"


def _card(
    plan: BundlePlan,
    weights: bytes,
    fmt: str,
    source: Path,
    consent: dict,
    name: str | None,
    version: str | None,
) -> dict[str, Any]:
    meta = plan.metadata
    if fmt == "torchscript":
        arch, args, wfile = "torchscript", {"outputs": "logits"}, "model.ts"
    elif plan.network:
        arch, args, wfile = f"monai.{plan.network}", dict(plan.network_args), "weights.safetensors"
    else:
        arch, wfile = "monai.bundle-config", "weights.safetensors"
        args = {
            "config": f"configs/{plan.config_file.name}",
            "network_key": "network_def" if "network_def" in plan.config_keys else "network",
        }
    spec = dict(plan.volume3d)
    return {
        "name": name or bundle_name(meta, plan.root.name),
        "version": version or bundle_version(meta),
        "task": "segmentation",
        "modality": plan.modality or "CT",
        "labels": [
            {"value": v, "name": n, "colour": list(_colour(v)), "code": list(label_code(n, v))}
            for v, n in plan.labels
        ],
        "intensity": {"low": plan.intensity[0], "high": plan.intensity[1]},
        "architecture": arch,
        "architecture_args": args,
        "weights_file": wfile,
        "weights_format": fmt,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "context_slices": 1,
        "volume3d": spec,
        "description": str(meta.get("description", ""))[:2000],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_data": str(meta.get("data_source", ""))[:500],
        "provenance": {
            "kind": "monai-bundle",
            "source": source.name,
            "source_weights_sha256": hashlib.sha256(plan.weights_file.read_bytes()).hexdigest()
            if plan.weights_file
            else "",
            "bundle_version": str(meta.get("version", "")),
            "authors": str(meta.get("authors", "")),
            "copyright": str(meta.get("copyright", "")),
            "monai_version": str(meta.get("monai_version", "")),
            "runs": plan.description,
            "not_applied": plan.not_applied,
        },
        "licence": read_licence(plan.root),
        "claims": published_numbers(meta),
        "consent": consent,
    }


def _colour(value: int) -> tuple[int, int, int]:
    from medview.core.labels import default_colour

    return default_colour(value)


def _validate(folder: Path, card: ModelCard) -> None:
    """Load the staged model on the CPU and run one window of noise through it."""
    from medview.ai.runtime.loading import load_model

    model = load_model(folder, "cpu", reuse=False)
    spec = card.volume3d
    assert spec is not None
    x = torch.from_numpy(np.random.default_rng(0).random((1, 1, *spec.roi_size), dtype=np.float32))
    try:
        out = model.forward(x)
    except MedviewError:
        raise
    except Exception as exc:
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise InvalidInputError(
            None, f"fails on a test window of {tuple(spec.roi_size)} voxels ({line})"
        ) from exc
    want = len(card.labels) + 1
    if out.ndim != 5 or out.shape[1] != want:
        raise InvalidInputError(
            None,
            f"gives output of shape {tuple(out.shape)}; its "
            f"metadata's {len(card.labels)} label(s) need {want} "
            f"channels (background first)",
        )
    if not torch.isfinite(out).all():
        raise InvalidInputError(None, "gives NaN or infinite outputs on a test window")


def install(
    staging_fill: Any, card_data: dict[str, Any], where: str, validate: Any = None
) -> registry.ModelEntry:
    """Install a bundle-made model folder through user_models.install_staged, checked by
    `validate(folder, card)` (by default: one test window through the network)."""
    from medview.ai.runtime.user_models import install_staged

    return install_staged(
        staging_fill, card_from_dict(card_data, where), where, validate or _validate
    )


def import_bundle(
    path: str | Path,
    *,
    allow_code: bool = False,
    name: str | None = None,
    version: str | None = None,
) -> registry.ModelEntry:
    """Import the bundle at `path` as a new version (see the module docstring)."""
    source = Path(path)
    where = str(source)
    with opened_bundle(source) as plan:
        if plan.unsupported:
            raise UnsupportedInputError(where, f"cannot be run by MedView: {plan.unsupported[0]}")
        consent: dict[str, Any] = {}
        if plan.needs_code:
            if not allow_code:
                raise CodeConsentRequired(where, plan.needs_code)
            consent = {
                "granted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "reasons": list(plan.needs_code),
            }
            plan = evaluated_plan(plan)
            if plan.unsupported:
                raise UnsupportedInputError(
                    where, f"cannot be run by MedView: {plan.unsupported[0]}"
                )
        weights, fmt = _weights(plan)
        data = _card(plan, weights, fmt, source, consent, name, version)

        def fill(folder: Path) -> None:
            atomic_write_bytes(folder / data["weights_file"], weights)
            if data["architecture"] == "monai.bundle-config":  # its network is built from it
                shutil.copytree(
                    plan.root,
                    folder / BUNDLE_FOLDER,
                    ignore=shutil.ignore_patterns("models", "eval", "*.pt", "*.ts"),
                )

        return install(fill, data, where)

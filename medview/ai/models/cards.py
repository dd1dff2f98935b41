"""Model cards: the MONAI-bundle-style `metadata.json` that sits beside a model's weights
(MONAI docs/source/mb_specification.rst), read and validated without torch so the registry
lists models at once.

A card says everything needed to run the model safely and honestly: which network to build
(from a fixed list of architectures, never code from the file), how to normalise intensities,
what the labels mean, and how well it did on held-out data."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medview.core.errors import InvalidInputError

CARD_FILE = "metadata.json"
TASKS = ("segmentation", "classification")
# Networks a card may name; each maps to a builder in medview.ai.runtime.networks. Anything else
# is refused: a card must never make MedView import or run arbitrary code.
# The monai.* names are monai.networks.nets classes built with literal arguments; the
# last three are imported models (runtime.bundle_import, runtime.nnunet_models).
ARCHITECTURES = (
    "monai.UNet",
    "monai.BasicUNet",
    "monai.SegResNet",
    "monai.UNETR",
    "monai.SwinUNETR",
    "monai.AttentionUnet",
    "monai.VNet",
    "monai.DynUNet",
    "medview.SliceClassifier",
    "torch.export",
    "onnx",
    "torchscript",
    "monai.bundle-config",
    "nnunet",
)
# Architectures that run code shipped with the model (TorchScript, a bundle's own config, an
# nnU-Net checkpoint's trainer classes are not: nnU-Net builds from its plans): a card may
# name them only with the reader's recorded consent.
CODE_ARCHITECTURES = ("torchscript", "monai.bundle-config")
WEIGHT_FORMATS = ("safetensors", "state_dict", "torch.export", "onnx", "torchscript", "nnunet")
BLENDS = ("gaussian", "constant")
NORMALISATIONS = ("range", "zscore")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")
DISCLAIMER = "AI assistance — not a diagnosis"


@dataclass(frozen=True)
class LabelInfo:
    value: int
    name: str
    colour: tuple[int, int, int] = (255, 0, 0)
    # SNOMED CT code as DICOM SEG expects: (scheme designator, code value, meaning)
    code: tuple[str, str, str] = ("SCT", "108369006", "Neoplasm")


@dataclass(frozen=True)
class Intensity:
    """How voxels become network input: clip to [low, high] in modality units (HU for CT)
    and scale to 0..1."""

    low: float
    high: float


@dataclass(frozen=True)
class Postprocess:
    """How a segmentation model's regions become findings, exactly as its validation
    numbers were measured (ai.findings applies it): regions of fewer voxels or slices are
    not listed, nor those the false-positive classifier (a file beside the weights, checked
    against its SHA-256; ai.fp_reduction) scores below fp_threshold. A card without it
    (version 1.0 cards) uses validation["min_component_voxels"] alone."""

    min_component_voxels: int = 1
    min_component_slices: int = 1
    fp_classifier: str = ""  # file name in the model's folder; "" for no second stage
    fp_classifier_sha256: str = ""
    fp_threshold: float = 0.5
    # a listed finding's outline grows into the voxels of its label at least this probable,
    # at most extent_max_mm beyond it (ai.extent); 0 for the plain mask at the threshold
    extent_threshold: float = 0.0
    extent_max_mm: float = 0.0


@dataclass(frozen=True)
class Volume3D:
    """How a 3D model sees a volume, read from a MONAI bundle's transforms (Orientationd,
    Spacingd, ScaleIntensityRanged / NormalizeIntensityd, SlidingWindowInferer): the voxel
    axes are turned to `axcodes` (NIfTI/RAS letters: "RAS" = axis 0 increases to the right),
    resampled to `spacing_mm` (in those axes' order; None keeps the study's), normalised, and
    run window by window. `normalise` "range" maps the card's intensity low..high to
    out_low..out_high (clipped when `clip`); "zscore" subtracts the mean and divides by the
    standard deviation (over voxels != 0 when `nonzero`)."""

    roi_size: tuple[int, int, int]
    axcodes: str = "RAS"
    spacing_mm: tuple[float, float, float] | None = None
    overlap: float = 0.25
    blend: str = "gaussian"
    sw_batch_size: int = 1
    normalise: str = "range"
    out_low: float = 0.0
    out_high: float = 1.0
    clip: bool = True
    nonzero: bool = False


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    task: str  # "segmentation" or "classification"
    labels: tuple[LabelInfo, ...]
    modality: str  # "CT", "MR", ...
    intensity: Intensity
    architecture: str  # one of ARCHITECTURES
    architecture_args: dict[str, Any] = field(default_factory=dict)
    weights_file: str = "weights.safetensors"
    weights_format: str = "safetensors"
    weights_sha256: str = ""
    parent_version: str | None = None
    expected_spacing_mm: tuple[float, float] | None = None  # in-plane (row, col)
    context_slices: int = 1  # 2.5D: slices stacked as channels (odd), centre predicted
    input_size: tuple[int, int] | None = None  # fixed in-plane size, or None for any
    training_data: str = ""
    validation: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    description: str = ""
    postprocess: Postprocess | None = None
    # imported models: how they run in 3D (None: 2.5D slices), where they came from (kind,
    # file name, sha256, authors...), the licence text they ship, their own published
    # numbers (`claims`, never mixed with `validation`, which MedView measured), and the
    # reader's consent to run their code ({} when none was needed or given)
    volume3d: Volume3D | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    licence: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def in_channels(self) -> int:
        return self.context_slices

    def label_name(self, value: int) -> str:
        return next((lab.name for lab in self.labels if lab.value == value), f"label {value}")

    def to_json(self) -> str:
        data = asdict(self)
        data["labels"] = [asdict(lab) for lab in self.labels]
        for key in ("postprocess", "volume3d"):
            if data[key] is None:
                data.pop(key)
        return json.dumps(data, indent=2, sort_keys=True)


def _req(data: dict, key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise InvalidInputError(where, f"is missing the field '{key}'")
    value = data[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidInputError(
            where,
            f"has '{key}' of the wrong type ({type(value).__name__}, {kind.__name__} expected)",
        )
    return value


def _plain_file(value: object, where: str, what: str) -> str:
    """A file name inside the model's folder (no path, not hidden)."""
    if (
        not isinstance(value, str)
        or not value
        or "/" in value
        or "\\" in value
        or value.startswith(".")
    ):
        raise InvalidInputError(where, f"names {what} outside the model's folder")
    return value


def _postprocess(data: dict, where: str) -> Postprocess | None:
    raw = data.get("postprocess")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInputError(where, "has a 'postprocess' that is not an object")
    try:
        out = Postprocess(
            int(raw.get("min_component_voxels", 1)),
            int(raw.get("min_component_slices", 1)),
            str(raw.get("fp_classifier", "")),
            str(raw.get("fp_classifier_sha256", "")).lower(),
            float(raw.get("fp_threshold", 0.5)),
            float(raw.get("extent_threshold", 0.0)),
            float(raw.get("extent_max_mm", 0.0)),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            where, "has a 'postprocess' with a value of the wrong type"
        ) from exc
    if out.min_component_voxels < 1 or out.min_component_slices < 1:
        raise InvalidInputError(where, "has a postprocess minimum below 1")
    if not 0.0 <= out.fp_threshold <= 1.0:
        raise InvalidInputError(where, "has a postprocess fp_threshold outside 0..1")
    if not 0.0 <= out.extent_threshold < 1.0 or not 0.0 <= out.extent_max_mm <= 100.0:
        raise InvalidInputError(
            where, "has a postprocess extent_threshold outside 0..1 or extent_max_mm outside 0..100"
        )
    if out.fp_classifier:
        _plain_file(out.fp_classifier, where, "a false-positive classifier")
        if not re.fullmatch(r"[0-9a-f]{64}", out.fp_classifier_sha256):
            raise InvalidInputError(
                where, "names a false-positive classifier without its fp_classifier_sha256"
            )
    return out


def _volume3d(data: dict, where: str) -> Volume3D | None:
    raw = data.get("volume3d")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInputError(where, "has a 'volume3d' that is not an object")
    try:
        spacing = raw.get("spacing_mm")
        out = Volume3D(
            roi_size=tuple(int(x) for x in raw["roi_size"]),  # type: ignore[arg-type]
            axcodes=str(raw.get("axcodes", "RAS")).upper(),
            spacing_mm=tuple(float(x) for x in spacing) if spacing else None,  # type: ignore
            overlap=float(raw.get("overlap", 0.25)),
            blend=str(raw.get("blend", "gaussian")),
            sw_batch_size=int(raw.get("sw_batch_size", 1)),
            normalise=str(raw.get("normalise", "range")),
            out_low=float(raw.get("out_low", 0.0)),
            out_high=float(raw.get("out_high", 1.0)),
            clip=bool(raw.get("clip", True)),
            nonzero=bool(raw.get("nonzero", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            where, f"has a 'volume3d' with a missing or wrong value ({exc})"
        ) from exc
    axes = sorted(out.axcodes.replace("L", "R").replace("P", "A").replace("I", "S"))
    if (
        len(out.roi_size) != 3
        or min(out.roi_size) < 1
        or axes != ["A", "R", "S"]
        or (out.spacing_mm is not None and (len(out.spacing_mm) != 3 or min(out.spacing_mm) <= 0))
    ):
        raise InvalidInputError(
            where,
            "has a 'volume3d' whose roi_size, axcodes or spacing_mm is not three valid values",
        )
    if (
        not 0.0 <= out.overlap < 1.0
        or out.blend not in BLENDS
        or out.sw_batch_size < 1
        or out.normalise not in NORMALISATIONS
    ):
        raise InvalidInputError(
            where,
            f"has a 'volume3d' with overlap outside 0..1, blend "
            f"not in {BLENDS}, sw_batch_size below 1 or normalise "
            f"not in {NORMALISATIONS}",
        )
    return out


def _dict_field(data: dict, key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InvalidInputError(where, f"has a '{key}' that is not an object")
    return dict(value)


def card_from_dict(data: dict, where: str) -> ModelCard:
    """Validate a parsed card; every problem is one sentence naming the file."""
    if not isinstance(data, dict):
        raise InvalidInputError(where, "is not a JSON object")
    name = _req(data, "name", str, where)
    version = str(_req(data, "version", str, where))
    if not _NAME.match(name):
        raise InvalidInputError(
            where, f"has a model name {name!r} that is not a plain name (letters, digits, . _ -)"
        )
    if not _VERSION.match(version):
        raise InvalidInputError(where, f"has version {version!r}; use numbers like 1 or 1.2")
    task = _req(data, "task", str, where)
    if task not in TASKS:
        raise InvalidInputError(where, f"has task {task!r}; expected one of {', '.join(TASKS)}")
    arch = _req(data, "architecture", str, where)
    if arch not in ARCHITECTURES:
        raise InvalidInputError(
            where,
            f"names architecture {arch!r}, which MedView does not "
            f"build; known: {', '.join(ARCHITECTURES)}",
        )
    fmt = data.get("weights_format", "safetensors")
    if fmt not in WEIGHT_FORMATS:
        raise InvalidInputError(
            where, f"has weights_format {fmt!r}; expected one of {', '.join(WEIGHT_FORMATS)}"
        )
    weights = _plain_file(data.get("weights_file", "weights.safetensors"), where, "a weights file")
    labels_raw = _req(data, "labels", list, where)
    labels = []
    for item in labels_raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("value"), int)
            or not isinstance(item.get("name"), str)
        ):
            raise InvalidInputError(where, "has a label without an integer 'value' and a 'name'")
        colour = tuple(int(c) for c in item.get("colour", (255, 0, 0)))[:3]
        code = tuple(str(c) for c in item.get("code", ("SCT", "108369006", "Neoplasm")))[:3]
        labels.append(LabelInfo(item["value"], item["name"], colour, code))
    if not labels:
        raise InvalidInputError(where, "lists no labels")
    intensity = _req(data, "intensity", dict, where)
    try:
        lo, hi = float(intensity["low"]), float(intensity["high"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(where, "needs intensity {'low': .., 'high': ..}") from exc
    if not hi > lo:
        raise InvalidInputError(where, "has an intensity range whose high is not above low")
    context = int(data.get("context_slices", 1))
    if context < 1 or context % 2 == 0:
        raise InvalidInputError(where, f"has context_slices {context}; use an odd number")
    consent = _dict_field(data, "consent", where)
    if arch in CODE_ARCHITECTURES and not consent.get("granted"):
        raise InvalidInputError(
            where,
            f"is a {arch} model, which runs code shipped with it, "
            f"but records no consent to run that code; import it "
            f"again and consent (medview models import "
            f"--allow-code)",
        )
    spacing = data.get("expected_spacing_mm")
    size = data.get("input_size")
    return ModelCard(
        name=name,
        version=version,
        task=task,
        labels=tuple(labels),
        modality=_req(data, "modality", str, where),
        intensity=Intensity(lo, hi),
        architecture=arch,
        architecture_args=dict(data.get("architecture_args", {})),
        weights_file=weights,
        weights_format=fmt,
        weights_sha256=str(data.get("weights_sha256", "")),
        parent_version=data.get("parent_version"),
        expected_spacing_mm=tuple(float(x) for x in spacing) if spacing else None,
        context_slices=context,
        input_size=tuple(int(x) for x in size) if size else None,
        training_data=str(data.get("training_data", "")),
        validation=dict(data.get("validation", {})),
        created=str(data.get("created", "")),
        description=str(data.get("description", "")),
        postprocess=_postprocess(data, where),
        volume3d=_volume3d(data, where),
        provenance=_dict_field(data, "provenance", where),
        licence=str(data.get("licence", "")),
        claims=_dict_field(data, "claims", where),
        consent=consent,
    )


def load_card(folder: str | Path) -> ModelCard:
    """Read and validate `folder/metadata.json`."""
    path = Path(folder) / CARD_FILE
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidInputError(where, "is missing; a model folder needs its card") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(where, f"cannot be read ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(where, f"is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    card = card_from_dict(data, where)
    post = card.postprocess
    if post is not None and post.fp_classifier:
        from medview.ai.models.fp_file import check_file

        # checked now (no numpy: listing stays light) and kept by its sha256 for
        # ai.fp_reduction.classifier_for, so the card stays plain data
        check_file(Path(folder) / post.fp_classifier, post.fp_classifier_sha256, len(card.labels))
    return card


def pad_multiple(card: ModelCard) -> int:
    """What the in-plane size must divide by for the network's down- and up-sampling."""
    if card.architecture == "monai.BasicUNet":
        return 16
    if card.architecture == "monai.UNet":
        total = 1
        for s in card.architecture_args.get("strides", ()):
            total *= int(s if isinstance(s, (int, float)) else max(s))
        return total
    return 1

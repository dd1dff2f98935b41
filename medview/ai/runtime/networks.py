"""Building a network from its card: only the architectures MedView knows (cards.ARCHITECTURES),
never code named by a file, so a model folder cannot make MedView import or run anything.

Card conventions every builder and loader follows:

- input: `context_slices` channels (2.5D: neighbouring slices stacked, centre predicted);
- output: `len(labels) + 1` channels, class 0 being background ("no finding") and class i
  the card's i-th label, for segmentation (N, K, H, W) and classification (N, K) alike;
- `architecture_args["outputs"]`: "logits" (the default, and what our own networks give) or
  "probabilities" (the network ends in its own softmax). MedView applies a softmax over the
  classes only to logits. The key is MedView's, not the network's, so it is never passed on
  to a constructor.

`in_channels` and `out_channels` follow from the card; a card may repeat them in
architecture_args, but only with the same values."""

from __future__ import annotations

from typing import Any

from torch import nn

from medview.ai.models.cards import ModelCard
from medview.core.errors import InvalidInputError, UnsupportedInputError

OUTPUT_KINDS = ("logits", "probabilities")
# monai.networks.nets classes a card may name (cards.ARCHITECTURES), all segmentation nets
_SEGMENTATION_NETS = (
    "monai.UNet",
    "monai.BasicUNet",
    "monai.SegResNet",
    "monai.UNETR",
    "monai.SwinUNETR",
    "monai.AttentionUnet",
    "monai.VNet",
    "monai.DynUNet",
)
_FILE_PROGRAMS = ("torch.export", "onnx", "torchscript", "monai.bundle-config", "nnunet")


def n_classes(card: ModelCard) -> int:
    """Output channels a card's network must give: background plus one per label."""
    return len(card.labels) + 1


def outputs_logits(card: ModelCard) -> bool:
    """Whether the network's raw output needs a softmax (see the module docstring)."""
    kind = card.architecture_args.get("outputs", "logits")
    if kind not in OUTPUT_KINDS:
        raise InvalidInputError(
            f"model {card.ref}",
            f"has architecture_args outputs {kind!r}; use 'logits' or 'probabilities'",
        )
    return kind == "logits"


def constructor_args(card: ModelCard) -> dict[str, Any]:
    """The card's architecture_args as constructor keywords, with in/out channels filled in
    from the card and MedView's own `outputs` key taken out."""
    args = {k: v for k, v in card.architecture_args.items() if k != "outputs"}
    for key, value in (("in_channels", card.in_channels), ("out_channels", n_classes(card))):
        given = args.setdefault(key, value)
        if given != value:
            source = "context_slices" if key == "in_channels" else "labels + background"
            raise InvalidInputError(
                f"model {card.ref}",
                f"has architecture_args {key} {given} but its {source} make {value}",
            )
    return args


def _slice_classifier() -> type[nn.Module]:
    try:
        from medview.ai.runtime.slice_classifier import SliceClassifier
    except ModuleNotFoundError as exc:
        if exc.name != "medview.ai.runtime.slice_classifier":
            raise
        raise UnsupportedInputError(
            None,
            "medview.SliceClassifier needs the module "
            "medview.ai.runtime.slice_classifier, which this MedView "
            "does not have",
        ) from exc
    return SliceClassifier


def _builder(card: ModelCard) -> type[nn.Module]:
    arch = card.architecture
    if arch in _FILE_PROGRAMS:
        raise UnsupportedInputError(
            f"model {card.ref}", f"is a {arch} program: it is loaded from its file, not built"
        )
    if arch in _SEGMENTATION_NETS and card.task != "segmentation":
        raise InvalidInputError(
            f"model {card.ref}", f"uses {arch}, a segmentation network, for the task {card.task!r}"
        )
    if arch in _SEGMENTATION_NETS:
        from monai.networks import nets

        return getattr(nets, arch.removeprefix("monai."))
    if arch == "medview.SliceClassifier":
        return _slice_classifier()
    # cards.py refuses unknown names; this guards a card built in code
    raise UnsupportedInputError(
        f"model {card.ref}", f"names architecture {arch!r}, which MedView does not build"
    )


def build_network(card: ModelCard) -> nn.Module:
    """A freshly initialised network for the card (weights come from loading.load_model)."""
    cls = _builder(card)
    outputs_logits(card)  # refuse a bad `outputs` value before building anything
    try:
        return cls(**constructor_args(card))
    except (TypeError, ValueError, AssertionError) as exc:
        raise InvalidInputError(
            f"model {card.ref}",
            f"has architecture_args that {card.architecture} does not accept ({exc})",
        ) from exc

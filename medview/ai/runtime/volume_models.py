"""3D models imported from MONAI bundles: a network that takes a (N, 1, D, H, W) block of the
model grid (runtime.model_grid) and gives (N, K, D, H, W) class scores, K = labels +
background.

How the network is made follows the card and nothing else:
- a MONAI network from the allow-list (networks.py) with the card's literal arguments and
  weights from safetensors: no code from the bundle runs;
- "torchscript" (the bundle's model.ts) and "monai.bundle-config" (the bundle's own
  network_def, built by monai.bundle.ConfigParser, which evaluates its expressions) run code
  that came with the model; cards.py accepts them only with the reader's recorded consent,
  and this module checks that again before loading."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch

from medview.ai.models.cards import CODE_ARCHITECTURES, ModelCard
from medview.ai.runtime.device import autocast_context
from medview.ai.runtime.networks import build_network, outputs_logits
from medview.core.errors import InvalidInputError

BUNDLE_FOLDER = "bundle"  # the bundle's configs, kept beside a consented bundle-config model


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def config_network(folder: Path, card: ModelCard) -> torch.nn.Module:
    """The bundle's own network_def, instantiated by MONAI's ConfigParser (runs the config's
    code: only for a card with consent)."""
    from monai.bundle import ConfigParser

    args = card.architecture_args
    parser = ConfigParser()
    parser.read_config(str(folder / BUNDLE_FOLDER / str(args["config"])))
    parser["bundle_root"] = str(folder / BUNDLE_FOLDER)
    return parser.get_parsed_content(str(args.get("network_key", "network_def")))


class VolumeModel:
    """A 3D model on one device; `forward` gives raw class scores for a block."""

    def __init__(
        self, card: ModelCard, folder: Path, where: str, data: bytes, device: torch.device
    ) -> None:
        from medview.ai.runtime.loading import _first_mismatch, _state_dict

        self.card, self.folder, self.where = card, folder, where
        self.logits = outputs_logits(card)
        if card.architecture in CODE_ARCHITECTURES and not card.consent.get("granted"):
            raise InvalidInputError(
                where, "runs code shipped with the model but its card records no consent; refused"
            )
        try:
            if card.architecture == "torchscript":
                with warnings.catch_warnings():  # deprecated in torch 2.13; still the format
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = torch.jit.load(io.BytesIO(data), map_location="cpu")
            else:
                module = (
                    config_network(folder, card)
                    if card.architecture == "monai.bundle-config"
                    else build_network(card)
                )
                weights = _state_dict(card, data, where)
                mismatch = _first_mismatch(module, weights)
                if mismatch:
                    raise InvalidInputError(
                        where, f"the card of {card.ref} does not match its weights: {mismatch}"
                    )
                module.load_state_dict(weights, strict=True)
        except InvalidInputError:
            raise
        except Exception as exc:
            raise InvalidInputError(
                where, f"cannot be loaded as {card.architecture} ({_first_line(exc)})"
            ) from exc
        self.module = module.eval()
        self.to(device)

    def to(self, device: torch.device | str) -> VolumeModel:
        self.device = self.requested = torch.device(device)
        self.module.to(self.device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 class scores (logits or probabilities, see `logits`) for a block."""
        with torch.inference_mode(), autocast_context(self.device):
            out = self.module(x.to(self.device))
        if isinstance(out, (list, tuple)):  # deep supervision heads: the first is the output
            out = out[0]
        return out.float()

"""Whole-volume label maps of an imported 3D network while it is fine-tuned, through the
app's own 3D runner (runtime.inference.segment: sliding3d for a MONAI bundle, nnU-Net's
predictor for nnU-Net), so that mining and the card's numbers see what a reader will.

The network under training is handed to the runner as the loaded model would be: a MONAI
network wrapped with VolumeModel's own forward; for nnU-Net the parent's predictor (its plans
and dataset) with the network's weights as its one set of parameters."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from medview.ai.models.cards import ModelCard
from medview.ai.training.data import PreparedStudy
from medview.core.jobs import CancelToken


def runner_for(card: ModelCard, device: Any = "cpu") -> Any:
    """The card's model loaded by the app's loader (a private copy, on `device`)."""
    from medview.ai.models import registry
    from medview.ai.runtime.loading import load_model

    return load_model(registry.resolve(card.ref).folder, device, reuse=False)


@contextlib.contextmanager
def eval_modes(module: Any) -> Iterator[None]:
    """Eval mode for a prediction, then every submodule's own mode back (the engine's
    train_mode keeps frozen batch norms in eval mode: a plain train() would undo that)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


class _Trained:
    """A MONAI network under training as sliding3d drives a VolumeModel."""

    def __init__(self, module: Any, card: ModelCard, device: Any) -> None:
        from medview.ai.runtime.networks import outputs_logits

        self.module, self.card, self.logits = module, card, outputs_logits(card)
        self.to(device)

    def to(self, device: Any) -> _Trained:
        from medview.ai.runtime.volume_models import VolumeModel

        VolumeModel.to(self, device)  # type: ignore[arg-type]
        return self

    def forward(self, x: Any) -> Any:
        from medview.ai.runtime.volume_models import VolumeModel

        return VolumeModel.forward(self, x)  # type: ignore[arg-type]


def runnable(module: Any, card: ModelCard, device: Any) -> Any:
    """What runtime.inference.segment runs for the network `module` of `card`."""
    if card.architecture != "nnunet":
        return _Trained(module, card, device)
    runner = runner_for(card, device)
    weights = {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}
    runner.parameters = [weights]
    runner.predictor.list_of_parameters = runner.parameters
    return runner


class _Check(CancelToken):
    """The engine's stop check where the runner looks for a cancel."""

    def __init__(self, check: Callable[[], None] | None) -> None:
        super().__init__()
        self.check = check

    def raise_if_cancelled(self) -> None:
        if self.check is not None:
            self.check()


def predict_volume(
    module: Any,
    card: ModelCard,
    study: PreparedStudy,
    device: Any,
    check: Callable[[], None] | None = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """uint8 label map of the whole study (metrics.predict's contract); the network stays on
    `device` whatever the runner did."""
    from medview.ai.findings.postprocess import label_map_at
    from medview.ai.runtime.inference import segment
    from medview.ai.training.grid_studies import study_volume

    with eval_modes(module):
        try:
            result = segment(
                study_volume(study),
                runnable(module, card, device),
                reuse=False,
                cancel=_Check(check),
            )
        finally:  # out of GPU memory, the runner moves it to the CPU; training needs it back
            module.to(device)
    return label_map_at(result.codes, card, threshold, result.coarse_max)

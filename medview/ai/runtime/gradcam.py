"""Grad-CAM for the slice classifier: for each slice of a stack, a heatmap of where the
evidence for "lesion present" lies (Selvaraju et al., ICCV 2017).

For slice t, the gradient of its lesion score with respect to the last convolutional stage
of the encoder is averaged over space to weight that stage's channels; the weighted sum of
slice t's activations, with negatives cut, is its heatmap. The score is the log-odds of
"lesion" against "no lesion" (the logit of the target class when there are more than two
classes). Because the GRU mixes neighbouring slices, slice t's score is differentiated on
its own rather than summing all scores, so a heatmap explains that slice's answer only.

Needs gradients: this refuses to run inside torch.inference_mode(), and turns gradients on
for itself when called under torch.no_grad(). The model's parameters are not touched."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.core.errors import InvalidInputError


@dataclass(frozen=True)
class GradCamResult:
    heatmaps: np.ndarray  # (T, H, W) float32 in 0..1, one scale for the whole stack
    probabilities: np.ndarray  # (T,) float32: the model's probability of the target class
    peak: float  # the largest raw heatmap value the 0..1 scale divides by (0: no evidence)


def gradcam(
    model: object, slices: np.ndarray, target: int = 1, out_size: tuple[int, int] | None = None
) -> GradCamResult:
    """Heatmaps for a stack of neighbouring normalised slices (T, H, W) or (T, C, H, W).

    Heatmaps come back at `out_size` (default: the slices' own H, W), bilinearly upsampled
    from the encoder's last stage. They share one scale across the stack so a slice the model
    finds nothing in stays dark instead of being stretched to full brightness."""
    import torch
    from torch.nn import functional as F

    if torch.is_inference_mode_enabled():
        raise InvalidInputError(
            None, "Grad-CAM needs gradients and cannot run inside torch.inference_mode()"
        )
    layer = getattr(model, "cam_layer", None)
    if layer is None or not isinstance(model, torch.nn.Module):
        raise InvalidInputError(
            None, "Grad-CAM explains the slice classifier only; this model has no layer to explain"
        )
    x = np.asarray(slices, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] < 1:
        raise InvalidInputError(
            None, f"Grad-CAM needs a stack of slices (T, H, W), not {tuple(np.shape(slices))}"
        )
    size = tuple(out_size) if out_size is not None else tuple(x.shape[-2:])
    param = next(model.parameters())
    captured: list = []

    def keep(_module: object, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        # a fresh leaf that requires grad: works whether or not the weights do
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    was_training = model.training
    model.eval()
    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(torch.from_numpy(x).to(param.device, param.dtype))  # (T, K)
            acts = captured[-1]  # (T, C, h, w)
            if target >= logits.shape[1]:
                raise InvalidInputError(None, f"the model has no class {target}")
            score = logits[:, target]
            if logits.shape[1] == 2:
                score = score - logits[:, 1 - target]
            cams = []
            for t in range(x.shape[0]):
                (grad,) = torch.autograd.grad(score[t], acts, retain_graph=True)
                weights = grad[t].mean(dim=(1, 2))  # (C,)
                cams.append(F.relu((weights[:, None, None] * acts[t]).sum(0)))
            cam = torch.stack(cams)[:, None].detach()
            probs = torch.softmax(logits.detach().float(), dim=1)[:, target]
    finally:
        handle.remove()
        model.train(was_training)
    cam = F.interpolate(cam.float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    cam_np = cam.cpu().numpy().astype(np.float32)
    peak = float(cam_np.max()) if cam_np.size else 0.0
    if peak > 0:
        cam_np /= peak
    return GradCamResult(cam_np, probs.cpu().numpy().astype(np.float32), peak)


def peak_index(heatmap: np.ndarray) -> tuple[int, int]:
    """(row, col) of a heatmap's maximum."""
    r, c = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return int(r), int(c)

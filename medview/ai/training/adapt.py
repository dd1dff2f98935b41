"""Small-data site adaptation beside plain fine-tuning (issue 15): what a fine-tune on 5-20
studies of a new scanner changes in the parent, and by how much.

- `trainable`: which weights learn. "all"; "norm", the batch norms' scale and shift and the
  activations' slopes only (a few hundred numbers that re-map each channel's contrast, the
  way a new scanner's contrast and noise shift them; Frankle et al. 2021 on training only
  batch norm, and the site-specific-norm literature); "decoder", everything after the
  network's deepest layer (the encoder's features kept).
- `renormalise`: the batch norms' running statistics measured afresh on the site's own
  images (AdaBN, Li et al. 2016): a forward pass over whole-study patches in train mode with
  cumulative averages, no weight changed. With `freeze_norm` a fine-tune then trains with
  those statistics kept.
- `blend`: WiSE-FT (Wortsman et al. 2022): the version's weights are the parent's plus a
  fraction `interpolate` of the fine-tune's change; between the two ends, a model keeps
  more of what the parent knew (the old site) while keeping most of the gain on the new one,
  and its gain varies less from one set of studies to another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch.nn as nn

TRAINABLE = ("all", "norm", "decoder")


def _norm_types() -> tuple[type[nn.Module], ...]:
    import torch.nn as nn
    from torch.nn.modules.batchnorm import _BatchNorm

    return (_BatchNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm)


def set_trainable(model: Any, which: str) -> int:
    """Freeze every weight outside `which` (TRAINABLE); returns the number left to learn.
    "decoder" keeps learning from the first layer after the deepest one in the network's
    order of modules: for a U-Net, the bottom block and everything on the way up."""
    import torch.nn as nn

    if which not in TRAINABLE:
        raise ValueError(f"trainable is one of {', '.join(TRAINABLE)}, not {which!r}")
    params = dict(model.named_parameters())
    if which == "all":
        keep = set(params)
    elif which == "norm":
        kinds: tuple[type[nn.Module], ...] = (*_norm_types(), nn.PReLU)
        keep = {
            f"{name}.{p}" if name else p
            for name, m in model.named_modules()
            if isinstance(m, kinds)
            for p, _ in m.named_parameters(recurse=False)
        }
    else:
        keep = set(_after_deepest(model))
    for name, p in params.items():
        p.requires_grad_(name in keep)
    return sum(p.numel() for name, p in params.items() if name in keep)


def _after_deepest(model: Any) -> list[str]:
    """Names of the parameters of the layers the forward pass runs after the one with the
    smallest output (found by one forward pass on a small input)."""
    import torch

    order: list[tuple[str, int]] = []
    hooks = []
    for name, m in model.named_modules():
        if len(list(m.children())) or not list(m.parameters(recurse=False)):
            continue
        hooks.append(
            m.register_forward_hook(
                lambda mod, inp, out, n=name: order.append((n, int(out[0].numel())))
            )
        )
    first = next(model.parameters())
    size = (1, _in_channels(model), *([64] * (first.dim() - 2)))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(size, dtype=first.dtype, device=first.device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    deepest = min(range(len(order)), key=lambda i: order[i][1])
    late = {n for n, _ in order[deepest:]}
    return [
        f"{name}.{p}"
        for name, m in model.named_modules()
        if name in late
        for p, _ in m.named_parameters(recurse=False)
    ]


def _in_channels(model: Any) -> int:
    for p in model.parameters():
        if p.dim() >= 3:
            return int(p.shape[1])
    raise ValueError("the network has no convolution to find its input channels from")


def renormalise(model: Any, batches: Any) -> int:
    """AdaBN: reset every batch norm's running statistics and measure them again as the
    cumulative average over `batches` (input tensors) in train mode; no weight changes.
    Returns the number of batch norms measured (0: the network has none, left as it was)."""
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    saved = [(m.momentum, m.training) for m in norms]
    was = model.training
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
        m.train()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for m, (momentum, training) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.train(training)
        model.train(was)
    return len(norms)


def blend(model: Any, parent: dict[str, Any], fraction: float) -> None:
    """WiSE-FT in place: every floating-point weight and statistic becomes parent +
    fraction * (fine-tuned - parent); integer buffers (batch counts) are left."""
    import torch

    if fraction >= 1.0:
        return
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                start = parent[name].to(value.device, value.dtype)
                value.copy_(start + fraction * (value - start))

"""The slice classifier: does this slice hold a lesion? A small CNN encodes every slice on its
own, then a bidirectional GRU runs along the stack so each slice's answer uses its
neighbours — the CNN + RNN pairing that won the RSNA intracranial haemorrhage challenge.

Context matters here as it does for a reader: on one slice a lung vessel seen end-on and a
small nodule are the same bright dot; a few slices up or down the vessel runs on and the
nodule ends. The per-slice embedding is also fed straight to the head beside the GRU's
output, so a slice's own evidence is never washed out by its neighbours.

Input is one channel per slice (intensity normalised to 0..1 by the card), reduced to
`input_size`² by block means inside the network, so callers may pass full 512² slices. The
network then looks at it through several fixed windows, as the RSNA winners fed brain,
subdural and bone windows: the full range and a soft-tissue window, in which a hypodense
liver lesion 30 HU below the liver is a third of the range instead of 2% of it.

Training also supervises a coarse lesion map from the last stage (`forward_with_map`): one
bit per slice is a weak signal for a small nodule among vessels, and the map teaches the
encoder where to look. The input size decides whether it can: at 128² (1.0) a 6 mm nodule is
2 pixels and a last-stage cell 22 mm, and the map and Grad-CAM seldom found nodules; at 256²
(1.1, the same layers) the nodule is 4 pixels and a cell 11 mm, and Grad-CAM's peak lies on
about half the nodules and most liver lesions. With `map_evidence` the map's soft maximum is
added to the "lesion" logit, so the answer rests on where the lesion is rather than on which
level of the body the slice is at (lesions only occur at some levels, a shortcut a
slice-level loss alone rewards), and Grad-CAM, whose channel weights then follow the map's,
points at it."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F

from medview.core.errors import InvalidInputError


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class SliceEncoder(nn.Module):
    """A strided stem, then stages that each halve the size (a strided and a plain 3 x 3
    convolution), then global mean and max pooling (max keeps a small bright nodule from
    being averaged away) to an embedding. Strided from the start because the encoder runs on
    every slice of a stack: about 32 million multiply-adds a 128² slice with the default
    features, four times that at 256²."""

    def __init__(self, in_channels: int, features: tuple[int, ...], embed: int) -> None:
        super().__init__()
        stages: list[nn.Module] = [_conv(in_channels, features[0], 2)]
        for cin, cout in itertools.pairwise(features):
            stages.append(nn.Sequential(_conv(cin, cout, 2), _conv(cout, cout, 1)))
        self.stages = nn.Sequential(*stages)
        self.project = nn.Sequential(nn.Linear(2 * features[-1], embed), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, last-stage feature maps)."""
        f = self.stages(x)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.project(pooled), f


class SliceClassifier(nn.Module):
    """Per-slice logits for a stack of neighbouring slices.

    forward((B, T, C, H, W)) -> (B, T, out_channels); a 4D (N, C, H, W) input is one stack
    of N consecutive slices -> (N, out_channels). Outputs are logits; class 1 is "lesion
    present". Constructor arguments are the model card's architecture_args."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        features: tuple[int, ...] | list[int] = (16, 32, 64),
        embed: int = 64,
        hidden: int = 32,
        input_size: int = 128,
        dropout: float = 0.2,
        windows: tuple | list = ((0.0, 1.0),),
        z_offsets: tuple | list = (0,),
        map_evidence: bool = False,
    ) -> None:
        super().__init__()
        if len(features) < 2 or input_size < 2 ** len(features):
            raise InvalidInputError(
                None,
                "SliceClassifier needs two or more feature stages and an input size they can halve",
            )
        if not windows or any(len(w) != 2 or not w[1] > w[0] for w in windows):
            raise InvalidInputError(
                None, "SliceClassifier windows must be (low, high) pairs with high above low"
            )
        self.in_channels, self.input_size = int(in_channels), int(input_size)
        self.windows = tuple((float(lo), float(hi)) for lo, hi in windows)
        self.z_offsets = tuple(int(o) for o in z_offsets) or (0,)
        self.map_evidence = bool(map_evidence)
        channels = self.in_channels * len(self.windows) * len(self.z_offsets)
        self.encoder = SliceEncoder(channels, tuple(int(f) for f in features), embed)
        self.locator = nn.Conv2d(int(features[-1]), 1, 1)
        self.gru = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed + 2 * hidden, out_channels)

    @property
    def cam_layer(self) -> nn.Module:
        """The last convolutional stage: the layer Grad-CAM explains."""
        return self.encoder.stages[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_map(x)[0]

    def forward_with_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slice logits as forward() gives them, and the coarse lesion-map logits of each
        slice, (B, T, h, w) or (N, h, w), h = input_size / 2**len(features)."""
        one_stack = x.dim() == 4
        if one_stack:
            x = x.unsqueeze(0)
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise InvalidInputError(
                None,
                f"SliceClassifier expects (N, {self.in_channels}, H, "
                f"W) or (B, T, {self.in_channels}, H, W) input, not "
                f"{tuple(x.shape)}",
            )
        b, t = x.shape[:2]
        flat = x.reshape(b * t, *x.shape[2:])
        if flat.shape[-2:] != (self.input_size, self.input_size):
            flat = F.adaptive_avg_pool2d(flat, self.input_size)
        # each slice with its neighbours at z_offsets as channels (edges repeated)
        stack = flat.reshape(b, t, *flat.shape[1:])
        near = [torch.arange(t, device=x.device).add(o).clamp(0, t - 1) for o in self.z_offsets]
        flat = torch.cat([stack[:, i] for i in near], dim=2).reshape(b * t, -1, *flat.shape[2:])
        flat = torch.cat([((flat - lo) / (hi - lo)).clamp(0, 1) for lo, hi in self.windows], 1)
        emb, maps = self.encoder(flat)
        emb = emb.reshape(b, t, -1)
        maps = self.locator(maps).reshape(b, t, *maps.shape[-2:])
        context, _ = self.gru(emb)
        logits = self.head(self.dropout(torch.cat([emb, context], dim=2)))
        if self.map_evidence:
            # the localiser's evidence goes straight into "lesion": a soft maximum over the
            # cells, so a slice is positive where some cell is, and Grad-CAM follows the map
            cells = maps.flatten(2)
            soft_max = (torch.logsumexp(4.0 * cells, dim=2) - math.log(cells.shape[2])) / 4.0
            logits = torch.cat(
                [logits[..., :1], logits[..., 1:2] + soft_max[..., None], logits[..., 2:]], dim=2
            )
        return (logits[0], maps[0]) if one_stack else (logits, maps)

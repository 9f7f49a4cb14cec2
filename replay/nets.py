"""Building blocks shared by generators and models: MLPs, gated MLP decoders, the conv stack of the CIFAR protocol."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from replay.errors import UserInputError

CONV_CHANNELS = (16, 32, 64, 128, 256)


def mlp(sizes: Sequence[int], last_activation: bool = True) -> nn.Sequential:
    """Linear layers with ReLU between them (and after the last one when ``last_activation``)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def random_gate_masks(n_contexts: int, units: int, gate_prop: float, generator: torch.Generator) -> Tensor:
    """Fixed 0/1 masks, one row per context; each unit is silenced with probability ``gate_prop``."""
    return (torch.rand(n_contexts, units, generator=generator) >= gate_prop).float()


class GatedMLPDecoder(nn.Module):
    """z -> hidden layers -> output, with context gates on the first and hidden layers (not the output layer).

    ``gate`` is a [batch, n_contexts] tensor: one-hot rows give each context's fixed mask, probability rows
    give the probability-weighted mask (BI-R's soft gating of replayed samples). Without gates it is a plain
    MLP decoder.
    """

    def __init__(self, latent_dim: int, hidden: Sequence[int], out_features: int,
                 n_contexts: int = 0, gate_prop: float = 0.0, seed: int = 0):
        super().__init__()
        sizes = [latent_dim, *reversed(list(hidden))]
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(sizes[-1], out_features)
        self.gated = n_contexts > 0 and gate_prop > 0
        generator = torch.Generator().manual_seed(seed)
        for i, layer in enumerate(self.hidden_layers):
            masks = random_gate_masks(n_contexts, layer.out_features, gate_prop, generator) if self.gated else torch.ones(0)
            self.register_buffer(f"gate_masks_{i}", masks)

    def gate_masks(self) -> list[Tensor]:
        return [getattr(self, f"gate_masks_{i}") for i in range(len(self.hidden_layers))]

    def forward(self, z: Tensor, gate: Optional[Tensor] = None) -> Tensor:
        h = z
        for layer, masks in zip(self.hidden_layers, self.gate_masks()):
            h = torch.relu(layer(h))
            if self.gated:
                if gate is None:
                    raise UserInputError("this decoder is gated: pass the context (one-hot or probabilities) as gate")
                h = h * (gate @ masks)
        return self.output(h)


def conv_stack(in_channels: int = 3, channels: Sequence[int] = CONV_CHANNELS) -> nn.Sequential:
    """The CIFAR protocol's conv layers: 3x3, stride 1 then 2, batch-norm + ReLU on all but the last (32x32 -> 256x2x2)."""
    layers: list[nn.Module] = []
    previous = in_channels
    for i, width in enumerate(channels):
        last = i == len(channels) - 1
        layers.append(nn.Conv2d(previous, width, 3, stride=1 if i == 0 else 2, padding=1))
        if not last:
            layers += [nn.BatchNorm2d(width), nn.ReLU()]
        previous = width
    return nn.Sequential(*layers)


def deconv_stack(out_channels: int = 3, channels: Sequence[int] = CONV_CHANNELS) -> nn.Sequential:
    """Mirror of ``conv_stack``: 256x2x2 -> out_channels x32x32 (transposed convs, BN + ReLU between)."""
    widths = list(reversed(channels))
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1), nn.BatchNorm2d(n_out), nn.ReLU()]
    layers.append(nn.Conv2d(widths[-1], out_channels, 3, padding=1))
    return nn.Sequential(*layers)

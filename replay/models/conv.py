"""The frozen convolutional feature extractor of the CIFAR protocol (docs/protocols.md) and its loading."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from replay.nets import conv_stack


class ConvFeatureExtractor(nn.Module):
    """5 conv layers (16-32-64-128-256, 3x3, stride 2 in layers 2-5): 3x32x32 -> 1024 features.

    When ``frozen`` it stays in eval mode (batch-norm statistics fixed) whatever ``train()`` is called with,
    and its parameters take no gradient: internal replay relies on a fixed feature space.

    Args:
        in_channels: channels of the input images.
        frozen: freeze the parameters and keep eval mode.
    """

    out_features = 1024

    def __init__(self, in_channels: int = 3, frozen: bool = False):
        super().__init__()
        self.layers = conv_stack(in_channels)
        self.frozen = False
        if frozen:
            self.freeze()

    def freeze(self) -> "ConvFeatureExtractor":
        self.frozen = True
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "ConvFeatureExtractor":
        return super().train(mode and not self.frozen)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x).flatten(1)

    @classmethod
    def load_frozen(cls, path: Path | str) -> "ConvFeatureExtractor":
        """Load pre-trained conv weights saved by ``replay-bench pretrain-conv``, frozen."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"conv weights {path} not found; create them with 'replay-bench pretrain-conv --out {path}'"
            )
        extractor = cls()
        extractor.layers.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return extractor.freeze()

"""The solver of GR and the baselines: an MLP classifier, optionally behind a frozen conv extractor."""
from __future__ import annotations

import math
from typing import Optional, Sequence

from torch import Tensor, nn

from replay.nets import mlp


class MLPClassifier(nn.Module):
    """[frozen conv features ->] flatten -> hidden ReLU layers -> class scores (MNIST: 784-400-400-10).

    With a ``feature_extractor``, ``forward`` takes images or their features (rows of ``out_features``, as
    ``FeatureCache`` hands them out).

    Args:
        input_shape: shape of one input, without the batch dimension.
        n_classes: output units.
        hidden: widths of the hidden layers.
        feature_extractor: frozen conv layers before the MLP (``out_features`` attribute), or None.
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, hidden: Sequence[int] = (400, 400),
                 feature_extractor: Optional[nn.Module] = None):
        super().__init__()
        self.feature_extractor = feature_extractor
        n_in = feature_extractor.out_features if feature_extractor is not None else math.prod(input_shape)
        self.body = nn.Sequential(nn.Flatten(), mlp([n_in, *hidden]))
        self.head = nn.Linear(hidden[-1], n_classes)

    def forward(self, x: Tensor) -> Tensor:
        if self.feature_extractor is not None and x.dim() > 2:
            x = self.feature_extractor(x)
        return self.head(self.body(x))

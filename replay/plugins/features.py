"""Frozen conv features computed once per experience and reused by every iteration and every evaluation.

On split CIFAR-100 the conv layers are pre-trained and frozen (eval mode, no augmentation), so the features of an
image never change. ``FeatureCache`` runs them over an experience's images once, keeps the features on the
device and hands out mini-batches of features: the model (``MLPClassifier`` or ``BIRModel`` with the same frozen
extractor) takes them in place of the images and skips its conv pass. Test features are computed at the first
evaluation of each experience and kept for the later ones. Only the numerics of batched matrix products differ
from running the conv layers per mini-batch (``tests/test_feature_cache.py`` checks the equality to float
tolerance). Memory: 4 bytes x ``out_features`` per image (CIFAR: 1024 features, 4 KiB per image: 20 MiB for an
experience of 5000 training images, 40 MiB for the 10,000 test images), plus the experience's images for GR.
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch import Tensor, nn

from avalanche.training.plugins import SupervisedPlugin

from replay.plugins.protocol import TensorBatches, materialize
from replay.random_state import preserved_rng


class SequentialBatches:
    """All rows of some tensors in order, ``batch_size`` at a time (evaluation)."""

    def __init__(self, tensors: tuple[Tensor, ...], batch_size: int):
        self.tensors, self.batch_size = tensors, batch_size

    def __len__(self) -> int:
        return -(-len(self.tensors[0]) // self.batch_size)

    def __iter__(self) -> Iterator:
        for start in range(0, len(self.tensors[0]), self.batch_size):
            yield tuple(t[start:start + self.batch_size] for t in self.tensors)


class FeatureCache(SupervisedPlugin):
    """Replaces the train and eval loaders by mini-batches of frozen conv features computed once.

    Put it where ``InMemoryBatches`` would go (before ``IterationBudget``). The strategy's model must accept
    features in place of images (``MLPClassifier`` and ``BIRModel`` do when built with the same extractor).
    ``GenerativeReplayPlugin`` finds the cache among the strategy's plugins: its generator still models the
    images (``batch_images``), and its replay is turned into features once (``features``) for the frozen and
    the current solver.

    Args:
        extractor: the frozen feature extractor (eval mode, no gradients).
        batch_size: images per forward pass when computing features.
    """

    def __init__(self, extractor: nn.Module, batch_size: int = 1000):
        super().__init__()
        self.extractor, self.batch_size = extractor, batch_size
        self._loader: Optional[TensorBatches] = None
        self._images: Optional[Tensor] = None
        self._test: dict[tuple[str, int], tuple[Tensor, ...]] = {}

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """Features of a batch of images (or the rows unchanged when they are features already)."""
        if images.dim() == 2:
            return images
        return torch.cat([self.extractor(chunk) for chunk in images.split(self.batch_size)])

    def batch_images(self) -> Tensor:
        """The images of the current training mini-batch (the loader yields their features)."""
        return self._images[self._loader.last_rows]

    def before_training_exp(self, strategy, **kwargs):
        self.extractor.to(strategy.device)
        images, *rest = materialize(strategy.adapted_dataset, strategy.device)
        self._images = images
        self._loader = TensorBatches((self.features(images), *rest), strategy.train_mb_size)
        strategy.dataloader = self._loader

    def before_eval_exp(self, strategy, **kwargs):
        experience = strategy.experience
        key = (experience.origin_stream.name, experience.current_experience)
        # A data loader draws from the global random stream when it starts; start the strategy's own one too, so
        # that the run's random stream, and with it every later result, is the same with the cache or without.
        next(iter(strategy.dataloader), None)
        if key not in self._test:
            self.extractor.to(strategy.device)
            with preserved_rng():
                images, *rest = materialize(strategy.adapted_dataset, strategy.device)
            self._test[key] = (self.features(images), *rest)
        strategy.dataloader = SequentialBatches(self._test[key], strategy.eval_mb_size)

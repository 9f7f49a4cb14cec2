"""Synthetic data for tests: Gaussian blobs and CIFAR files in torchvision's real on-disk format."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from scenarios.data import write_cifar


def blobs(n_classes: int, per_class: int, dim: int, seed: int, n_test: int = 50, spread: float = 4.0):
    """Well-separated Gaussian clusters squashed into [0, 1] (so a Bernoulli VAE can model them).

    Returns ((train_x, train_y), (test_x, test_y)) drawn around the same centres.
    """
    generator = torch.Generator().manual_seed(seed)
    centres = spread * torch.randn(n_classes, dim, generator=generator)

    def draw(per):
        y = torch.arange(n_classes).repeat_interleave(per)
        return torch.sigmoid(centres[y] + torch.randn(len(y), dim, generator=generator)), y

    return draw(per_class), draw(n_test)


def synthetic_cifar(root, name, n_classes, per_class, seed=0):
    rng = np.random.default_rng(seed)
    for train, count in ((True, per_class), (False, max(per_class // 4, 1))):
        labels = np.repeat(np.arange(n_classes), count)
        images = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
        write_cifar(name, root, images, labels, train)


def accept_synthetic_cifar(monkeypatch) -> None:
    """Let torchvision's CIFAR loaders (used by Avalanche's stock benchmarks) read synthetic files, whose md5
    sums cannot match the real archive's."""
    from torchvision.datasets import CIFAR10, cifar
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)  # CIFAR100 inherits it
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: True)  # the meta file's check


#: Ray Tune is the package's ``sweep`` extra (the ``test`` extra installs it): the sweep tests skip where it is absent
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray Tune (the sweep extra) is not installed")

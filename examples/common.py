"""What the example pipelines share: their command line and the loop a user writes around a strategy."""
from __future__ import annotations

import argparse
from typing import NamedTuple, Sequence

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import InteractiveLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torchvision.transforms import Compose


def arguments(description: str) -> argparse.ArgumentParser:
    """The examples' command line: data root, iterations per experience, seed, quiet."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default="data", help="dataset root (MNIST/CIFAR in torchvision's layout)")
    parser.add_argument("--iterations", type=int, default=2000, help="training iterations per experience")
    parser.add_argument("--seed", type=int, default=0, help="seed of the class order and of torch")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def split_mnist_arguments(description: str) -> argparse.ArgumentParser:
    """The examples' command line plus ``--unit-pixels``, for the MNIST pipelines."""
    parser = arguments(description)
    parser.add_argument("--unit-pixels", action="store_true",
                        help="replace the benchmark's default normalisation by nothing: pixels in [0, 1], as in the "
                             "reference protocol (docs/pipelines.md)")
    return parser


#: how the examples name the pixels they train on (by ``--unit-pixels``)
UNIT_PIXELS = {False: "", True: " (pixels in [0, 1])"}


def mnist_transforms(unit_pixels: bool) -> dict:
    """Transform arguments of Avalanche's MNIST benchmarks: none (their default normalisation), or empty
    transforms that keep the pixels in [0, 1]."""
    return {"train_transform": Compose([]), "eval_transform": Compose([])} if unit_pixels else {}


def evaluator(quiet: bool) -> EvaluationPlugin:
    """Accuracy per experience and over the stream, on Avalanche's interactive logger (or none)."""
    return EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                            loggers=[] if quiet else [InteractiveLogger()])


def naive(model: torch.nn.Module, lr: float, batch_size: int, plugins: Sequence[SupervisedPlugin], quiet: bool) -> Naive:
    """Avalanche's ``Naive`` with Adam, one epoch per ``train`` call (the iteration budget sets its length)."""
    return Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=lr), train_mb_size=batch_size,
                 train_epochs=1, eval_mb_size=1000, evaluator=evaluator(quiet), plugins=list(plugins))


class FinalAccuracy(NamedTuple):
    """Accuracy after the last experience: over the whole test stream (each test sample counts once), and the mean
    of the per-experience accuracies (each experience counts once: the "average accuracy" of continual learning)."""

    stream: float
    average: float


def report(strategy, benchmark, label: str) -> FinalAccuracy:
    """``train_and_evaluate``, then one line: the label, the stream accuracy and the average over experiences."""
    accuracy = train_and_evaluate(strategy, benchmark)
    print(f"{label}: stream accuracy {accuracy.stream:.4f}, average over experiences {accuracy.average:.4f}")
    return accuracy


def train_and_evaluate(strategy, benchmark) -> FinalAccuracy:
    """Train on every experience in order, then evaluate on the whole test stream."""
    for experience in benchmark.train_stream:
        strategy.train(experience)
    metrics = strategy.eval(benchmark.test_stream)
    # stock benchmarks name the task in the keys (".../test_stream/Task000"), the project's streams do not
    (key,) = [k for k in metrics if k.startswith("Top1_Acc_Stream/eval_phase/test_stream")]
    per_experience = [float(v) for k, v in metrics.items() if k.startswith("Top1_Acc_Exp/eval_phase/test_stream")]
    return FinalAccuracy(float(metrics[key]), sum(per_experience) / len(per_experience))

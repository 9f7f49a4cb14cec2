#!/usr/bin/env python3
"""Time per training iteration: Avalanche's stock SplitMNIST vs our in-memory split MNIST stream.

Same model (MLP 784-400-400-10), batch 128, Adam 1e-3, Avalanche's ``Naive`` strategy, first experience,
``--iterations`` timed after a warm-up. Three loaders: stock SplitMNIST (PIL images, per-sample ToTensor),
our stream through Avalanche's default loader, our stream with ``InMemoryBatches``. Prints ms/iteration and
the ratio against the stock stream. Run it on an otherwise idle machine.

    python scripts/bench_stream.py [--iterations 300] [--root data]
"""
from __future__ import annotations

import argparse
import time

import torch
from avalanche.benchmarks.classic import SplitMNIST
from avalanche.training import Naive

from replay.models import MLPClassifier
from replay.plugins import InMemoryBatches, IterationBudget
from scenarios.data import fetch_mnist
from scenarios.streams import split_mnist


def time_per_iteration(experience, iterations: int, in_memory: bool) -> float:
    torch.manual_seed(0)
    model = MLPClassifier((1, 28, 28), 10, (400, 400))
    plugins = [InMemoryBatches()] if in_memory else []
    timings = []
    for budget in (20, iterations):  # warm-up, then the timed run
        strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), train_mb_size=128,
                         train_epochs=1, plugins=[*plugins, IterationBudget(budget)], evaluator=None)
        start = time.perf_counter()
        strategy.train(experience)
        timings.append((time.perf_counter() - start) / budget)
    return timings[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--root", default="data")
    args = parser.parse_args()
    fetch_mnist(args.root)
    stock = SplitMNIST(n_experiences=5, seed=0, dataset_root=args.root)
    ours = split_mnist(5, seed=0, root=args.root)
    rows = [
        ("Avalanche SplitMNIST (stock)", time_per_iteration(stock.train_stream[0], args.iterations, False)),
        ("ours, Avalanche's default loader", time_per_iteration(ours.train_stream[0], args.iterations, False)),
        ("ours, InMemoryBatches", time_per_iteration(ours.train_stream[0], args.iterations, True)),
    ]
    base = rows[0][1]
    print(f"threads={torch.get_num_threads()} iterations={args.iterations} batch=128 MLP 784-400-400-10")
    for name, seconds in rows:
        print(f"{name:36s} {seconds * 1e3:7.2f} ms/iteration   speed-up x{base / seconds:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Cost of drawing replay per iteration against drawing it several iterations at a time (``ReplayPool``).

Builds a split-MNIST run (the protocol's networks), trains its first experience briefly so that frozen networks
exist, then times the replay plugin's draw through ``ReplayPool(chunk)`` for each chunk size: the same
``--takes`` batches of ``--batch`` samples each, under the precision asked for. Prints milliseconds per
batch and the ratio to ``chunk = 1`` (one draw per iteration) measured in the same process; the chunk sizes
are interleaved over ``--repeats`` passes, so that a change of the machine's speed hits them alike. Run on an
otherwise idle machine.

    python scripts/bench_replay_chunk.py [--methods bir gr] [--precision bf16] [--chunks 1 4 16 64]
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import torch

from replay.bench.config import resolve
from replay.bench.experiment import build_experiment
from replay.methods.lifecycle import ReplayPool
from scenarios.data import fetch_mnist

PRIORS = {"bir": "gmm", "gr": "gaussian"}


def replay_draw(method: str, root: str, out: str) -> Callable[[int], object]:
    """The replay plugin's draw function as at the start of the second experience (frozen networks in place)."""
    config = resolve({"method": {"name": method}, "prior": {"name": PRIORS[method]}, "seed": 0,
                      "stream": {"root": root}, "iterations_per_experience": 20, "progress": False,
                      "replay_quality": False})
    experiment = build_experiment(config, Path(out))
    strategy, (first, second) = experiment.strategy, experiment.benchmark.train_stream[:2]
    strategy.train(first)
    replay = strategy.replay_plugin.method
    replay.classes.start(second.classes_in_this_experience, strategy.device)
    return replay.draw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["bir", "gr"], choices=list(PRIORS))
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--chunks", nargs="+", type=int, default=[1, 4, 16, 64])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--takes", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", default="data")
    args = parser.parse_args()
    if 1 not in args.chunks:
        parser.error("--chunks must include 1, the baseline")
    fetch_mnist(args.root)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext
    print(f"threads={torch.get_num_threads()} precision={args.precision} batch={args.batch} takes={args.takes}")
    for method in args.methods:
        with tempfile.TemporaryDirectory() as out:
            draw = replay_draw(method, args.root, out)
        times: dict[int, list[float]] = defaultdict(list)
        for _ in range(args.repeats):
            for chunk in args.chunks:
                pool = ReplayPool(chunk)
                with torch.no_grad(), autocast():
                    start = time.perf_counter()
                    for _ in range(args.takes):
                        pool.take(args.batch, draw)
                    times[chunk].append((time.perf_counter() - start) / args.takes * 1000)
        base = statistics.median(times[1])
        print(f"{method}: " + "; ".join(
            f"chunk {chunk}: {statistics.median(ms):.3f} ms per batch (x{base / statistics.median(ms):.2f})"
            for chunk, ms in times.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

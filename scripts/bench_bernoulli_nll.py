#!/usr/bin/env python3
"""Forward + backward time of our Bernoulli NLL against torch's ``binary_cross_entropy_with_logits``.

Same inputs, same process, alternating rounds; prints the median time of each and the ratio. The default shape is
one BI-R replay iteration's reconstruction on split MNIST (256 samples x 784 pixels). Run it on an idle machine.

    python scripts/bench_bernoulli_nll.py [--batch 256] [--units 784] [--rounds 7] [--repeats 200]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from torch.nn import functional as F

from replay.generators import Bernoulli


def seconds_per_call(step: Callable[[], None], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--units", type=int, default=784)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.manual_seed(0)
    logits = (torch.randn(args.batch, args.units) * 4).requires_grad_()
    target = torch.rand(args.batch, args.units)

    def ours() -> None:
        Bernoulli.nll(logits, target, "mean").mean().backward()

    def torch_builtin() -> None:
        F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1).mean().backward()

    times: dict[str, list[float]] = {"torch": [], "ours": []}
    for step in (torch_builtin, ours):  # warm-up
        seconds_per_call(step, 10)
    for _ in range(args.rounds):
        times["torch"].append(seconds_per_call(torch_builtin, args.repeats))
        times["ours"].append(seconds_per_call(ours, args.repeats))
    median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    print(f"threads={torch.get_num_threads()} shape={args.batch}x{args.units}, forward + backward, median of "
          f"{args.rounds} rounds x {args.repeats} calls")
    print(f"torch binary_cross_entropy_with_logits: {median['torch']:.3f} ms; ours: {median['ours']:.3f} ms; "
          f"ratio ours/torch {median['ours'] / median['torch']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

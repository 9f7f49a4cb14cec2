#!/usr/bin/env python3
"""Per-iteration cost of ReplayLossMetric's bookkeeping (``TermSums``), in its two modes, against reading every
term as a float each iteration (the baseline).

The terms are BI-R's six named losses of a replay iteration (scalar tensors; the classification ones of shape (1,)
as Avalanche's strategy loss is). ``floats`` mode is what the metric uses on the CPU; ``on_device`` (stack on the
device, read once per window) what it uses on an accelerator, where each float read would be a sync. Prints
microseconds per iteration, ratios against the baseline, and each as a share of a 12.6 ms BI-R iteration (bf16,
split MNIST, docs/speed.md). Run it on an otherwise idle machine.

    python scripts/bench_loss_metric.py [--iterations 20000] [--every 100] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch

from replay.metrics import TermSums

NAMES = ("classification_current", "recon_current", "reg_current", "classification_replay", "recon_replay",
         "reg_replay")


def per_iteration_us(step, iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - start) / iterations * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    terms = {name: torch.rand((1,) if name.startswith("classification") else (), device=device) for name in NAMES}

    def read_floats():
        return {name: float(value) for name, value in terms.items()}

    def bookkeeping(on_device: bool):
        window = [TermSums(on_device)]

        def step():
            window[0].add(terms)
            if window[0].iterations == args.every:
                window[0].sums()
                window[0] = TermSums(on_device)
        return step

    for _ in range(2):  # alternated, so that drift shows
        baseline = per_iteration_us(read_floats, args.iterations)
        line = [f"floats every iteration {baseline:.1f} us"]
        for mode in (False, True):
            cost = per_iteration_us(bookkeeping(mode), args.iterations)
            line.append(f"TermSums({'on_device' if mode else 'floats'}) {cost:.1f} us (x{cost / baseline:.2f}, "
                        f"{cost / 12.6e3:.2%} of a BI-R iteration)")
        print("; ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

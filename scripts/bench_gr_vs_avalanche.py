#!/usr/bin/env python3
"""Side by side on split MNIST (5 experiences): Avalanche 0.6's own ``GenerativeReplay`` (its defaults) vs ours.

Both use the same solver (MLP 784-400-400-10, Adam 1e-3, batch 128). Avalanche's strategy trains
``--epochs`` epochs per experience (21 by default, about 2000 iterations, as ours) with its
default generator; ours (``replay-bench``'s GR with the Gaussian prior, the split-MNIST protocol) trains the same
number of solver iterations as Avalanche's run did on average per experience. Prints final average
accuracy (class-incremental, after the last experience), wall time per training iteration of each, and
their ratio. Run it on an otherwise idle machine.

    python scripts/bench_gr_vs_avalanche.py [--epochs 21] [--seed 0] [--root data] [--precisions fp32 bf16]
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from replay.bench.config import resolve
from replay.bench.runner import run
from yardstick import AVALANCHE_EPOCHS, run_avalanche_gr
from scenarios.data import fetch_mnist


def run_ours(iterations: int, seed: int, root: str, precision: str) -> dict:
    config = resolve({"method": {"name": "gr"}, "prior": {"name": "gaussian"}, "stream": {"root": root},
                      "iterations_per_experience": iterations, "seed": seed, "progress": False,
                      "precision": precision, "replay_quality": False})
    with tempfile.TemporaryDirectory() as out:
        result = run(config, out)
    return {"accuracy": result["final_average_accuracy"], "train_seconds": result["total_train_seconds"],
            "iterations": iterations * 5}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=AVALANCHE_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default="data")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                        help="precisions of our runs (Avalanche's always runs in fp32)")
    args = parser.parse_args()
    fetch_mnist(args.root)
    theirs = run_avalanche_gr(args.epochs, args.seed, args.root)
    runs = [("Avalanche GenerativeReplay", theirs)]
    for precision in args.precisions:
        runs.append((f"replay GR (gaussian) {precision}", run_ours(round(theirs["iterations"] / 5), args.seed,
                                                                   args.root, precision)))
    print(f"threads={torch.get_num_threads()} seed={args.seed}")
    for name, r in runs:
        print(f"{name:32s} final avg acc {r['accuracy']:.4f}  train {r['train_seconds']:7.1f} s  "
              f"{r['iterations']} solver iterations  {1e3 * r['train_seconds'] / r['iterations']:6.2f} ms/iteration")
    for name, ours in runs[1:]:
        ratio = (ours["train_seconds"] / ours["iterations"]) / (theirs["train_seconds"] / theirs["iterations"])
        print(f"time per iteration, {name} / Avalanche's: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

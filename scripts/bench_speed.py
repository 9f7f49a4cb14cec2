#!/usr/bin/env python3
"""Wall time of the full split-MNIST protocol (5 x 2000 iterations, batch 128) for our GR and BI-R.

Prints the training time, iterations/s and the ratio against the reference code's figures measured on this
project's machines (REFERENCE.md section 5: BI-R 213 s for the whole run, about 47 it/s; GR about 40 it/s).
Those reference figures are constants from the card (the reference code is not run here). Run it on an
otherwise idle machine.

    python scripts/bench_speed.py [--methods bir gr] [--seed 1] [--root data]
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from replay.bench.config import resolve
from replay.bench.runner import run

REFERENCE = {"bir": {"prior": "gmm", "seconds": 213.0, "its": 47.0}, "gr": {"prior": "gaussian", "seconds": None, "its": 40.0}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["bir", "gr"], choices=list(REFERENCE))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--root", default="data")
    args = parser.parse_args()
    print(f"threads={torch.get_num_threads()}")
    for method in args.methods:
        reference = REFERENCE[method]
        config = resolve({"method": {"name": method}, "prior": {"name": reference["prior"]}, "seed": args.seed,
                          "stream": {"root": args.root}, "iterations_per_experience": args.iterations, "progress": False})
        with tempfile.TemporaryDirectory() as out:
            result = run(config, out)
        seconds, its = result["total_train_seconds"], result["iterations_per_second"]
        ref_seconds = reference["seconds"] or 5 * args.iterations / reference["its"]
        print(f"{method}: train {seconds:.1f} s ({its:.1f} it/s), per experience "
              f"{[round(s, 1) for s in result['train_seconds_per_experience']]}; final avg acc "
              f"{result['final_average_accuracy']:.4f}; reference code {ref_seconds:.0f} s ({reference['its']:.0f} it/s): "
              f"x{ref_seconds / seconds:.2f} faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

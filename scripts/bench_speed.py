#!/usr/bin/env python3
"""Wall time of the full split-MNIST protocol (5 x 2000 iterations, batch 128) for our GR and BI-R.

Prints the training time, iterations/s, the whole protocol's wall time (training plus the evaluation after
every experience) and its ratio against the reference code's figures measured on this project's machines
(REFERENCE.md section 5: BI-R 213 s for the whole run, about 47 it/s; GR about 40 it/s, i.e. about 250 s).
Those reference figures are constants from the card (the reference code is not run here). With several
``--precisions`` each method also runs in each, and the later ones print their speed-up over the first run
of the same command. ``--hidden 8 8 --latent-dim 4`` shrinks the networks so that the matrix products cost
almost nothing: what is left is the pipeline's overhead (framework, element-wise ops, the 784-pixel loss).
Run it on an otherwise idle machine.

    python scripts/bench_speed.py [--methods bir gr] [--precisions fp32 bf16] [--seed 1] [--root data]
                                  [--iterations 2000] [--hidden 400 400] [--latent-dim 100]
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from replay.bench.config import resolve
from replay.bench.runner import run

DEFAULT_HIDDEN, DEFAULT_LATENT = [400, 400], 100
REFERENCE = {"bir": {"prior": "gmm", "seconds": 213.0, "its": 47.0}, "gr": {"prior": "gaussian", "seconds": None, "its": 40.0}}


def against_reference(reference: dict, args: argparse.Namespace, seconds: float) -> str:
    """The reference code's time for the same protocol (scaled to the iterations asked for), and our speed-up."""
    if args.hidden != DEFAULT_HIDDEN or args.latent_dim != DEFAULT_LATENT:
        return "no reference figure (the networks differ from the reference's)"
    iterations = 5 * args.iterations
    ref_seconds = reference["seconds"] * args.iterations / 2000 if reference["seconds"] else iterations / reference["its"]
    return f"reference code {ref_seconds:.0f} s ({reference['its']:.0f} it/s): x{ref_seconds / seconds:.2f} faster"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["bir", "gr"], choices=list(REFERENCE))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--root", default="data")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--hidden", nargs="+", type=int, default=DEFAULT_HIDDEN)
    parser.add_argument("--latent-dim", type=int, default=DEFAULT_LATENT)
    args = parser.parse_args()
    print(f"threads={torch.get_num_threads()} hidden={args.hidden} latent={args.latent_dim} "
          f"iterations/experience={args.iterations}")
    for method in args.methods:
        reference = REFERENCE[method]
        baseline = None
        for precision in args.precisions:
            config = resolve({"method": {"name": method}, "prior": {"name": reference["prior"]}, "seed": args.seed,
                              "stream": {"root": args.root}, "iterations_per_experience": args.iterations,
                              "progress": False, "precision": precision,
                              "model": {"hidden": args.hidden, "latent_dim": args.latent_dim}})
            with tempfile.TemporaryDirectory() as out:
                result = run(config, out)
            seconds, its = result["total_seconds"], result["iterations_per_second"]
            baseline = baseline or (precision, seconds)
            versus = f"; x{baseline[1] / seconds:.2f} against {baseline[0]}" if baseline[0] != precision else ""
            print(f"{method} {precision}: whole protocol {seconds:.1f} s, of which training "
                  f"{result['total_train_seconds']:.1f} s ({its:.1f} it/s), per experience "
                  f"{[round(s, 1) for s in result['train_seconds_per_experience']]}; final avg acc "
                  f"{result['final_average_accuracy']:.4f}; {against_reference(reference, args, seconds)}{versus}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

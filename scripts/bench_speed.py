#!/usr/bin/env python3
"""Wall time of the full split-MNIST protocol (5 x 2000 iterations, batch 128) for our GR and BI-R, against the
reference code's time scaled to this machine today.

The reference code is not run here; its times are on the card (REFERENCE.md section 5: BI-R 213 s for the
whole run, GR about 40 it/s, i.e. about 250 s), measured on another day beside Avalanche's ``GenerativeReplay``
(264 s). Each round runs that yardstick first (``replay.bench.yardstick``: Avalanche's GR in the card's setting),
then each method in each precision; the card's reference times scaled by the yardstick (reference x
Avalanche here / Avalanche on the card) estimate what the reference code would take here now, and each of our
runs prints its speed-up over that estimate, and over the card's raw figure. Our machines' speed drifts within
a session too, so ``--rounds`` repeats the whole sequence (yardstick included) and the last line gives the
median speed-up of each run over the rounds. ``--no-yardstick`` skips it (ratios then only against the card's
constants). ``--hidden 8 8 --latent-dim 4`` shrinks the networks so that the matrix products cost almost
nothing: what is left is the pipeline's overhead (no reference figure then). With a checkout of the reference
code, ``--reference-command`` (one method only; run in ``--reference-cwd``) times its run in every round and
the speed-up is taken over that measured time instead. Run on an otherwise idle machine.

    python scripts/bench_speed.py [--methods bir gr] [--precisions fp32 bf16] [--rounds 1] [--no-yardstick]
                                  [--reference-command CMD --reference-cwd DIR]
                                  [--seed 1] [--root data] [--iterations 2000] [--hidden 400 400] [--latent-dim 100]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import defaultdict
from typing import Optional

import torch

from replay.bench.config import resolve
from replay.bench.runner import run
from replay.bench.yardstick import CARD_SECONDS, run_avalanche_gr, scaled_reference, time_command
from scenarios.data import fetch_mnist

DEFAULT_HIDDEN, DEFAULT_LATENT = [400, 400], 100
PRIORS = {"bir": "gmm", "gr": "gaussian"}


def reference_seconds(method: str, args: argparse.Namespace) -> Optional[float]:
    """The card's reference time for the protocol asked for (scaled to its iterations); None for other networks."""
    if args.hidden != DEFAULT_HIDDEN or args.latent_dim != DEFAULT_LATENT:
        return None
    return CARD_SECONDS[f"reference_{method}"] * args.iterations / 2000


def run_ours(method: str, precision: str, args: argparse.Namespace) -> dict:
    config = resolve({"method": {"name": method}, "prior": {"name": PRIORS[method]}, "seed": args.seed,
                      "stream": {"root": args.root}, "iterations_per_experience": args.iterations,
                      "progress": False, "precision": precision,
                      "model": {"hidden": args.hidden, "latent_dim": args.latent_dim}})
    with tempfile.TemporaryDirectory() as out:
        return run(config, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["bir", "gr"], choices=list(PRIORS))
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-yardstick", dest="yardstick", action="store_false")
    parser.add_argument("--reference-command", help="shell command running the reference code's protocol, timed each round")
    parser.add_argument("--reference-cwd", help="folder to run --reference-command in (the reference's checkout)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--root", default="data")
    parser.add_argument("--hidden", nargs="+", type=int, default=DEFAULT_HIDDEN)
    parser.add_argument("--latent-dim", type=int, default=DEFAULT_LATENT)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.reference_command and len(args.methods) != 1:
        parser.error("--reference-command times one method's reference run: give --methods with a single method")
    fetch_mnist(args.root)
    print(f"threads={torch.get_num_threads()} hidden={args.hidden} latent={args.latent_dim} "
          f"iterations/experience={args.iterations} rounds={args.rounds}", flush=True)
    speedups: dict[str, list[float]] = defaultdict(list)
    for round_ in range(1, args.rounds + 1):
        avalanche = measured = None
        if args.reference_command:
            measured = time_command(args.reference_command, args.reference_cwd)
            print(f"round {round_}: reference code, measured here: {measured:.1f} s", flush=True)
        if args.yardstick:
            avalanche = run_avalanche_gr(root=args.root)["seconds"]
            print(f"round {round_}: yardstick, Avalanche GR (card's setting): {avalanche:.1f} s here, "
                  f"{CARD_SECONDS['avalanche_gr']:.0f} s on the card's machine: this machine runs "
                  f"x{CARD_SECONDS['avalanche_gr'] / avalanche:.2f} the card's speed", flush=True)
        for method in args.methods:
            for precision in args.precisions:
                result = run_ours(method, precision, args)
                seconds, reference = result["total_seconds"], reference_seconds(method, args)
                line = (f"round {round_}: {method} {precision}: whole protocol {seconds:.1f} s, training "
                        f"{result['total_train_seconds']:.1f} s ({result['iterations_per_second']:.1f} it/s), "
                        f"per experience {[round(s, 1) for s in result['train_seconds_per_experience']]}; "
                        f"final avg acc {result['final_average_accuracy']:.4f}")
                if reference is None:
                    line += "; no reference figure (the networks differ from the reference's)"
                else:
                    line += f"; reference code on the card {reference:.0f} s: x{reference / seconds:.2f}"
                    if avalanche is not None:
                        estimate = scaled_reference(reference, avalanche)
                        line += f", scaled to this machine now (estimate) {estimate:.0f} s: x{estimate / seconds:.2f}"
                        if measured is None:
                            speedups[f"{method} {precision}"].append(estimate / seconds)
                if measured is not None:
                    speedups[f"{method} {precision}"].append(measured / seconds)
                    line += f"; reference code measured here {measured:.1f} s: x{measured / seconds:.2f}"
                print(line, flush=True)
    if speedups:
        against = "the measured reference run" if args.reference_command else "the scaled reference estimate"
        print(f"median speed-up over {against}: " + "; ".join(
            f"{name} x{statistics.median(values):.2f} ({len(values)} rounds)" for name, values in speedups.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

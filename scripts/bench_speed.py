#!/usr/bin/env python3
"""Wall time of the full split-MNIST protocol (5 x 2000 iterations, batch 128) for our GR and BI-R, against the
reference code: run in the same command where its checkout is at hand, else its measured time scaled to this machine.

With a checkout of the reference code, ``--reference-command`` (one method only; run in ``--reference-cwd``)
times its run in every round, output to a scratch file, and each of our runs is timed the same way, as a whole
``replay-bench run`` process (start-up, data loading and set-up included); the speed-up is the ratio of the
two, and our in-process ``total_seconds`` is printed beside. This is the measurement to trust.
Without it, the reference's times are those measured once (``scripts/yardstick.py``: BI-R 213 s for the whole run, GR
about 40 it/s, i.e. about 250 s), measured on another day beside Avalanche's ``GenerativeReplay`` (264 s).
Each round then runs that yardstick first (Avalanche's GR with 21 epochs per experience),
and the reference times scaled by it (reference x Avalanche here / Avalanche then) estimate
what the reference code would take here now; each of our runs prints its speed-up over that estimate, and
over the unscaled figure. ``--no-yardstick`` skips it (ratios then only against the unscaled figures).
Our machines' speed drifts within an hour too, so ``--rounds`` repeats the whole sequence and the last line
gives the median speed-up of each run over the rounds. ``--replay-chunks`` runs each method and precision with
each ``method.replay_chunk`` (replay drawn that many iterations at a time; 1, the default, draws every
iteration). ``--hidden 8 8 --latent-dim 4`` shrinks the networks so that the matrix products cost almost
nothing: what is left is the pipeline's overhead (no reference figure then). Run on an otherwise idle machine.

    python scripts/bench_speed.py [--methods bir gr] [--precisions fp32 bf16] [--replay-chunks 1 16]
                                  [--rounds 1] [--no-yardstick]
                                  [--reference-command CMD --reference-cwd DIR]
                                  [--seed 1] [--root data] [--iterations 2000] [--hidden 400 400] [--latent-dim 100]
"""
from __future__ import annotations

import argparse
import itertools
import json
import shlex
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Optional

import torch

from replay.bench.config import resolve
from replay.bench.runner import run
from yardstick import MEASURED_SECONDS, run_avalanche_gr, scaled_reference, time_command
from scenarios.data import fetch_mnist

DEFAULT_HIDDEN, DEFAULT_LATENT = [400, 400], 100
PRIORS = {"bir": "gmm", "gr": "gaussian"}


def reference_seconds(method: str, args: argparse.Namespace) -> Optional[float]:
    """The reference code's measured time for the protocol asked for (scaled to its iterations); None for other networks."""
    if args.hidden != DEFAULT_HIDDEN or args.latent_dim != DEFAULT_LATENT:
        return None
    return MEASURED_SECONDS[f"reference_{method}"] * args.iterations / 2000


def overrides(method: str, chunk: int, args: argparse.Namespace) -> dict:
    """The run configuration of one of our methods in this benchmark (before the precision is set)."""
    return {"method": {"name": method, "replay_chunk": chunk}, "prior": {"name": PRIORS[method]}, "seed": args.seed,
            "stream": {"root": args.root}, "iterations_per_experience": args.iterations, "progress": False,
            "replay_quality": False, "model": {"hidden": args.hidden, "latent_dim": args.latent_dim}}


def dotted(settings: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested settings as (dotted key, value) pairs, the form of ``replay-bench run --set``."""
    pairs = []
    for key, value in settings.items():
        if isinstance(value, dict):
            pairs += dotted(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def run_ours(method: str, precision: str, chunk: int, args: argparse.Namespace) -> dict:
    config = resolve({**overrides(method, chunk, args), "precision": precision})
    with tempfile.TemporaryDirectory() as out:
        return run(config, out)


def run_ours_process(method: str, precision: str, chunk: int, args: argparse.Namespace) -> tuple[float, dict]:
    """Our run as a whole ``replay-bench run`` process, timed like the reference's command; (seconds, result)."""
    sets = [f"{key}={json.dumps(value)}" for key, value in dotted(overrides(method, chunk, args))]
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "replay.bench.cli", "run", "--precision", precision, "--out", out]
        command += [token for item in sets for token in ("--set", item)]
        seconds = time_command(shlex.join(command))
        return seconds, json.loads((Path(out) / "result.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["bir", "gr"], choices=list(PRIORS))
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--replay-chunks", nargs="+", type=int, default=[1])
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
            print(f"round {round_}: yardstick, Avalanche GR (21 epochs per experience): {avalanche:.1f} s here, "
                  f"{MEASURED_SECONDS['avalanche_gr']:.0f} s beside the reference code's run: this machine runs "
                  f"x{MEASURED_SECONDS['avalanche_gr'] / avalanche:.2f} that machine's speed", flush=True)
        for method, precision, chunk in itertools.product(args.methods, args.precisions, args.replay_chunks):
            if measured is None:
                result = run_ours(method, precision, chunk, args)
            else:
                process_seconds, result = run_ours_process(method, precision, chunk, args)
            seconds, reference = result["total_seconds"], reference_seconds(method, args)
            name = f"{method} {precision}" + (f" chunk {chunk}" if chunk != 1 else "")
            line = (f"round {round_}: {name}: whole protocol {seconds:.1f} s, training "
                    f"{result['total_train_seconds']:.1f} s ({result['iterations_per_second']:.1f} it/s), "
                    f"per experience {[round(s, 1) for s in result['train_seconds_per_experience']]}; "
                    f"final avg acc {result['final_average_accuracy']:.4f}")
            if reference is None:
                line += "; no reference figure (the networks differ from the reference's)"
            else:
                line += f"; reference code unscaled {reference:.0f} s: x{reference / seconds:.2f}"
                if avalanche is not None:
                    estimate = scaled_reference(reference, avalanche)
                    line += f", scaled to this machine now (estimate) {estimate:.0f} s: x{estimate / seconds:.2f}"
                    if measured is None:
                        speedups[name].append(estimate / seconds)
            if measured is not None:
                speedups[name].append(measured / process_seconds)
                line += (f"; as a whole process {process_seconds:.1f} s against the reference code's "
                         f"{measured:.1f} s measured here: x{measured / process_seconds:.2f}")
            print(line, flush=True)
    if speedups:
        against = "the measured reference run" if args.reference_command else "the scaled reference estimate"
        print(f"median speed-up over {against}: " + "; ".join(
            f"{name} x{statistics.median(values):.2f} ({len(values)} rounds)" for name, values in speedups.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

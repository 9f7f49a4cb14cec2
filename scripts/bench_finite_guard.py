"""What the non-finite guard costs: training time of the first two split-MNIST experiences (the second with
replay) with ``check_finite_every`` 50 (the default) against 0 (off), in the same process, rounds alternating.

    python scripts/bench_finite_guard.py --method bir --iterations 300 --rounds 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay.bench.config import resolve  # noqa: E402
from replay.bench.experiment import build_experiment  # noqa: E402

PRIORS = {"bir": "gmm", "gr": "gaussian"}


def train_seconds(method: str, every: int, iterations: int, root: str) -> float:
    config = resolve({"method": {"name": method}, "prior": {"name": PRIORS[method]}, "stream": {"root": root},
                      "iterations_per_experience": iterations, "progress": False, "replay_quality": False,
                      "check_finite_every": every})
    with tempfile.TemporaryDirectory() as out:
        experiment = build_experiment(config, Path(out))
        start = time.perf_counter()
        for experience in experiment.benchmark.train_stream[:2]:
            experiment.strategy.train(experience, eval_streams=[])
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=sorted(PRIORS), default="bir")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default="data")
    args = parser.parse_args()
    times: dict[int, list[float]] = {50: [], 0: []}
    for _ in range(args.rounds):
        for every in times:
            times[every].append(train_seconds(args.method, every, args.iterations, args.root))
    on, off = statistics.median(times[50]), statistics.median(times[0])
    print(f"{args.method}, 2 x {args.iterations} iterations: guard on {on:.2f} s, off {off:.2f} s (medians of "
          f"{args.rounds}); on / off = {on / off:.3f}")


if __name__ == "__main__":
    main()

"""What the replay-quality measurement costs per experience: ``ReplayQualityMetric.measure`` on finished runs (their
final generators, all classes seen), timed after one warm-up call (which reads the test images and the judge).

    python scripts/bench_replay_quality.py runs/quality/bir_gmm/seed0 runs/quality/gr_gaussian/seed0
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay.bench.experiment import quality  # noqa: E402
from replay.bench.runner import load_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        for run in args.runs:
            experiment, _ = load_run(run)
            metric = quality(experiment.config, experiment.benchmark, Path(out))
            measures, _ = metric.measure(experiment.replay_plugin, "warm-up")
            start = time.perf_counter()
            for _ in range(args.repeats):
                metric.measure(experiment.replay_plugin, "timed")
            seconds = (time.perf_counter() - start) / args.repeats
            print(f"{run}: {seconds:.2f} s per measurement ({measures['samples']} samples, "
                  f"{len(measures['class_shares'])} classes)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What a sweep on Ray costs against the same runs made one after the other with ``replay-bench run``.

In one command, on an otherwise idle machine: Ray's start-up alone (``ray.init`` of a local Ray, then shutdown);
``--runs`` runs (GR, Gaussian prior, seeds 0.., ``--iterations`` per experience, one torch thread each) as separate
``replay-bench run`` processes one after the other; and the same runs as a sweep with ``--max-concurrent 1`` and with
2, each in a fresh output folder. Prints every wall time and the ratios against the sequential runs.

    python scripts/bench_sweep.py [--runs 4] [--iterations 100] [--root data] [--out runs/bench_sweep]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def ray_startup() -> float:
    import ray

    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    seconds = time.perf_counter() - start
    ray.shutdown()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--root", default="data")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_sweep"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    settings = {"iterations_per_experience": args.iterations, "stream.root": str(Path(args.root).resolve()),
                "replay_quality": False, "progress": False}
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cli = [sys.executable, "-m", "replay.bench.cli"]

    startup = ray_startup()
    print(f"ray start-up (local, then shutdown): {startup:.1f} s", flush=True)
    sets = [f"--set={key}={json.dumps(value)}" for key, value in settings.items()]
    sequential = sum(timed([*cli, "run", "configs/split_mnist/gr_gaussian.yaml", f"--seed={seed}", *sets,
                            f"--out={args.out / 'sequential' / str(seed)}"], env) for seed in range(args.runs))
    print(f"{args.runs} runs one after the other with replay-bench run: {sequential:.1f} s", flush=True)
    for concurrent in (1, 2):
        sweep = args.out / f"sweep{concurrent}.yaml"
        sweep.write_text(yaml.safe_dump({
            "out": str(args.out / f"concurrent{concurrent}"), "configs": ["configs/split_mnist/gr_gaussian.yaml"],
            "set": settings, "grid": {"seed": list(range(args.runs))}, "resources": {"cpus": 1, "threads": 1}}))
        seconds = timed([*cli, "sweep", str(sweep), f"--max-concurrent={concurrent}"], env)
        print(f"the same runs as a sweep, {concurrent} at once: {seconds:.1f} s, x{seconds / sequential:.2f} the "
              f"sequential runs' time", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

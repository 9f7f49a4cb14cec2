#!/usr/bin/env python3
"""Run one config over several seeds (resumable), one ``replay-bench run`` process per seed.

    python scripts/run_grid.py configs/split_mnist/bir_gmm.yaml --seeds 0 1 2 --out runs/split_mnist
    python scripts/run_grid.py configs/split_mnist/gr_binarized_gaussian.yaml --set prior.r=0.1 --tag r0.1

Results land in OUT/<config name>[_<tag>]/seed<N>/result.json; finished seeds are skipped, killed ones
resumed from their last checkpoint. ``--published DIR`` also skips the seeds whose result was copied to
DIR/<config name>[_<tag>]/seed<N>.json (as in ``results/``), to go on with a grid from a fresh clone.
``--threads`` sets torch's intra-op threads of each process.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", default="runs")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--published", default=None, metavar="DIR", help="skip seeds with DIR/<name>/seed<N>.json")
    args = parser.parse_args()
    name = Path(args.config).stem + (f"_{args.tag}" if args.tag else "")
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    for seed in args.seeds:
        out = Path(args.out) / name / f"seed{seed}"
        if (out / "result.json").exists():
            print(f"{out}: done, skipped", flush=True)
            continue
        published = Path(args.published) / name / f"seed{seed}.json" if args.published else None
        if published is not None and published.exists():
            print(f"{published}: published, skipped", flush=True)
            continue
        cmd = [sys.executable, "-m", "replay.bench.cli", "run", args.config, "--seed", str(seed), "--out", str(out), "--resume",
               "--set", "progress=false"]
        for override in args.set:
            cmd += ["--set", override]
        print(" ".join(cmd), flush=True)
        if subprocess.run(cmd, env=env).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Split CIFAR-100 at full size: time per iteration with and without the feature cache, the whole protocol's wall
time, fp32 and bf16, peak memory.

The real CIFAR-100 cannot be fetched here, so the script writes synthetic data of the real size in torchvision's
on-disk format (50,000 training and 10,000 test images, 100 classes) and pre-trains the conv layers briefly on a
small synthetic CIFAR-10 (their values do not change the cost). Each configuration (method x precision x cache)
runs in its own process through the runner's ``build_experiment`` (the protocol of ``configs/split_cifar100``:
10 experiences, batch 256, MLP 2000-2000, latent 100) for ``--iterations`` iterations of every experience, and
the evaluation of the whole test stream after each. Per experience it records the median iteration time, the
set-up time (materialising the data, computing the cached features) and the evaluation time. The whole
protocol's wall time is then **projected**: set-up + 5000 x median iteration + evaluation, summed over the 10
experiences. With ``--experiences k < 10`` only the first k experiences run, and each later experience is
projected as the median of experiences 1..k-1 (experience 0 has no replay). Printed: one row per configuration and,
per method and precision, the ratio cache off / cache on.

    python scripts/bench_cifar100.py --iterations 20 --experiences 3 --out results/bench_cifar100.json
    python scripts/bench_cifar100.py --device cuda --iterations 50        # the GPU check uses this
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avalanche.training.plugins import SupervisedPlugin  # noqa: E402

from replay.bench.config import resolve  # noqa: E402
from replay.bench.pretrain import pretrain_conv  # noqa: E402
from replay.bench.experiment import build_experiment  # noqa: E402
from scenarios.data import write_cifar  # noqa: E402

PROTOCOL_ITERATIONS = 5000
CONFIGS = {"bir": {"method": {"name": "bir"}, "prior": {"name": "gmm"}},
           "gr": {"method": {"name": "gr"}, "prior": {"name": "gaussian"}}}


class IterationClock(SupervisedPlugin):
    """Wall-clock times of each experience's start and of the end of each of its iterations."""

    def __init__(self, synchronize):
        super().__init__()
        self.synchronize, self.experiences = synchronize, []

    def before_training_exp(self, strategy, **kwargs):
        self.synchronize()
        self.experiences.append([time.perf_counter()])

    def after_training_iteration(self, strategy, **kwargs):
        self.synchronize()
        self.experiences[-1].append(time.perf_counter())


def write_data(root: Path, train_per_class: int, test_per_class: int) -> None:
    rng = np.random.default_rng(0)
    for name, classes, per_train, per_test in (("cifar100", 100, train_per_class, test_per_class), ("cifar10", 10, 20, 5)):
        for train, per in ((True, per_train), (False, per_test)):
            labels = np.repeat(np.arange(classes), per)
            write_cifar(name, root, rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8), labels, train)


def measure_one(args: argparse.Namespace) -> dict:
    """One configuration in this process: per-experience set-up, median iteration and evaluation times."""
    torch.set_num_threads(args.threads)
    overrides = {"stream": {"name": "split_cifar100", "root": str(args.root)}, "model": {"conv_weights": str(args.root / "conv.pt"),
                 "feature_cache": args.cache == "on"}, "iterations_per_experience": args.iterations,
                 "precision": args.precision, "device": args.device, "progress": False, "replay_quality": False}
    config = resolve({**CONFIGS[args.method], **overrides})
    cuda = args.device == "cuda"
    synchronize = torch.cuda.synchronize if cuda else (lambda: None)
    with tempfile.TemporaryDirectory() as out:
        experiment = build_experiment(config, Path(out))
        strategy, benchmark = experiment.strategy, experiment.benchmark
        clock = IterationClock(synchronize)
        strategy.plugins.append(clock)
        rows = []
        for experience in benchmark.train_stream[: args.experiences]:
            strategy.train(experience, eval_streams=[])
            start = time.perf_counter()
            strategy.eval(benchmark.test_stream)
            synchronize()
            evaluation = time.perf_counter() - start
            stamps = np.diff(clock.experiences[-1])
            iteration = float(np.median(stamps[1:]))
            rows.append({"setup_s": float(stamps[0] - iteration), "iteration_s": iteration, "eval_s": evaluation})
    cost = [r["setup_s"] + PROTOCOL_ITERATIONS * r["iteration_s"] + r["eval_s"] for r in rows]
    n_experiences = len(benchmark.train_stream)
    projected = sum(cost) + (n_experiences - len(rows)) * (statistics.median(cost[1:]) if len(cost) > 1 else cost[0])
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": args.method, "precision": args.precision, "cache": args.cache, "device": args.device,
            "stream": benchmark.name, "train_images": sum(len(e.dataset) for e in benchmark.train_stream),
            "batch_size": config["batch_size"], "hidden": config["model"]["hidden"],
            "threads": torch.get_num_threads(), "experiences": rows, "projected_protocol_s": projected,
            "measured_experiences": len(rows), "protocol_experiences": n_experiences,
            "peak_memory_mib": peak, "memory": "CUDA max allocated" if cuda else "process peak RSS"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="measured iterations of every experience")
    parser.add_argument("--experiences", type=int, default=10, help="experiences measured (the rest projected)")
    parser.add_argument("--methods", nargs="+", default=["bir", "gr"], choices=sorted(CONFIGS))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--train-per-class", type=int, default=500, help="500: the real 50,000 training images")
    parser.add_argument("--test-per-class", type=int, default=100, help="100: the real 10,000 test images")
    parser.add_argument("--out", type=Path, help="JSON file for all rows")
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "PRECISION", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.method, args.precision, args.cache = args.one
        print(json.dumps(measure_one(args)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        write_data(root, args.train_per_class, args.test_per_class)
        pretrain_conv(root / "conv.pt", root=str(root), epochs=1, device=args.device, progress=False)
        for method in args.methods:
            for precision in args.precisions:
                for cache in ("off", "on"):
                    command = [sys.executable, __file__, "--one", method, precision, cache, "--root", str(root),
                               "--iterations", str(args.iterations), "--device", args.device,
                               "--threads", str(args.threads), "--experiences", str(args.experiences)]
                    done = subprocess.run(command, capture_output=True, text=True, check=True)
                    rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                    row = rows[-1]
                    its = [e["iteration_s"] for e in row["experiences"]]
                    print(f"{method} {precision} cache {cache}: {1000 * its[0]:.0f} ms/it (experience 0), "
                          f"{1000 * statistics.median(its[1:]):.0f} ms/it (later experiences, median), projected "
                          f"protocol {row['projected_protocol_s'] / 3600:.2f} h, peak {row['peak_memory_mib']:.0f} MiB",
                          flush=True)
    print("\n| method | precision | ms/it, no cache | ms/it, cache | speed-up | projected protocol, cache | peak memory |")
    print("|---|---|---|---|---|---|---|")
    for method in args.methods:
        for precision in args.precisions:
            off, on = (next(r for r in rows if (r["method"], r["precision"], r["cache"]) == (method, precision, c))
                       for c in ("off", "on"))
            per_it = [sum(e["iteration_s"] for e in r["experiences"]) / len(r["experiences"]) for r in (off, on)]
            print(f"| {method} | {precision} | {1000 * per_it[0]:.0f} | {1000 * per_it[1]:.0f} | "
                  f"{per_it[0] / per_it[1]:.2f}x | {on['projected_protocol_s'] / 3600:.1f} h (no cache "
                  f"{off['projected_protocol_s'] / 3600:.1f} h) | {on['peak_memory_mib']:.0f} MiB |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Our replay in a user's Avalanche pipeline: the stock ``SplitMNIST`` with its default (normalising) transforms.

GR with Avalanche's ``SimpleMLP(hidden_size=400, hidden_layers=2, drop_rate=0)`` as the solver and BI-R
(``BIRModel``, GMM prior), both inside Avalanche's ``Naive`` exactly as in ``examples/``, side by side with
Avalanche's own ``GenerativeReplay`` on the same stream and solver (its defaults; ``--avalanche-epochs`` epochs
per experience, about as many iterations as ours). ``--pixels normalised unit`` runs our two pipelines a second
time with the benchmark's normalisation replaced by nothing (``--unit-pixels`` of the examples): the same seeds,
the only change being what the user's solver reads. Prints a table (mean and std over seeds) and writes it as JSON
with the per-seed accuracies (over the whole test stream, and the mean over experiences) and wall times.

    python scripts/bench_stock_split_mnist.py --data data --seeds 0 1 2 --avalanche-seeds 0 --out results/stock_split_mnist.json
    python scripts/bench_stock_split_mnist.py --methods gr --pixels unit --seeds 2 --out results/stock_gr_seed2.json   # one part of it
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avalanche.benchmarks.classic import SplitMNIST  # noqa: E402
from avalanche.models import SimpleMLP  # noqa: E402
from avalanche.training import GenerativeReplay  # noqa: E402
from avalanche.training.determinism.rng_manager import RNGManager  # noqa: E402

from examples import bir_split_mnist, gr_split_mnist  # noqa: E402
from examples.common import FinalAccuracy, evaluator, train_and_evaluate  # noqa: E402
from replay.bench.compare import paired_difference  # noqa: E402
from replay.bench.results import write_json  # noqa: E402


#: --pixels choice -> (suffix of the result's name, the examples' flags)
PIXELS = {"normalised": ("", []), "unit": (", pixels in [0, 1]", ["--unit-pixels"])}


def avalanche_gr(data: str, seed: int, epochs: int) -> FinalAccuracy:
    """Avalanche's ``GenerativeReplay`` with its default VAE, on the same stream and solver."""
    RNGManager.set_random_seeds(seed)
    benchmark = SplitMNIST(n_experiences=5, seed=seed, dataset_root=data)
    solver = SimpleMLP(num_classes=10, hidden_size=400, hidden_layers=2, drop_rate=0)
    strategy = GenerativeReplay(model=solver, optimizer=torch.optim.Adam(solver.parameters(), lr=1e-3),
                                train_mb_size=128, train_epochs=epochs, eval_mb_size=1000, evaluator=evaluator(True))
    return train_and_evaluate(strategy, benchmark)


def timed(run) -> tuple[FinalAccuracy, float]:
    start = time.perf_counter()
    accuracy = run()
    return accuracy, time.perf_counter() - start


OURS = {"gr": "GR (gaussian), SimpleMLP", "bir": "BI-R (gmm), BIRModel"}
EXAMPLES = {"gr": gr_split_mnist.main, "bir": bir_split_mnist.main}
COLUMNS = ("seeds", "accuracy", "average_accuracy", "seconds")


def merge(paths: list[Path]) -> dict[str, dict]:
    """The rows of several results files (e.g. seeds run in parallel processes), one per method and seed."""
    merged: dict[str, dict] = {}
    for path in paths:
        for name, row in json.loads(path.read_text()).items():
            into = merged.setdefault(name, {key: [] for key in row})
            for i, seed in enumerate(row["seeds"]):
                if seed in into["seeds"]:
                    raise SystemExit(f"{path}: seed {seed} of {name!r} is in another file too; keep one of them")
                for key in into:
                    into[key].append(row[key][i])
    return merged


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def report(results: dict[str, dict]) -> str:
    """The table (mean ± std over seeds), then for each of our methods run on both kinds of pixels the paired
    difference (pixels in [0, 1] minus normalised) of the average over experiences."""
    lines = ["| method | seeds | stream accuracy (mean ± std) | average over experiences | wall time per run |",
             "|---|---|---|---|---|"]
    for name, row in results.items():
        if row["accuracy"]:
            average = mean_std(row["average_accuracy"]) if row.get("average_accuracy") else ""
            lines.append(f"| {name} | {' '.join(map(str, row['seeds']))} | {mean_std(row['accuracy'])} | {average} "
                         f"| {statistics.mean(row['seconds']):.0f} s |")
    for label in OURS.values():
        normalised, unit = results.get(label), results.get(label + PIXELS["unit"][0])
        if normalised and unit and len(set(normalised["seeds"]) & set(unit["seeds"])) > 1:
            d = paired_difference(*[[{"seed": seed, "final_average_accuracy": a}
                                     for seed, a in zip(row["seeds"], row["average_accuracy"])]
                                    for row in (normalised, unit)])
            low, high = d["ci95"]
            lines.append(f"\n{label}, pixels in [0, 1] minus normalised, average over experiences, paired over seeds "
                         f"{' '.join(map(str, d['seeds']))}: {d['mean']:+.4f} (95% interval [{low:+.4f}, {high:+.4f}], "
                         f"paired t-test p = {d['p_value']:.3f})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data")
    parser.add_argument("--iterations", type=int, default=2000, help="our iterations per experience")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--avalanche-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--avalanche-epochs", type=int, default=21, help="epochs per experience of Avalanche's GR")
    parser.add_argument("--methods", nargs="+", choices=("gr", "bir", "avalanche"), default=["gr", "bir", "avalanche"])
    parser.add_argument("--pixels", nargs="+", choices=tuple(PIXELS), default=["normalised"],
                        help="what our pipelines' solvers read: the stock normalised pixels, and/or pixels in [0, 1]")
    parser.add_argument("--summarize", type=Path, nargs="+", default=None, metavar="JSON",
                        help="run nothing: merge these results files (--out writes the merge) and print their report")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args()
    if args.summarize:
        results = merge(args.summarize)
        if args.out:
            write_json(args.out, results)
        print(report(results))
        return
    common = ["--data", args.data, "--iterations", str(args.iterations), "--quiet"]
    runs, seeds = {}, {}
    for method in args.methods:
        if method == "avalanche":  # its decoder assumes the normalised stream
            name = f"Avalanche GenerativeReplay, SimpleMLP, {args.avalanche_epochs} epochs"
            runs[name], seeds[name] = (lambda s: avalanche_gr(args.data, s, args.avalanche_epochs)), args.avalanche_seeds
            continue
        for pixels in args.pixels:
            name = OURS[method] + PIXELS[pixels][0]
            runs[name] = (lambda s, example=EXAMPLES[method], flags=PIXELS[pixels][1]:
                          example([*common, *flags, "--seed", str(s)]))
            seeds[name] = args.seeds
    results: dict[str, dict] = {name: {key: [] for key in COLUMNS} for name in runs}
    for seed in sorted({seed for chosen in seeds.values() for seed in chosen}):
        for name, run in runs.items():
            if seed in seeds[name]:
                accuracy, seconds = timed(lambda: run(seed))
                for key, value in zip(COLUMNS, (seed, accuracy.stream, accuracy.average, seconds)):
                    results[name][key].append(value)
                print(f"{name}, seed {seed}: stream {accuracy.stream:.4f}, average over experiences "
                      f"{accuracy.average:.4f}, in {seconds:.0f} s", flush=True)
                if args.out:
                    write_json(args.out, results)
    print("\n" + report(results))


if __name__ == "__main__":
    main()

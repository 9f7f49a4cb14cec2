"""The benchmark suite: one entry point, run from the repository's root on an otherwise idle machine.

    python -m scripts.bench speed    [--methods bir gr] [--precisions fp32 bf16] [--replay-chunks 1 16] [--rounds 1]
                                     [--reference-command CMD --reference-cwd DIR] [--no-avalanche] [--out F.json]
    python -m scripts.bench stream   [--iterations 300]
    python -m scripts.bench sweep    [--runs 4] [--iterations 100]
    python -m scripts.bench cifar100 [--iterations 20] [--experiences 10] [--device cuda]
    python -m scripts.bench protocol CONFIG [--iterations 20] [--experiences 2] [--device cuda]
    python -m scripts.bench stock    [--methods gr bir avalanche] [--pixels normalised unit] [--seeds 0 1 2]
    python -m scripts.bench stock --summarize A.json B.json [--out merged.json]
    python -m scripts.bench scoring  [--samples 1 10 100 1000 10000] [--gaussian-samples 100] [--images 0] [--whole-runs 10 100]
                                     [--reference-command CMD --reference-cwd DIR]

* ``speed``: the whole split-MNIST protocol (5 x 2000 iterations, batch 128) of our GR and BI-R, each a whole
  ``replay-bench run`` process, against Avalanche's own ``GenerativeReplay`` (its defaults, the same solver, 21 epochs
  per experience: about as many iterations) and, with ``--reference-command``, the reference code's run, all timed
  in the same command: ratios of wall times, per round and their median.
* ``stream``: milliseconds per training iteration of Avalanche's stock ``SplitMNIST`` against our in-memory stream
  (through Avalanche's default loader, and with ``InMemoryBatches``), the same model and strategy.
* ``sweep``: a sweep on a local Ray (one and two trials at once) against the same runs made one after the other
  with ``replay-bench run``, and Ray's start-up alone.
* ``cifar100``: split CIFAR-100 at full size on synthetic files in torchvision's format (the real data cannot be
  fetched here; the values do not change the cost): ms per iteration with and without the feature cache, fp32 and
  bf16, peak memory, and the whole protocol's projected time (experiences beyond ``--experiences`` projected as
  the median of the measured ones after the first). Each configuration runs in its own process.
* ``protocol``: the same measure and projection for any config on real MNIST data (permuted MNIST's hour-long
  protocols: the first experiences measured at a few iterations each).
* ``scoring``: the generative classifier trained once (``configs/split_mnist/generative_classifier.yaml``), then its
  test accuracy and milliseconds per test image for each number S of importance samples; with ``--whole-runs``,
  whole ``replay-bench run`` processes at those S beside the reference code's (``--reference-command``, ``{samples}``
  standing for S), timed in the same command.
* ``stock``: our pipelines inside a user's Avalanche pipeline (``examples/``: the stock ``SplitMNIST`` with its
  default normalising transforms, Avalanche's ``SimpleMLP``, ``Naive``) beside Avalanche's own GR, over seeds;
  ``--pixels unit`` reruns ours on pixels in [0, 1], and the report pairs the two by seed.

Every subcommand prints its table and, with ``--out``, writes its rows as JSON (atomically).
"""
from __future__ import annotations

import argparse
import itertools
import json
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import yaml

warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)  # Avalanche's GEM, unused here

from avalanche.benchmarks.classic import SplitMNIST  # noqa: E402
from avalanche.models import SimpleMLP  # noqa: E402
from avalanche.training import GenerativeReplay, Naive  # noqa: E402
from avalanche.training.determinism.rng_manager import RNGManager  # noqa: E402
from avalanche.training.plugins import SupervisedPlugin  # noqa: E402

from examples import bir_split_mnist, gr_split_mnist  # noqa: E402
from examples.common import FinalAccuracy, evaluator, train_and_evaluate  # noqa: E402
from replay.bench.compare import paired_difference  # noqa: E402
from replay.bench.config import load_yaml, resolve  # noqa: E402
from replay.bench.experiment import build_experiment  # noqa: E402
from replay.bench.pretrain import pretrain_conv  # noqa: E402
from replay.bench.results import write_json  # noqa: E402
from replay.bench.sweep import as_overrides  # noqa: E402
from replay.models import GenerativeClassifier, MLPClassifier  # noqa: E402
from replay.plugins import InMemoryBatches, IterationBudget  # noqa: E402
from scenarios.data import fetch_mnist, write_cifar  # noqa: E402
from scenarios.streams import split_mnist  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "replay.bench.cli"]
PRIORS = {"bir": "gmm", "gr": "gaussian"}
#: ``cifar100 --methods`` choice -> its config in configs/split_cifar100 (BI-R + SI: c = 1e8, gates at 0.6)
CIFAR_CONFIGS = {"bir": "bir_gmm", "gr": "gr_gaussian", "bir_si": "bir_si", "generative_classifier": "generative_classifier"}
AVALANCHE_EPOCHS = 21  # Avalanche's GR: epochs per experience, about our 2000 iterations


# -- shared: timing and runs -------------------------------------------------------------------------------------
def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    """(what ``work()`` returns, its wall time in seconds)."""
    start = time.perf_counter()
    value = work()
    return value, time.perf_counter() - start


def time_command(command: str, cwd: Optional[str] = None, log: Optional[str] = None) -> float:
    """Whole wall time of a shell command (start-up included). Its output goes to the file ``log`` (a temporary one
    when None), not to the terminal, so that progress bars cost the same for every command timed; a failed command
    raises with the last lines of its output, so that a broken run is never taken for a fast one."""
    with open(log, "w+") if log is not None else tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        completed = subprocess.run(command, shell=True, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            output.seek(0)
            tail = "".join(output.readlines()[-5:]).strip()
            raise RuntimeError(f"command failed with exit status {completed.returncode}: {command}\n{tail}")
    return seconds


def our_run(settings: dict[str, Any], out: Path) -> tuple[float, dict]:
    """``replay-bench run`` with dotted ``settings`` as a whole process into ``out``: (seconds, its result)."""
    command = [*CLI, "run", "--out", str(out), *[f"--set={item}" for item in as_overrides(settings)]]
    seconds = time_command(shlex.join(command), cwd=str(REPO))
    return seconds, json.loads((out / "result.json").read_text())


def avalanche_gr(data: str, seed: int, epochs: int = AVALANCHE_EPOCHS) -> FinalAccuracy:
    """Avalanche's ``GenerativeReplay`` with its default VAE on the stock split MNIST, the solver of ``examples/``."""
    RNGManager.set_random_seeds(seed)
    benchmark = SplitMNIST(n_experiences=5, seed=seed, dataset_root=data)
    solver = SimpleMLP(num_classes=10, hidden_size=400, hidden_layers=2, drop_rate=0)
    strategy = GenerativeReplay(model=solver, optimizer=torch.optim.Adam(solver.parameters(), lr=1e-3),
                                train_mb_size=128, train_epochs=epochs, eval_mb_size=1000, evaluator=evaluator(True))
    return train_and_evaluate(strategy, benchmark)


def write_rows(out: Optional[Path], rows: Any) -> None:
    if out is not None:
        write_json(out, rows)


# -- speed -------------------------------------------------------------------------------------------------------
def speed(args: argparse.Namespace) -> Any:
    if args.reference_command and len(args.methods) != 1:
        raise SystemExit("--reference-command times one method's reference run: give --methods with a single method")
    fetch_mnist(args.root)
    print(f"threads={torch.get_num_threads()} hidden={args.hidden} latent={args.latent_dim} "
          f"iterations/experience={args.iterations} rounds={args.rounds}", flush=True)
    rows, ratios = [], {}
    for round_ in range(1, args.rounds + 1):
        baselines = {}
        if args.reference_command:
            baselines["the reference code"] = time_command(args.reference_command, args.reference_cwd)
        if args.avalanche:
            baselines["Avalanche's GR"] = timed(lambda: avalanche_gr(args.root, args.seed))[1]
        for name, seconds in baselines.items():
            print(f"round {round_}: {name}: {seconds:.1f} s", flush=True)
        for method, precision, chunk in itertools.product(args.methods, args.precisions, args.replay_chunks):
            settings = {"method.name": method, "method.replay_chunk": chunk, "prior.name": PRIORS[method],
                        "precision": precision, "seed": args.seed, "stream.root": str(Path(args.root).resolve()),
                        "iterations_per_experience": args.iterations, "progress": False, "replay_quality": False,
                        "model.hidden": args.hidden, "model.latent_dim": args.latent_dim}
            with tempfile.TemporaryDirectory() as out:
                seconds, result = our_run(settings, Path(out))
            name = f"{method} {precision}" + (f" chunk {chunk}" if chunk != 1 else "")
            line = (f"round {round_}: {name}: {seconds:.1f} s as a whole process (protocol {result['total_seconds']:.1f}"
                    f" s, {result['iterations_per_second']:.1f} it/s, per experience "
                    f"{[round(s, 1) for s in result['train_seconds_per_experience']]}); final avg acc "
                    f"{result['final_average_accuracy']:.4f}")
            for baseline, theirs in baselines.items():
                ratios.setdefault((name, baseline), []).append(theirs / seconds)
                line += f"; {baseline} / ours x{theirs / seconds:.2f}"
            print(line, flush=True)
            rows.append({"round": round_, "run": name, "seconds": seconds, "baselines": baselines,
                         "final_average_accuracy": result["final_average_accuracy"]})
    for (name, baseline), values in ratios.items():
        print(f"median speed-up of {name} over {baseline}: x{statistics.median(values):.2f} ({len(values)} rounds)")
    return rows


# -- stream ------------------------------------------------------------------------------------------------------
def time_per_iteration(experience: Any, iterations: int, in_memory: bool) -> float:
    """Seconds per training iteration of an MLP 784-400-400-10 in ``Naive`` (after a warm-up of 20 iterations)."""
    torch.manual_seed(0)
    model = MLPClassifier((1, 28, 28), 10, (400, 400))
    seconds = []
    for budget in (20, iterations):
        plugins = [*([InMemoryBatches()] if in_memory else []), IterationBudget(budget)]
        strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), train_mb_size=128,
                         train_epochs=1, plugins=plugins, evaluator=None)
        seconds.append(timed(lambda: strategy.train(experience))[1] / budget)
    return seconds[-1]


def stream(args: argparse.Namespace) -> Any:
    fetch_mnist(args.root)
    stock, ours = SplitMNIST(n_experiences=5, seed=0, dataset_root=args.root), split_mnist(5, seed=0, root=args.root)
    rows = {"Avalanche SplitMNIST (stock)": time_per_iteration(stock.train_stream[0], args.iterations, False),
            "ours, Avalanche's default loader": time_per_iteration(ours.train_stream[0], args.iterations, False),
            "ours, InMemoryBatches": time_per_iteration(ours.train_stream[0], args.iterations, True)}
    base = rows["Avalanche SplitMNIST (stock)"]
    print(f"threads={torch.get_num_threads()} iterations={args.iterations} batch=128 MLP 784-400-400-10")
    for name, seconds in rows.items():
        print(f"{name:36s} {seconds * 1e3:7.2f} ms/iteration   speed-up x{base / seconds:5.2f}")
    return rows


# -- sweep -------------------------------------------------------------------------------------------------------
def sweep(args: argparse.Namespace) -> Any:
    import ray

    out = Path(args.scratch)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    settings = {"iterations_per_experience": args.iterations, "stream.root": str(Path(args.root).resolve()),
                "replay_quality": False, "progress": False}
    config = str(REPO / "configs/split_mnist/gr_gaussian.yaml")
    threads = "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "
    rows = {"ray start-up": timed(lambda: ray.init(include_dashboard=False, log_to_driver=False,
                                                   logging_level="ERROR"))[1]}
    ray.shutdown()
    sets = [f"--set={item}" for item in as_overrides(settings)]
    rows["sequential"] = sum(time_command(threads + shlex.join([*CLI, "run", config, f"--seed={seed}", *sets,
                                                               f"--out={out / 'sequential' / str(seed)}"]), str(REPO))
                             for seed in range(args.runs))
    for concurrent in (1, 2):
        path = out / f"sweep{concurrent}.yaml"
        path.write_text(yaml.safe_dump({"out": str(out / f"concurrent{concurrent}"), "configs": [config], "set": settings,
                                        "grid": {"seed": list(range(args.runs))}, "resources": {"cpus": 1, "threads": 1}}))
        rows[f"sweep, {concurrent} at once"] = time_command(
            threads + shlex.join([*CLI, "sweep", str(path), f"--max-concurrent={concurrent}"]), str(REPO))
    for name, seconds in rows.items():
        ratio = f", x{seconds / rows['sequential']:.2f} the sequential runs' time" if name.startswith("sweep") else ""
        print(f"{name} ({args.runs} runs of {args.iterations} iterations per experience): {seconds:.1f} s{ratio}")
    return rows


# -- cifar100 ----------------------------------------------------------------------------------------------------
def projected_protocol_s(rows: list[dict], n_experiences: int, iterations: int, eval_grows: bool) -> float:
    """The whole protocol's seconds from its first measured experiences (``rows``: set-up, median iteration and
    evaluation seconds each): set-up + ``iterations`` x the iteration + the evaluation for each measured experience;
    each later one costs the median of the measured experiences after the first (the first alone if only it was
    measured), its evaluation taken as the last measured one's scaled by the experiences trained so far when
    ``eval_grows`` (the generative classifier scores every trained class) and as that median otherwise."""
    train = [r["setup_s"] + iterations * r["iteration_s"] for r in rows]
    evals = [r["eval_s"] for r in rows]
    later = slice(1, None) if len(rows) > 1 else slice(None)
    projected = sum(train) + sum(evals)
    for k in range(len(rows), n_experiences):
        grown = evals[-1] * (k + 1) / len(rows) if eval_grows else statistics.median(evals[later])
        projected += statistics.median(train[later]) + grown
    return projected


class IterationClock(SupervisedPlugin):
    """Wall-clock times of each experience's start and of the end of each of its iterations."""

    def __init__(self, synchronize: Callable[[], None]):
        super().__init__()
        self.synchronize, self.experiences = synchronize, []

    def before_training_exp(self, strategy, **kwargs):
        self.synchronize()
        self.experiences.append([time.perf_counter()])

    def after_training_iteration(self, strategy, **kwargs):
        self.synchronize()
        self.experiences[-1].append(time.perf_counter())


def write_synthetic_cifar(root: Path, train_per_class: int, test_per_class: int) -> None:
    rng = np.random.default_rng(0)
    for name, classes, per_train, per_test in (("cifar100", 100, train_per_class, test_per_class), ("cifar10", 10, 20, 5)):
        for train, per in ((True, per_train), (False, per_test)):
            labels = np.repeat(np.arange(classes), per)
            write_cifar(name, root, rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8), labels, train)


def measure_protocol(args: argparse.Namespace, config_file: Path, settings: dict[str, Any]) -> dict:
    """The first ``args.experiences`` experiences of a config's protocol in this process, ``args.iterations``
    iterations each: per experience the set-up, the median iteration and the evaluation on the whole test stream
    (seconds), then the whole protocol projected (``projected_protocol_s``) with the config's own iterations per
    experience, and the peak memory.

    Args:
        args: ``iterations``, ``experiences``, ``threads``, ``device`` (and ``set``: more ``KEY=VALUE`` settings).
        config_file: the protocol's config.
        settings: dotted keys set on it (data root, precision, ...).
    """
    torch.set_num_threads(args.threads)
    protocol = resolve(load_yaml(config_file))
    config = resolve(protocol, as_overrides({**settings, "iterations_per_experience": args.iterations,
                                             "device": args.device, "progress": False, "replay_quality": False})
                     + list(getattr(args, "set", None) or []))
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
            evaluation = timed(lambda: (strategy.eval(benchmark.test_stream), synchronize()))[1]
            stamps = np.diff(clock.experiences[-1])
            iteration = float(np.median(stamps[1:]))
            rows.append({"setup_s": float(stamps[0] - iteration), "iteration_s": iteration, "eval_s": evaluation})
    n_experiences = len(benchmark.train_stream)
    projected = projected_protocol_s(rows, n_experiences, protocol["iterations_per_experience"],
                                     isinstance(strategy.model, GenerativeClassifier))
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"config": str(config_file), "method": config["method"]["name"], "device": args.device,
            "stream": benchmark.name, "train_images": sum(len(e.dataset) for e in benchmark.train_stream),
            "batch_size": config["batch_size"], "hidden": config["model"]["hidden"],
            "threads": torch.get_num_threads(), "experiences": rows, "projected_protocol_s": projected,
            "protocol_iterations": protocol["iterations_per_experience"],
            "measured_experiences": len(rows), "protocol_experiences": n_experiences,
            "peak_memory_mib": peak, "memory": "CUDA max allocated" if cuda else "process peak RSS"}


def measure_cifar100(args: argparse.Namespace, method: str, precision: str, cache: str) -> dict:
    """One CIFAR-100 configuration in this process (``measure_protocol`` on the synthetic files of ``args.root``)."""
    row = measure_protocol(args, REPO / "configs" / "split_cifar100" / f"{CIFAR_CONFIGS[method]}.yaml", {
        "stream.root": str(args.root), "model.conv_weights": str(args.root / "conv.pt"),
        "model.feature_cache": cache == "on", "precision": precision})
    return {**row, "method": method, "precision": precision, "cache": cache}


def protocol(args: argparse.Namespace) -> Any:
    """Any config's protocol on real data (MNIST streams), projected from its first experiences."""
    fetch_mnist(args.root)
    row = measure_protocol(args, Path(args.config), {"stream.root": str(Path(args.root).resolve()), "seed": args.seed})
    for k, e in enumerate(row["experiences"]):
        print(f"experience {k}: set-up {e['setup_s']:.1f} s, {1000 * e['iteration_s']:.1f} ms per iteration, "
              f"evaluation {e['eval_s']:.1f} s", flush=True)
    print(f"{row['config']}: {row['protocol_experiences']} experiences x {row['protocol_iterations']} iterations, "
          f"projected from {row['measured_experiences']}: {row['projected_protocol_s'] / 3600:.2f} h on "
          f"{row['threads']} threads ({args.device}), peak {row['peak_memory_mib']:.0f} MiB")
    return row


def cifar100(args: argparse.Namespace) -> Any:
    if args.one:
        print(json.dumps(measure_cifar100(args, *args.one)))
        return None
    rows = []
    with tempfile.TemporaryDirectory() as root:
        write_synthetic_cifar(Path(root), args.train_per_class, args.test_per_class)
        pretrain_conv(Path(root) / "conv.pt", root=root, epochs=1, device=args.device, progress=False)
        for method, precision, cache in itertools.product(args.methods, args.precisions, ("off", "on")):
            command = [sys.executable, "-m", "scripts.bench", "cifar100", "--one", method, precision, cache, "--root",
                       root, "--iterations", str(args.iterations), "--device", args.device, "--threads",
                       str(args.threads), "--experiences", str(args.experiences)]
            done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            its = [e["iteration_s"] for e in row["experiences"]]
            later = statistics.median(its[1:]) if len(its) > 1 else its[0]
            print(f"{method} {precision} cache {cache}: {1000 * its[0]:.0f} ms/it (experience 0), {1000 * later:.0f} "
                  f"ms/it (later experiences, median), projected protocol {row['projected_protocol_s'] / 3600:.2f} h, "
                  f"peak {row['peak_memory_mib']:.0f} MiB", flush=True)
    print("\n| method | precision | ms/it, no cache | ms/it, cache | speed-up | projected protocol, cache | peak memory |")
    print("|---|---|---|---|---|---|---|")
    for method, precision in itertools.product(args.methods, args.precisions):
        off, on = (next(r for r in rows if (r["method"], r["precision"], r["cache"]) == (method, precision, c))
                   for c in ("off", "on"))
        per_it = [sum(e["iteration_s"] for e in r["experiences"]) / len(r["experiences"]) for r in (off, on)]
        print(f"| {method} | {precision} | {1000 * per_it[0]:.0f} | {1000 * per_it[1]:.0f} | "
              f"{per_it[0] / per_it[1]:.2f}x | {on['projected_protocol_s'] / 3600:.1f} h (no cache "
              f"{off['projected_protocol_s'] / 3600:.1f} h) | {on['peak_memory_mib']:.0f} MiB |")
    return rows


# -- scoring -----------------------------------------------------------------------------------------------------
def score_test_set(model: Any, benchmark: Any, samples: int, images: int, device: torch.device) -> dict:
    """Accuracy (overall and the mean of per-class accuracies) and ms per image of the generative classifier with
    ``samples`` importance samples on the first ``images`` test images of every experience (0: all)."""
    xs, ys = [], []
    for experience in benchmark.test_stream:
        loader = torch.utils.data.DataLoader(experience.dataset, batch_size=len(experience.dataset))
        x, y, *_ = next(iter(loader))
        keep = slice(None) if images == 0 else slice(0, images)
        xs.append(x[keep]), ys.append(y[keep])
    x, y = torch.cat(xs).to(device), torch.cat(ys).to(device)
    model.eval()
    model.samples = samples
    with torch.no_grad():
        predictions, seconds = timed(lambda: torch.cat([model(chunk).argmax(1) for chunk in x.split(1000)]))
    correct = (predictions == y).float()
    per_class = [float(correct[y == c].mean()) for c in y.unique()]
    return {"samples": samples, "images": len(y), "accuracy": float(correct.mean()),
            "mean_class_accuracy": float(np.mean(per_class)), "ms_per_image": 1000 * seconds / len(y)}


def reference_accuracy(log: str) -> Optional[float]:
    """The last "Average accuracy over all N classes" the reference code printed, if any."""
    found = [line for line in Path(log).read_text().splitlines() if "Average accuracy over all" in line]
    return float(found[-1].rsplit(":", 1)[1]) if found else None


def scoring(args: argparse.Namespace) -> Any:
    """The generative classifier's accuracy and cost per number of importance samples S, then whole runs at the
    ``--whole-runs`` values of S against the reference code's, in the same command."""
    settings = {"seed": args.seed, "stream.root": str(Path(args.root).resolve()), "progress": False,
                **({"iterations_per_experience": args.iterations} if args.iterations else {})}
    config = resolve(load_yaml(args.config), as_overrides(settings))
    fetch_mnist(args.root)
    torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()} config={args.config} seed={args.seed}", flush=True)
    rows = {"per_samples": [], "whole_runs": []}
    with tempfile.TemporaryDirectory() as out:
        experiment = build_experiment(config, Path(out))
        strategy = experiment.strategy
        trained = timed(lambda: [strategy.train(e, eval_streams=[]) for e in experiment.benchmark.train_stream])[1]
        print(f"trained in {trained:.1f} s", flush=True)
        scorings = [("trained", s) for s in args.samples] + [("gaussian", s) for s in args.gaussian_samples]
        for likelihood, samples in scorings:
            strategy.model.score_likelihood = likelihood
            row = {"score_likelihood": likelihood,
                   **score_test_set(strategy.model, experiment.benchmark, samples, args.images, strategy.device)}
            rows["per_samples"].append(row)
            print(f"S={samples}, {likelihood} scoring: accuracy {row['accuracy']:.4f} (mean over classes "
                  f"{row['mean_class_accuracy']:.4f}) on {row['images']} test images, {row['ms_per_image']:.2f} ms "
                  f"per image ({row['ms_per_image'] * 10:.1f} s per 10,000)", flush=True)
    for samples in args.whole_runs:
        with tempfile.TemporaryDirectory() as out:
            command = [*CLI, "run", args.config, "--out", out,
                       *[f"--set={item}" for item in as_overrides({**settings, "method.samples": samples})]]
            ours = time_command(shlex.join(command), cwd=str(REPO))
            accuracy = json.loads((Path(out) / "result.json").read_text())["final_average_accuracy"]
        row = {"samples": samples, "ours_s": ours, "ours_accuracy": accuracy}
        line = f"whole run, S={samples}: ours {ours:.1f} s (final average accuracy {accuracy:.4f})"
        if args.reference_command:
            with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
                theirs = time_command(args.reference_command.format(samples=samples), args.reference_cwd, log.name)
                row.update(reference_s=theirs, reference_accuracy=reference_accuracy(log.name))
            line += (f"; the reference code {theirs:.1f} s (accuracy {row['reference_accuracy']}); reference / ours "
                     f"x{theirs / ours:.2f}")
        rows["whole_runs"].append(row)
        print(line, flush=True)
    return rows


# -- stock -------------------------------------------------------------------------------------------------------
#: --pixels choice -> (suffix of the result's name, the examples' flags)
PIXELS = {"normalised": ("", []), "unit": (", pixels in [0, 1]", ["--unit-pixels"])}
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


def stock_report(results: dict[str, dict]) -> str:
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


def stock(args: argparse.Namespace) -> Any:
    if args.summarize:
        results = merge(args.summarize)
        print(stock_report(results))
        return results
    common = ["--data", args.root, "--iterations", str(args.iterations), "--quiet"]
    runs, seeds = {}, {}
    for method in args.methods:
        if method == "avalanche":  # its decoder assumes the normalised stream
            name = f"Avalanche GenerativeReplay, SimpleMLP, {args.avalanche_epochs} epochs"
            runs[name], seeds[name] = (lambda s: avalanche_gr(args.root, s, args.avalanche_epochs)), args.avalanche_seeds
            continue
        for pixels in args.pixels:
            name = OURS[method] + PIXELS[pixels][0]
            runs[name] = (lambda s, example=EXAMPLES[method], flags=PIXELS[pixels][1]:
                          example([*common, *flags, "--seed", str(s)]))
            seeds[name] = args.seeds
    results: dict[str, dict] = {name: {key: [] for key in COLUMNS} for name in runs}
    for seed in sorted({seed for chosen in seeds.values() for seed in chosen}):
        for name, work in runs.items():
            if seed in seeds[name]:
                accuracy, seconds = timed(lambda: work(seed))
                for key, value in zip(COLUMNS, (seed, accuracy.stream, accuracy.average, seconds)):
                    results[name][key].append(value)
                print(f"{name}, seed {seed}: stream {accuracy.stream:.4f}, average over experiences "
                      f"{accuracy.average:.4f}, in {seconds:.0f} s", flush=True)
                write_rows(args.out, results)
    print("\n" + stock_report(results))
    return results


# -- the entry point ---------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog="\n".join(__doc__.splitlines()[2:]))
    commands = top.add_subparsers(dest="command", required=True)

    def command(name: str, work: Callable[[argparse.Namespace], Any], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(work=work)
        sub.add_argument("--root", default="data", help="data root")
        sub.add_argument("--out", type=Path, help="JSON file for the rows")
        return sub

    sub = command("speed", speed, "whole split-MNIST runs against Avalanche's GR and the reference code")
    sub.add_argument("--methods", nargs="+", default=["bir", "gr"], choices=list(PRIORS))
    sub.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    sub.add_argument("--replay-chunks", nargs="+", type=int, default=[1])
    sub.add_argument("--rounds", type=int, default=1)
    sub.add_argument("--no-avalanche", dest="avalanche", action="store_false", help="leave Avalanche's GR out")
    sub.add_argument("--reference-command", help="shell command running the reference code's protocol, timed each round")
    sub.add_argument("--reference-cwd", help="folder to run --reference-command in (the reference's checkout)")
    sub.add_argument("--seed", type=int, default=1)
    sub.add_argument("--iterations", type=int, default=2000)
    sub.add_argument("--hidden", nargs="+", type=int, default=[400, 400])
    sub.add_argument("--latent-dim", type=int, default=100)
    sub = command("stream", stream, "ms per iteration: the stock SplitMNIST against our in-memory stream")
    sub.add_argument("--iterations", type=int, default=300)
    sub = command("sweep", sweep, "a Ray sweep against the same runs one after the other")
    sub.add_argument("--runs", type=int, default=4)
    sub.add_argument("--iterations", type=int, default=100)
    sub.add_argument("--scratch", default="runs/bench_sweep", help="folder for the runs (emptied first)")
    sub = command("cifar100", cifar100, "split CIFAR-100 at full size: ms per iteration, projected protocol")
    sub.add_argument("--iterations", type=int, default=20, help="measured iterations of every experience")
    sub.add_argument("--experiences", type=int, default=10, help="experiences measured (the rest projected)")
    sub.add_argument("--methods", nargs="+", default=["bir", "gr"], choices=list(CIFAR_CONFIGS))
    sub.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    sub.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sub.add_argument("--threads", type=int, default=torch.get_num_threads())
    sub.add_argument("--train-per-class", type=int, default=500, help="500: the real 50,000 training images")
    sub.add_argument("--test-per-class", type=int, default=100, help="100: the real 10,000 test images")
    sub.add_argument("--one", nargs=3, metavar=("METHOD", "PRECISION", "CACHE"), help=argparse.SUPPRESS)
    sub = command("protocol", protocol, "any config's whole protocol, projected from its first experiences")
    sub.add_argument("config", help="the config (an MNIST stream; CIFAR-100 has its own subcommand)")
    sub.add_argument("--iterations", type=int, default=20, help="measured iterations of every experience")
    sub.add_argument("--experiences", type=int, default=2, help="experiences measured (the rest projected)")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--set", action="append", metavar="KEY=VALUE", help="a setting of the config, as replay-bench run's")
    sub.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sub.add_argument("--threads", type=int, default=torch.get_num_threads())
    sub = command("scoring", scoring, "the generative classifier: accuracy and ms per image per S; whole runs against the reference")
    sub.add_argument("--config", default=str(REPO / "configs/split_mnist/generative_classifier.yaml"))
    sub.add_argument("--seed", type=int, default=2)
    sub.add_argument("--iterations", type=int, help="iterations per class (default: the config's)")
    sub.add_argument("--samples", type=int, nargs="+", default=[1, 10, 100, 1000, 10000], help="values of S to score with")
    sub.add_argument("--images", type=int, default=0, help="test images per experience scored (0: all)")
    sub.add_argument("--gaussian-samples", type=int, nargs="*", default=[100],
                     help="values of S to score with a unit-variance Gaussian likelihood too (the reference's scoring)")
    sub.add_argument("--threads", type=int, default=torch.get_num_threads())
    sub.add_argument("--whole-runs", type=int, nargs="*", default=[], help="values of S for whole replay-bench runs")
    sub.add_argument("--reference-command", help="the reference code's run, '{samples}' standing for S, timed beside ours")
    sub.add_argument("--reference-cwd", help="folder to run --reference-command in")
    sub = command("stock", stock, "our pipelines on Avalanche's stock SplitMNIST (examples/), over seeds")
    sub.add_argument("--iterations", type=int, default=2000, help="our iterations per experience")
    sub.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sub.add_argument("--avalanche-seeds", type=int, nargs="*", default=[0])
    sub.add_argument("--avalanche-epochs", type=int, default=AVALANCHE_EPOCHS, help="epochs per experience of Avalanche's GR")
    sub.add_argument("--methods", nargs="+", choices=("gr", "bir", "avalanche"), default=["gr", "bir", "avalanche"])
    sub.add_argument("--pixels", nargs="+", choices=tuple(PIXELS), default=["normalised"],
                     help="what our pipelines' solvers read: the stock normalised pixels, and/or pixels in [0, 1]")
    sub.add_argument("--summarize", type=Path, nargs="+", metavar="JSON",
                     help="run nothing: merge these results files (--out writes the merge) and print their report")
    return top


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    for name in ("rounds", "runs", "iterations", "experiences"):
        value = getattr(args, name, None)  # absent, or None where a subcommand's default is "the config's"
        if value is not None and value < 1:
            raise SystemExit(f"--{name} must be at least 1")
    if getattr(args, "one", None):
        args.root = Path(args.root)
    rows = args.work(args)
    if rows is not None:
        write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

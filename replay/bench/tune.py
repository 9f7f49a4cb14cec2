"""``replay-bench sweep`` on Ray Tune: every trial an ordinary run of the runner, spread over a local or remote Ray.

Without an address, an embedded local Ray starts (no dashboard, workers' output kept off the terminal); with
``address`` (``auto`` or ``HOST:PORT``) the same sweep runs on an existing cluster, whose nodes must see the same
file system (the runs' folders and the data). A trial runs ``replay.bench.runner.run(config, folder, resume=True)``
in a Ray worker and reports every finished experience to Tune, with a copy of the run's checkpoint: if its worker or
node is lost, Tune starts it again (up to ``max_failures`` times), elsewhere if need be, and the run resumes from its
last finished experience. A trial that fails by itself (a ``UserInputError`` such as a diverged run, or a bug)
reports its one-line error and is not retried. Finished runs are never run again.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from replay.bench.config import ConfigError, apply_overrides, resolve
from replay.bench.rundir import CHECKPOINT, RESULT, RunFolder
from replay.bench.sweep import Sweep, Trial, as_overrides, config_hash, run_folder
from replay.errors import UserInputError
from replay.files import atomic_write_bytes, megabytes, writing_into

#: where Tune keeps its own state of a sweep, below the sweep's ``out``
TUNE_DIR = ".tune"


def require_ray() -> None:
    """Refuse, in one line, a sweep where Ray Tune is not installed (the package's ``sweep`` extra)."""
    try:
        importlib.import_module("ray.tune")
    except ImportError:
        raise UserInputError("sweep needs Ray Tune, which is not installed here: "
                             "pip install 'genreplay[sweep]'") from None


def trial_state(trial: Trial) -> str:
    """``finished``, ``unfinished`` (a checkpoint, no result) or ``new``."""
    folder = RunFolder(trial.folder)
    if folder.finished:
        return "finished"
    return "unfinished" if folder.has_checkpoint else "new"


def describe(sweep: Sweep) -> list[str]:
    """One line per trial and per rejected grid point, for ``--dry-run``."""
    lines = [f"{trial_state(trial):10s} {trial.folder}" for trial in sweep.trials]
    lines += [f"rejected   {' '.join(overrides)}: {error}" for overrides, error in sweep.rejected]
    if sweep.search is not None:
        lines.append(f"search: {sweep.search['algorithm']}, {sweep.search['samples']} samples of "
                     f"{', '.join(sweep.search['space'])} for each of the {len(sweep.trials)} configs above")
    return lines + disk_lines(sweep)


def disk_lines(sweep: Sweep) -> list[str]:
    """What the sweep's runs keep on disk once finished (their ``checkpoints`` choice), and a run's peak."""
    from replay.bench.experiment import checkpoint_estimate  # builds networks: only when asked for

    sizes: dict[str, int] = {}
    kept = peak = 0
    for trial in sweep.trials:
        key = config_hash(trial.config)
        if key not in sizes:
            sizes[key] = checkpoint_estimate(trial.config)
        copies = {"last": 1, "none": 0, "all": trial.config["stream"]["n_experiences"]}[trial.config["checkpoints"]]
        kept += copies * sizes[key]
        peak = max(peak, 2 * sizes[key])
    if not sweep.trials:
        return []
    largest = max(sizes.values())
    return [f"disk: a checkpoint of about {megabytes(min(sizes.values()))} to {megabytes(largest)} per run (about "
            f"{megabytes(peak)} while a run writes); the {len(sweep.trials)} runs keep about {megabytes(kept)} once "
            "finished (checkpoints: last keeps one per run; set checkpoints=none to keep none)"]


def sampled_config(base: dict, sample: dict[str, Any]) -> dict:
    """The base trial's config with a search sample's values set (dotted keys), resolved again."""
    return resolve(apply_overrides(base, as_overrides(sample)))


def run_trial(params: dict, trials: list[dict], out: str, threads: int, metric: str) -> None:
    """The Tune trainable: run one trial's config in its folder, reporting each finished experience.

    Args:
        params: Tune's parameters: ``trial`` (the index of the base trial) and, for a search, the sampled values.
        trials: the base trials, ``{"config": ..., "folder": ...}``.
        out: the sweep's root (folders of sampled configs are named below it).
        threads: torch threads of the trial.
        metric: the name of the per-experience measure reported.
    """
    import ray
    import torch
    from ray import tune

    from replay.bench.runner import run

    torch.set_num_threads(threads)
    base = trials[params["trial"]]
    sample = {key: value for key, value in params.items() if key != "trial"}
    config = sampled_config(base["config"], sample) if sample else base["config"]
    folder = run_folder(Path(out), config) if sample else Path(base["folder"])
    reported = []

    def report(finished: int, record: Any) -> None:
        metrics = {"experiences": finished, metric: sum(record.accuracy_matrix[-1][:finished]) / finished,
                   "folder": str(folder)}
        with tempfile.TemporaryDirectory() as directory:
            shutil.copy(folder / CHECKPOINT, Path(directory) / CHECKPOINT)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        reported.append(finished)

    try:
        with writing_into(folder):  # a full or read-only disk: the trial's one line, not a worker's traceback
            restored = tune.get_checkpoint()
            if restored is not None and not RunFolder(folder).has_checkpoint:  # a node that does not see the folder
                with restored.as_directory() as directory:
                    atomic_write_bytes(folder / CHECKPOINT, (Path(directory) / CHECKPOINT).read_bytes())
            atomic_write_bytes(folder / "node.txt", ray.get_runtime_context().get_node_id().encode())
        result = run(config, folder, resume=True, on_experience=report)
    except UserInputError as error:
        tune.report({"error": " ".join(str(error).split()), "folder": str(folder)})
        return
    except Exception as error:  # a bug: deterministic, so not retried; its traceback is kept beside the run
        (folder / "error.txt").write_text(traceback.format_exc())
        tune.report({"error": f"{type(error).__name__}: {error} (traceback in {folder / 'error.txt'})",
                     "folder": str(folder)})
        return
    if not reported:  # finished before this sweep: its result stands for it
        tune.report({"experiences": len(result["accuracy_matrix"]), metric: result["final_average_accuracy"],
                     "folder": str(folder)})


def _progress_callback(total: int):
    from ray import tune

    class ProgressLines(tune.Callback):
        """One line per trial that ends: its folder and final accuracy, or its error."""

        def __init__(self):
            self.done = 0

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.done += 1
            result = trial.last_result or {}
            outcome = (f"error: {result['error']}" if "error" in result else
                       f"final average accuracy {_final_accuracy(result):.4f}")
            print(f"[{self.done}/{total}] {result.get('folder', trial.trial_id)}: {outcome}", flush=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.done += 1
            print(f"[{self.done}/{total}] {trial.trial_id}: lost its worker more often than max_failures allows",
                  flush=True)

    return ProgressLines()


def _final_accuracy(result: dict) -> float:
    path = Path(result.get("folder", "")) / RESULT
    return json.loads(path.read_text())["final_average_accuracy"] if path.exists() else float("nan")


def _search_setup(sweep: Sweep, n_trials: int) -> tuple[dict, Any, int]:
    """(param space, search algorithm or None, samples per grid point) of a sweep over ``n_trials`` base trials."""
    from ray import tune

    trials = tune.grid_search(list(range(n_trials)))
    if sweep.search is None:
        return {"trial": trials}, None, 1
    distributions = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}
    space = {}
    for key, spec in sweep.search["space"].items():
        kind, arguments = next(iter(spec.items()))
        space[key] = tune.choice(arguments) if kind == "choice" else distributions[kind](*arguments)
    if sweep.search["algorithm"] == "random":
        return {"trial": trials, **space}, None, sweep.search["samples"]
    try:
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise ConfigError("search.algorithm: optuna needs the optuna package: pip install 'genreplay[optuna]'") from None
    space["trial"] = tune.choice(list(range(n_trials)))
    searcher = OptunaSearch(metric=sweep.metric, mode="max", seed=sweep.search["seed"])
    return space, searcher, sweep.search["samples"]


def pending_trials(sweep: Sweep, resume: bool) -> list[Trial]:
    """The trials to run: all but the finished ones. Unfinished runs without ``resume`` stop the sweep in one line."""
    unfinished = [trial for trial in sweep.trials if trial_state(trial) == "unfinished"]
    if unfinished and not resume:
        raise ConfigError(f"{len(unfinished)} runs of this sweep are unfinished (first: {unfinished[0].folder}); "
                          "add --resume to continue them")
    return [trial for trial in sweep.trials if trial_state(trial) != "finished"]


def run_sweep(sweep: Sweep, address: Optional[str] = None, resume: bool = False,
              max_concurrent: Optional[int] = None) -> list[Path]:
    """Run a sweep's trials on Ray Tune; returns the folders of the runs it holds results for.

    Args:
        sweep: the validated sweep (``replay.bench.sweep.load_sweep``).
        address: an existing Ray cluster (``auto`` or ``HOST:PORT``); None starts a local Ray for the sweep.
        resume: continue unfinished runs (without it they stop the sweep before it starts).
        max_concurrent: at most this many trials at once (None: as many as the resources allow).
    """
    require_ray()
    import ray
    from ray import tune

    pending = pending_trials(sweep, resume) if sweep.search is None else sweep.trials
    for overrides, error in sweep.rejected:
        print(f"rejected: {' '.join(overrides)}: {error}", flush=True)
    if not pending:
        print(f"all {len(sweep.trials)} runs of the sweep are finished; nothing to run", flush=True)
        return [trial.folder for trial in sweep.trials]
    specs = [{"config": trial.config, "folder": str(trial.folder)} for trial in pending]
    param_space, searcher, samples = _search_setup(sweep, len(pending))
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials run where the sweep started, as replay-bench run
    started = time.perf_counter()
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             configure_logging=True)
    print(f"ray: {'connected to ' + address if address else 'local'} in {time.perf_counter() - started:.1f} s, "
          f"{len(pending) * samples} trials", flush=True)
    try:
        resources = {"cpu": sweep.resources["cpus"], "gpu": sweep.resources["gpus"]}
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, trials=specs, out=str(sweep.out.resolve()),
                                 threads=int(sweep.resources["threads"]), metric=sweep.metric), resources)
        scheduler = None
        if sweep.scheduler is not None:
            from ray.tune.schedulers import ASHAScheduler

            scheduler = ASHAScheduler(metric=sweep.metric, mode="max", time_attr="training_iteration",
                                      grace_period=sweep.scheduler["grace_period"],
                                      reduction_factor=sweep.scheduler["reduction_factor"])
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(num_samples=samples, search_alg=searcher, scheduler=scheduler,
                                        max_concurrent_trials=max_concurrent),
            run_config=tune.RunConfig(
                name=f"sweep-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str((sweep.out / TUNE_DIR).resolve()),
                failure_config=tune.FailureConfig(max_failures=sweep.max_failures), verbose=0,
                callbacks=[_progress_callback(len(pending) * samples)]))
        grid = tuner.fit()
        folders = {Path(result.metrics["folder"]) for result in grid if result.metrics and "folder" in result.metrics}
    finally:
        ray.shutdown()
    return sorted(folders | {trial.folder for trial in sweep.trials if trial_state(trial) == "finished"})

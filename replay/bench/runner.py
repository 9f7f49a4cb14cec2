"""The benchmark runner: train a built experiment (``replay.bench.experiment``) with an iteration budget; evaluate
every experience after each one; checkpoint atomically; resume; write ``result.json``."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from avalanche.training.plugins import SupervisedPlugin

from replay import cl_metrics
from replay.bench.config import ConfigError, saved_config
from replay.bench.experiment import Experiment, build_experiment, checkpoint_estimate
from replay.bench.results import SCHEMA, environment, read_result, write_accuracy_csv, write_json
from replay.bench.rundir import ACCURACY_CSV, RESULT, RunFolder
from replay.errors import NonFiniteError, UserInputError
from replay.files import check_room, megabytes, writing_into
from replay.plugins import SeenUnitsMask
from replay.random_state import preserved_rng, rng_state, set_rng_state


class RestoreOptimizerState(SupervisedPlugin):
    """Loads a saved optimizer state once, after Avalanche has (re)built the optimizer for the experience."""

    def __init__(self, state: dict):
        super().__init__()
        self.state: Optional[dict] = state

    def before_training_exp(self, strategy, **kwargs):
        if self.state is not None:
            strategy.optimizer.load_state_dict(self.state)
            self.state = None


@dataclass
class RunRecord:
    """What a run has measured, one entry per finished experience; saved in every checkpoint."""
    accuracy_matrix: list[list[float]] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    eval_seconds: list[Optional[float]] = field(default_factory=list)
    replay_losses: list[Optional[dict[str, float]]] = field(default_factory=list)
    replay_shares: list[Optional[list[float]]] = field(default_factory=list)
    initial_accuracy: Optional[list[float]] = None  # the untrained model's accuracy per experience (for FWT)
    replay_quality: list[Optional[dict]] = field(default_factory=list)


#: ``on_experience(finished experiences, record)``, called after each experience's checkpoint
ExperienceHook = Callable[[int, RunRecord], None]


def accuracy_row(metrics: dict, n_experiences: int) -> list[float]:
    return [float(metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"]) for j in range(n_experiences)]


def save_checkpoint(folder: RunFolder, experiment: Experiment, finished: int, record: RunRecord) -> None:
    """The run's state after ``finished`` experiences (kept as ``checkpoint.expNNN.pt`` too with ``checkpoints:
    all``)."""
    strategy = experiment.strategy
    keep_as = f"checkpoint.exp{finished:03d}.pt" if experiment.config["checkpoints"] == "all" else None
    folder.save_checkpoint({
        "config": experiment.config,
        "finished_experiences": finished,
        "accuracy_matrix": record.accuracy_matrix,
        "train_seconds_per_experience": record.train_seconds,
        "eval_seconds_per_experience": record.eval_seconds,
        "replay_losses_per_experience": record.replay_losses,
        "replay_shares_per_experience": record.replay_shares,
        "initial_accuracy": record.initial_accuracy,
        "replay_quality_per_experience": record.replay_quality,
        "model": strategy.model.state_dict(),
        "optimizer": strategy.optimizer.state_dict(),
        "replay_plugin": experiment.replay_plugin.state_dict() if experiment.replay_plugin else None,
        "seen_units": [p.state_dict() for p in experiment.plugins if isinstance(p, SeenUnitsMask)],
        "rng": rng_state(),
    }, keep_as)


def restore_checkpoint(state: dict, experiment: Experiment, folder: Path) -> tuple[int, RunRecord]:
    """Put a checkpoint's model, optimiser, replay and RNG state into a freshly built experiment."""
    if saved_config(state) != experiment.config:
        raise ConfigError(f"{folder} holds a run of a different config; use another --out, or --overwrite")
    strategy = experiment.strategy
    strategy.model.load_state_dict(state["model"])
    strategy.model.to(strategy.device)
    strategy.plugins.append(RestoreOptimizerState(state["optimizer"]))
    if experiment.replay_plugin is not None:
        experiment.replay_plugin.load_state_dict(state["replay_plugin"])
    for plugin, saved in zip([p for p in experiment.plugins if isinstance(p, SeenUnitsMask)], state["seen_units"]):
        plugin.load_state_dict(saved)
    set_rng_state(state["rng"])
    finished = state["finished_experiences"]

    def recorded(key: str) -> list:  # older checkpoints did not record every measure yet: unknown
        return state.get(key, [None] * finished)

    return finished, RunRecord(state["accuracy_matrix"], state["train_seconds_per_experience"],
                               recorded("eval_seconds_per_experience"), recorded("replay_losses_per_experience"),
                               recorded("replay_shares_per_experience"), state.get("initial_accuracy"),
                               recorded("replay_quality_per_experience"))


def load_run(folder: Path | str, root: Optional[str] = None) -> tuple[Experiment, dict]:
    """A run's experiment holding its last checkpoint's model and replay state, with the checkpoint itself (for
    analyses of finished runs); ``root`` replaces the data root the run used."""
    folder = Path(folder)
    state, _ = RunFolder(folder).load_checkpoint()
    if state is None:
        raise UserInputError(f"{folder} holds no checkpoint")
    config = saved_config(state)
    if root:
        config["stream"]["root"] = root
    experiment = build_experiment(config, folder)
    model = experiment.strategy.model
    model.load_state_dict(state["model"])
    if experiment.replay_plugin is not None:
        experiment.replay_plugin.load_state_dict(state["replay_plugin"])
        experiment.replay_plugin.method.bind(model)  # its frozen copies, without an experience to start
    return experiment, state


def run(config: dict, out_dir: Path | str, resume: bool = False, overwrite: bool = False,
        on_experience: Optional[ExperienceHook] = None) -> dict:
    """Run one config to completion and return the result dict.

    Args:
        config: a resolved config (``replay.bench.config.resolve``).
        out_dir: the run's folder (``RunFolder``): locked while the run works in it.
        resume: continue from the last readable checkpoint; a finished run is not run again, its result is returned.
        overwrite: remove the folder's run and start afresh (without it, a folder that holds a run is refused).
        on_experience: called after each finished experience, once its checkpoint is written, with the number of
            finished experiences and the run's record (``replay-bench sweep`` reports them to Ray Tune).
    """
    with RunFolder(out_dir) as folder:
        folder.prepare(resume, overwrite)
        if resume and folder.finished:
            result = read_result(folder.path / RESULT)
            if saved_config(result) != config:
                raise ConfigError(f"{folder.path} holds a finished run of a different config; use another --out")
            print(f"{folder.path} holds a finished run; nothing to do", flush=True)
            return result
        state, note = folder.load_checkpoint() if resume else (None, None)
        if note:
            print(note, flush=True)
        return train_run(config, folder, state, on_experience)


def train_run(config: dict, folder: RunFolder, state: Optional[dict],
              on_experience: Optional[ExperienceHook] = None) -> dict:
    """Train from the start or from a checkpoint's ``state``, checkpointing after every experience (then calling
    ``on_experience``, as for ``run``)."""
    out_dir = folder.path
    size = checkpoint_estimate(config)
    check_room(out_dir, 2 * size, f"two checkpoints of about {megabytes(size)} each")
    with writing_into(out_dir):  # the loggers' writes: one line on a full disk, the last checkpoint kept
        return train_experiences(config, folder, state, on_experience)


def train_experiences(config: dict, folder: RunFolder, state: Optional[dict],
                      on_experience: Optional[ExperienceHook] = None) -> dict:
    """``train_run``'s work, once the folder has room."""
    out_dir = folder.path
    experiment = build_experiment(config, out_dir)
    strategy, benchmark = experiment.strategy, experiment.benchmark
    n_experiences = len(benchmark.train_stream)
    finished, record = 0, RunRecord()
    if state is not None:
        finished, record = restore_checkpoint(state, experiment, out_dir)
    else:  # the untrained model's accuracy, for forward transfer; the random stream is left as it was
        with preserved_rng():
            record.initial_accuracy = accuracy_row(strategy.eval(benchmark.test_stream), n_experiences)
    for index, experience in enumerate(benchmark.train_stream):
        if index < finished:
            continue
        start = time.perf_counter()
        try:
            strategy.train(experience, eval_streams=[])
        except NonFiniteError as error:
            raise NonFiniteError(f"{error}; {folder.kept_checkpoint()}") from None
        record.train_seconds.append(time.perf_counter() - start)
        record.replay_losses.append(experiment.loss_metric.experience_means[-1] if experiment.loss_metric else None)
        record.replay_shares.append(experiment.share_metric.experience_shares[-1] if experiment.share_metric else None)
        record.replay_quality.append(experiment.quality_metric.per_experience[-1] if experiment.quality_metric else None)
        start = time.perf_counter()
        record.accuracy_matrix.append(accuracy_row(strategy.eval(benchmark.test_stream), n_experiences))
        record.eval_seconds.append(time.perf_counter() - start)
        save_checkpoint(folder, experiment, index + 1, record)
        write_accuracy_csv(out_dir / ACCURACY_CSV, record.accuracy_matrix)
        print(f"after experience {index}: " + " ".join(f"{a:.3f}" for a in record.accuracy_matrix[-1]), flush=True)
        if on_experience is not None:
            on_experience(index + 1, record)
    result = make_result(config, record, strategy.device)
    write_json(out_dir / RESULT, result)
    folder.keep_checkpoints(config["checkpoints"])
    return result


def make_result(config: dict, record: RunRecord, device: torch.device) -> dict:
    """The result record. ``total_seconds`` is training plus the evaluation after every experience (the
    whole protocol's wall time, what the reference code's timings measure); None when a run resumed from a
    checkpoint written before evaluation was timed. ``replay_losses_per_experience``: the replay plugin's
    named loss terms, averaged over each experience's iterations; ``replay_shares_per_experience``: the share
    of each earlier experience in each experience's replay (``ReplayShareMetric``). Both None for methods
    without replay and for experiences finished before the record existed; the shares also for the first.
    The continual-learning measures of ``replay.cl_metrics.summary`` (average accuracy after each experience,
    backward transfer, forgetting) come from the accuracy matrix; ``forward_transfer`` also needs
    ``initial_accuracy``, the untrained model's accuracy on each experience (None for runs resumed from a
    checkpoint written before it was recorded)."""
    iterations = config["iterations_per_experience"]
    matrix, seconds, eval_seconds = record.accuracy_matrix, record.train_seconds, record.eval_seconds
    last = matrix[-1]
    initial = record.initial_accuracy
    return {
        "schema": SCHEMA,
        "config": config,
        "method": config["method"]["name"],
        "prior": config["prior"]["name"] if config["prior"] else None,
        "prior_params": {k: v for k, v in config["prior"].items() if k != "name"} if config["prior"] else None,
        "stream": config["stream"]["name"],
        "n_experiences": len(matrix),
        "seed": config["seed"],
        "accuracy_matrix": matrix,
        "final_accuracy_per_experience": last,
        "final_average_accuracy": float(np.mean(last)),
        **cl_metrics.summary(matrix),
        "initial_accuracy": initial,
        "forward_transfer": cl_metrics.forward_transfer(matrix, initial) if initial is not None else None,
        "train_seconds_per_experience": seconds,
        "total_train_seconds": float(sum(seconds)),
        "eval_seconds_per_experience": eval_seconds,
        "total_seconds": None if None in eval_seconds else float(sum(seconds) + sum(eval_seconds)),
        "replay_losses_per_experience": record.replay_losses,
        "replay_shares_per_experience": record.replay_shares,
        "replay_quality_per_experience": record.replay_quality,
        "iterations_per_experience": iterations,
        "iterations_per_second": float(iterations * len(seconds) / sum(seconds)),
        "seconds_per_iteration": float(sum(seconds) / (iterations * len(seconds))),
        "environment": environment(device),
    }

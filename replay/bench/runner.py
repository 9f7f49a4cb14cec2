"""The benchmark runner: build stream, model and strategy from a config; train with an iteration budget;
evaluate every experience after each one; checkpoint atomically; resume; write ``result.json``."""
from __future__ import annotations

import copy
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm import tqdm

from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import CSVLogger, InteractiveLogger, TensorboardLogger, TextLogger, WandBLogger
from avalanche.training import Cumulative
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate

from replay import cl_metrics, priors
from replay.bench.config import ConfigError, default_run_name, resolve
from replay.bench.results import SCHEMA, environment, read_result, write_accuracy_csv, write_json
from replay.bench.rundir import ACCURACY_CSV, LOG, RESULT, RunFolder
from replay.compat import patch_wandb_for_avalanche
from replay.errors import NonFiniteError, UserInputError
from replay.generators.vae import conv_vae, mlp_vae
from replay.metrics import ReplayLossMetric, ReplayQualityMetric, ReplayShareMetric
from replay.models import BIRModel, ConvFeatureExtractor, MLPClassifier
from replay.plugins import FeatureCache, FiniteGuardPlugin, InMemoryBatches, IterationBudget, MixedPrecision, SeenUnitsMask
from replay.optim import adam
from replay.plugins.protocol import materialize
from replay.quality import judge_for
from replay.random_state import preserved_rng, rng_state, set_rng_state
from replay.strategies import BrainInspiredReplay, GenerativeReplay
from scenarios.data import default_root
from scenarios.streams import build_stream


class ProgressBar(SupervisedPlugin):
    """A tqdm bar per experience over its training iterations."""

    def __init__(self, total: int, enabled: bool = True):
        super().__init__()
        self.total, self.enabled, self.bar = total, enabled, None

    def before_training_exp(self, strategy, **kwargs):
        if self.enabled:
            self.bar = tqdm(total=self.total, desc=f"experience {strategy.experience.current_experience}",
                            unit="it", leave=False, dynamic_ncols=True)

    def after_training_iteration(self, strategy, **kwargs):
        if self.bar is not None:
            self.bar.update(1)

    def after_training_exp(self, strategy, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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
class Experiment:
    config: dict
    benchmark: Any
    strategy: SupervisedTemplate
    plugins: list = field(default_factory=list)
    loss_metric: Optional[ReplayLossMetric] = None
    share_metric: Optional[ReplayShareMetric] = None
    quality_metric: Optional[ReplayQualityMetric] = None

    @property
    def replay_plugin(self) -> Optional[SupervisedPlugin]:
        return getattr(self.strategy, "replay_plugin", None)


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def check_files(config: dict) -> None:
    """Problems that can be seen before any work: missing conv weights for the CIFAR stream."""
    weights = config["model"]["conv_weights"]
    if config["stream"]["name"] == "split_cifar100" and weights and not Path(weights).exists():
        raise ConfigError(
            f"model.conv_weights: {weights} not found; create it with 'replay-bench pretrain-conv --out {weights}'"
        )


def gate_contexts(config: dict, benchmark: CLScenario) -> list[int]:
    mode = config["method"]["gate_contexts"] or ("task" if config["stream"]["name"] == "permuted_mnist" else "class")
    per_context = benchmark.classes_per_experience if mode == "task" else 1
    return [c // per_context for c in range(benchmark.n_classes)]


def internal_replay(config: dict, extractor: Optional[ConvFeatureExtractor]) -> bool:
    """Whether BI-R replays conv features (the config's choice; by default whenever there are conv layers)."""
    chosen = config["method"].get("internal_replay")
    return chosen if chosen is not None else extractor is not None


def build_experiment(config: dict, out_dir: Path) -> Experiment:
    check_files(config)
    device = resolve_device(config["device"])
    seed_everything(config["seed"])
    stream = config["stream"]
    benchmark = build_stream(stream["name"], stream["n_experiences"], config["seed"], stream["root"], stream["scenario"])
    model_cfg, method = config["model"], config["method"]
    hidden = list(model_cfg["hidden"])
    extractor = None
    if stream["name"] == "split_cifar100" and model_cfg["conv_weights"]:
        extractor = ConvFeatureExtractor.load_frozen(model_cfg["conv_weights"])
    prior = None
    if config["prior"] is not None:
        params = {k: v for k, v in config["prior"].items() if k != "name"}
        prior = priors.build(config["prior"]["name"], model_cfg["latent_dim"], benchmark.n_classes, **params)

    optimizer_args = {"lr": config["optimizer"]["lr"], "betas": tuple(config["optimizer"]["betas"])}
    out_dir.mkdir(parents=True, exist_ok=True)
    replays = method["name"] in ("gr", "bir")
    loss_metric, share_metric = (ReplayLossMetric(), ReplayShareMetric()) if replays else (None, None)
    internal = method["name"] == "bir" and internal_replay(config, extractor)  # BI-R replays conv features
    judged = replays and config["replay_quality"] and not internal  # the judge reads images
    quality_metric = quality(config, benchmark, out_dir / "replay") if judged else None
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        *[metric for metric in (loss_metric, share_metric, quality_metric) if metric is not None],
        loggers=loggers(config, out_dir),
    )
    takes_features = extractor is not None and (method["name"] != "bir" or internal)
    batches = FeatureCache(extractor) if takes_features and model_cfg["feature_cache"] else InMemoryBatches()
    plugins: list = [batches, IterationBudget(config["iterations_per_experience"]),
                     ProgressBar(config["iterations_per_experience"], config["progress"])]
    if stream["scenario"] == "class":
        plugins.insert(0, SeenUnitsMask())
    if not replays:  # the replay plugins guard their own loss terms
        plugins.append(FiniteGuardPlugin(config["check_finite_every"]))
    if config["precision"] == "bf16":
        plugins.append(MixedPrecision(torch.bfloat16))  # last: it closes autocast after the others' iteration work
    common = dict(criterion=torch.nn.CrossEntropyLoss(), train_mb_size=config["batch_size"], train_epochs=1, eval_mb_size=config["eval_batch_size"],
                  device=device, evaluator=evaluator, plugins=plugins)

    if method["name"] == "bir":
        gate_prop = method["gate_prop"] if method["gate_prop"] is not None else (0.7 if extractor is not None else 0.8)
        model = BIRModel(benchmark.input_shape, benchmark.n_classes, prior, hidden,
                         gate_prop=gate_prop if method["gating"] else 0.0,
                         class_to_context=gate_contexts(config, benchmark),
                         feature_extractor=extractor if internal else None, seed=config["seed"])
        options = dict(replay_size=method["replay_size"], replay_chunk=method["replay_chunk"],
                       check_finite_every=config["check_finite_every"], distill=method["distill"],
                       temperature=method["temperature"], conditional=method["conditional"])
        strategy = BrainInspiredReplay(model=model, optimizer=adam(model.parameters(), **optimizer_args),
                                       replay_options=options, **common)
        return Experiment(config, benchmark, strategy, plugins, loss_metric, share_metric, quality_metric)

    model = MLPClassifier(benchmark.input_shape, benchmark.n_classes, hidden, extractor)
    optimizer = adam(model.parameters(), **optimizer_args)
    if method["name"] == "naive":
        strategy = SupervisedTemplate(model=model, optimizer=optimizer, **common)
    elif method["name"] == "joint":
        strategy = Cumulative(model=model, optimizer=optimizer, **common)
    else:
        generator_hidden = method["generator_hidden"] or hidden
        if stream["name"] == "split_cifar100":
            generator = conv_vae(prior, benchmark.input_shape, generator_hidden)
        else:
            generator = mlp_vae(benchmark.input_shape, prior, generator_hidden)
        options = dict(lr=optimizer_args["lr"], betas=optimizer_args["betas"], replay_size=method["replay_size"],
                       replay_chunk=method["replay_chunk"], check_finite_every=config["check_finite_every"],
                       targets=method["targets"], temperature=method["temperature"],
                       generator_schedule=method["generator_schedule"],
                       generator_iterations=method["generator_iterations"] or config["iterations_per_experience"])
        strategy = GenerativeReplay(model=model, optimizer=optimizer, generator=generator, replay_options=options,
                                    **common)
    return Experiment(config, benchmark, strategy, plugins, loss_metric, share_metric, quality_metric)


def loggers(config: dict, out_dir: Path) -> list:
    """The config's Avalanche loggers, writing into the run's folder (W&B offline, in ``out_dir/wandb``)."""
    made = []
    for name in config["loggers"]:
        if name == "text":
            made.append(TextLogger(open(out_dir / LOG, "a", buffering=1)))
        elif name == "csv":
            made.append(CSVLogger(str(out_dir / "csv")))
        elif name == "interactive":
            made.append(InteractiveLogger())
        elif name == "tensorboard":
            made.append(TensorboardLogger(tb_log_dir=str(out_dir / "tensorboard")))
        else:
            patch_wandb_for_avalanche()
            made.append(WandBLogger(project_name="replay", run_name=default_run_name(config), dir=str(out_dir),
                                    config=config, params={"mode": os.environ.get("WANDB_MODE", "offline")}))
    return made


def judge_training_data(benchmark: CLScenario, cap_per_experience: int = 20_000) -> tuple[torch.Tensor, torch.Tensor]:
    """The stream's training set (at most ``cap_per_experience`` samples of each experience), for the judge."""
    columns = [materialize(experience.dataset, torch.device("cpu"))[:2] for experience in benchmark.train_stream]
    return (torch.cat([x[:cap_per_experience] for x, _ in columns]), torch.cat([y[:cap_per_experience] for _, y in columns]))


def quality(config: dict, benchmark: CLScenario, image_dir: Path) -> ReplayQualityMetric:
    """The replay-quality metric of a run: the stream's judge (cached under the data root's ``judges/``) and
    grids of replay samples written to ``image_dir``."""
    root = Path(config["stream"]["root"]) if config["stream"]["root"] else default_root()
    with preserved_rng():  # reading the data and the judge's initialisation must not change the run's stream
        x, y = judge_training_data(benchmark)
        judge = judge_for(x, y, benchmark.n_classes, root / "judges")
    return ReplayQualityMetric(judge, benchmark.test_stream, samples_per_class=config["replay_quality_samples"],
                               image_dir=image_dir)


def accuracy_row(metrics: dict, n_experiences: int) -> list[float]:
    return [float(metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"]) for j in range(n_experiences)]


def save_checkpoint(folder: RunFolder, experiment: Experiment, finished: int, record: RunRecord) -> None:
    strategy = experiment.strategy
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
    })


def saved_config(state: dict) -> dict:
    """A checkpoint's config, resolved again: keys added to the defaults since it was written get their
    default values, so older checkpoints compare equal to the same run today."""
    return resolve(copy.deepcopy(state["config"]))


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


def run(config: dict, out_dir: Path | str, resume: bool = False, overwrite: bool = False) -> dict:
    """Run one config to completion and return the result dict.

    Args:
        config: a resolved config (``replay.bench.config.resolve``).
        out_dir: the run's folder (``RunFolder``): locked while the run works in it.
        resume: continue from the last readable checkpoint; a finished run is not run again, its result is returned.
        overwrite: remove the folder's run and start afresh (without it, a folder that holds a run is refused).
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
        return train_run(config, folder, state)


def train_run(config: dict, folder: RunFolder, state: Optional[dict]) -> dict:
    """Train from the start or from a checkpoint's ``state``, checkpointing after every experience."""
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
    result = make_result(config, record, strategy.device)
    write_json(out_dir / RESULT, result)
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

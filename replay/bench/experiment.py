"""Building a run from its config: stream, prior, model, replay method, plugins, metrics and loggers.

``build_experiment`` reads the stream's protocol (``replay.bench.protocols``) and hands the method's part to its
builder in ``METHOD_BUILDERS``; adding a method is adding a builder there (and its keys to
``replay.bench.config.METHOD_SCHEMAS``).
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from tqdm import tqdm

from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import CSVLogger, InteractiveLogger, TensorboardLogger, TextLogger, WandBLogger
from avalanche.training import Cumulative
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate

from replay import priors
from replay.bench.config import ConfigError, default_run_name
from replay.bench.protocols import PROTOCOLS, Protocol
from replay.bench.rundir import LOG
from replay.compat import patch_wandb_for_avalanche
from replay.generators.vae import conv_vae, mlp_vae
from replay.metrics import ReplayLossMetric, ReplayQualityMetric, ReplayShareMetric
from replay.models import BIRModel, ConvFeatureExtractor, MLPClassifier
from replay.optim import adam
from replay.plugins import FeatureCache, FiniteGuardPlugin, InMemoryBatches, IterationBudget, MixedPrecision, SeenUnitsMask
from replay.plugins.protocol import materialize
from replay.priors.base import LatentPrior
from replay.quality import judge_for
from replay.random_state import preserved_rng
from replay.strategies import BrainInspiredReplay, GenerativeReplay
from scenarios.data import default_root
from scenarios.streams import build_stream

REPLAY_METHODS = ("gr", "bir")


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


@dataclass
class Experiment:
    """A built run: its config, stream, strategy, protocol plugins and replay metrics."""

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
class Parts:
    """What a method's builder receives: the config, its stream's protocol, the stream, the prior (None for methods
    without a generator), the frozen conv layers (None without), the optimiser's arguments and the arguments every
    strategy takes (criterion, batch sizes, device, evaluator, plugins)."""

    config: dict
    protocol: Protocol
    benchmark: CLScenario
    prior: Optional[LatentPrior]
    extractor: Optional[ConvFeatureExtractor]
    optimizer_args: dict
    strategy_args: dict

    @property
    def hidden(self) -> list[int]:
        return list(self.config["model"]["hidden"])

    def replay_args(self) -> dict:
        """The options both replay plugins take from the config."""
        method = self.config["method"]
        return dict(replay_size=method["replay_size"], replay_chunk=method["replay_chunk"],
                    check_finite_every=self.config["check_finite_every"], temperature=method["temperature"])


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def check_files(config: dict) -> None:
    """Problems that can be seen before any work: missing conv weights for a stream with conv layers."""
    weights = config["model"]["conv_weights"]
    if PROTOCOLS[config["stream"]["name"]].conv and weights and not Path(weights).exists():
        raise ConfigError(
            f"model.conv_weights: {weights} not found; create it with 'replay-bench pretrain-conv --out {weights}'"
        )


def internal_replay(parts: Parts) -> bool:
    """Whether BI-R replays conv features: the config's choice, by default whenever there are conv layers."""
    chosen = parts.config["method"]["internal_replay"] if parts.config["method"]["name"] == "bir" else None
    return chosen if chosen is not None else parts.extractor is not None


def gate_contexts(parts: Parts) -> list[int]:
    """The gating context of each class: the class itself, or its task (all classes of an experience)."""
    per_context = parts.benchmark.classes_per_experience if parts.protocol.method_option(parts.config, "gate_contexts") == "task" else 1
    return [c // per_context for c in range(parts.benchmark.n_classes)]


def build_naive(parts: Parts) -> SupervisedTemplate:
    """Fine-tuning on each experience in turn (the lower bound)."""
    model = MLPClassifier(parts.benchmark.input_shape, parts.benchmark.n_classes, parts.hidden, parts.extractor)
    return SupervisedTemplate(model=model, optimizer=adam(model.parameters(), **parts.optimizer_args), **parts.strategy_args)


def build_joint(parts: Parts) -> SupervisedTemplate:
    """Training on all the data seen so far (the upper bound, Avalanche's ``Cumulative``)."""
    model = MLPClassifier(parts.benchmark.input_shape, parts.benchmark.n_classes, parts.hidden, parts.extractor)
    return Cumulative(model=model, optimizer=adam(model.parameters(), **parts.optimizer_args), **parts.strategy_args)


def build_gr(parts: Parts) -> SupervisedTemplate:
    """Generative replay: the solver, then its VAE generator (convolutional on streams with conv layers)."""
    benchmark, method = parts.benchmark, parts.config["method"]
    model = MLPClassifier(benchmark.input_shape, benchmark.n_classes, parts.hidden, parts.extractor)
    optimizer = adam(model.parameters(), **parts.optimizer_args)
    generator_hidden = method["generator_hidden"] or parts.hidden
    if parts.protocol.conv:
        generator = conv_vae(parts.prior, benchmark.input_shape, generator_hidden)
    else:
        generator = mlp_vae(benchmark.input_shape, parts.prior, generator_hidden)
    options = dict(**parts.replay_args(), lr=parts.optimizer_args["lr"], betas=parts.optimizer_args["betas"],
                   targets=method["targets"], generator_schedule=method["generator_schedule"],
                   generator_iterations=method["generator_iterations"] or parts.config["iterations_per_experience"])
    return GenerativeReplay(model=model, optimizer=optimizer, generator=generator, replay_options=options,
                            **parts.strategy_args)


def build_bir(parts: Parts) -> SupervisedTemplate:
    """Brain-inspired replay: one ``BIRModel`` (gates, conditional prior, internal replay per the protocol)."""
    benchmark, method = parts.benchmark, parts.config["method"]
    gate_prop = parts.protocol.method_option(parts.config, "gate_prop")
    model = BIRModel(benchmark.input_shape, benchmark.n_classes, parts.prior, parts.hidden,
                     gate_prop=gate_prop if method["gating"] else 0.0, class_to_context=gate_contexts(parts),
                     feature_extractor=parts.extractor if internal_replay(parts) else None, seed=parts.config["seed"])
    options = dict(**parts.replay_args(), distill=method["distill"], conditional=method["conditional"])
    return BrainInspiredReplay(model=model, optimizer=adam(model.parameters(), **parts.optimizer_args),
                               replay_options=options, **parts.strategy_args)


#: method name -> builder of its strategy
METHOD_BUILDERS: dict[str, Callable[[Parts], SupervisedTemplate]] = {
    "naive": build_naive, "joint": build_joint, "gr": build_gr, "bir": build_bir,
}


def build_experiment(config: dict, out_dir: Path) -> Experiment:
    """Build a resolved ``config``'s run, writing its logs and replay images into ``out_dir``.

    Everything that draws random numbers is built in a fixed order after seeding (stream, conv layers, prior,
    models), so a config always gives the same initial state.
    """
    check_files(config)
    device = resolve_device(config["device"])
    seed_everything(config["seed"])
    stream, model_cfg, method = config["stream"], config["model"], config["method"]["name"]
    protocol = PROTOCOLS[stream["name"]]
    benchmark = build_stream(stream["name"], stream["n_experiences"], config["seed"], stream["root"], stream["scenario"])
    extractor = ConvFeatureExtractor.load_frozen(model_cfg["conv_weights"]) if protocol.conv and model_cfg["conv_weights"] else None
    prior = None
    if config["prior"] is not None:
        params = {k: v for k, v in config["prior"].items() if k != "name"}
        prior = priors.build(config["prior"]["name"], model_cfg["latent_dim"], benchmark.n_classes, **params)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = Parts(config, protocol, benchmark, prior, extractor, {}, {})
    replays = method in REPLAY_METHODS
    loss_metric, share_metric = (ReplayLossMetric(), ReplayShareMetric()) if replays else (None, None)
    internal = method == "bir" and internal_replay(parts)  # BI-R replays conv features
    judged = replays and config["replay_quality"] and not internal  # the judge reads images
    quality_metric = quality(config, benchmark, out_dir / "replay") if judged else None
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        *[metric for metric in (loss_metric, share_metric, quality_metric) if metric is not None],
        loggers=loggers(config, out_dir),
    )
    takes_features = extractor is not None and (method != "bir" or internal)
    batches = FeatureCache(extractor) if takes_features and model_cfg["feature_cache"] else InMemoryBatches()
    plugins: list = [batches, IterationBudget(config["iterations_per_experience"]),
                     ProgressBar(config["iterations_per_experience"], config["progress"])]
    if stream["scenario"] == "class":
        plugins.insert(0, SeenUnitsMask())
    if not replays:  # the replay plugins guard their own loss terms
        plugins.append(FiniteGuardPlugin(config["check_finite_every"]))
    if config["precision"] == "bf16":
        plugins.append(MixedPrecision(torch.bfloat16))  # last: it closes autocast after the others' iteration work
    parts.optimizer_args = {"lr": config["optimizer"]["lr"], "betas": tuple(config["optimizer"]["betas"])}
    parts.strategy_args = dict(criterion=torch.nn.CrossEntropyLoss(), train_mb_size=config["batch_size"],
                               train_epochs=1, eval_mb_size=config["eval_batch_size"], device=device,
                               evaluator=evaluator, plugins=plugins)
    strategy = METHOD_BUILDERS[method](parts)
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

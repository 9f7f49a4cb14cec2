"""Building a run from its config: stream, prior, model, replay method, plugins, metrics and loggers.

``build_experiment`` reads the stream's protocol (``replay.bench.protocols``); a replay method (any registered in
``replay.methods``) gets its model from its builder (``replay.bench.builders``), is constructed from its config keys
and trains through one ``ReplayMethodPlugin``; the baselines are Avalanche's own strategies.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import torch
from tqdm import tqdm

from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import CSVLogger, InteractiveLogger, TensorboardLogger, TextLogger, WandBLogger
from avalanche.training import Cumulative
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate

from replay import priors
from replay.bench.builders import ModelBuilder, Parts, builder_class
from replay.bench.config import BASELINES, ConfigError, default_run_name
from replay.bench.protocols import PROTOCOLS
from replay.bench.rundir import LOG
from replay.compat import patch_wandb_for_avalanche
from replay.methods import method_class, method_parameters
from replay.metrics import ReplayLossMetric, ReplayQualityMetric, ReplayShareMetric
from replay.models import ConvFeatureExtractor
from replay.optim import adam
from replay.plugins import (
    FeatureCache, FiniteGuardPlugin, InMemoryBatches, IterationBudget, MixedPrecision, ReplayMethodPlugin, SeenUnitsMask,
)
from replay.plugins.protocol import materialize
from replay.priors.base import LatentPrior
from replay.quality import judge_for
from replay.random_state import preserved_rng, seed_everything
from scenarios.data import default_root
from scenarios.streams import build_stream, stream_shape


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
    """A built run: its config, stream, strategy, protocol plugins, replay plugin (None for the baselines) and
    replay metrics."""

    config: dict
    benchmark: Any
    strategy: SupervisedTemplate
    plugins: list = field(default_factory=list)
    replay_plugin: Optional[ReplayMethodPlugin] = None
    loss_metric: Optional[ReplayLossMetric] = None
    share_metric: Optional[ReplayShareMetric] = None
    quality_metric: Optional[ReplayQualityMetric] = None


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


def build_prior(config: dict, n_classes: Optional[int]) -> Optional[LatentPrior]:
    """The config's prior with ``n_classes`` class slots (a stream's output units; None for methods without one)."""
    if config["prior"] is None:
        return None
    params = {k: v for k, v in config["prior"].items() if k != "name"}
    return priors.build(config["prior"]["name"], config["model"]["latent_dim"], n_classes, **params)


def checkpoint_estimate(config: dict) -> int:
    """Bytes of a run's checkpoint at its largest, estimated from its networks: each one's parameters and buffers
    four times (the network, Adam's two moments, its frozen copy). The networks are built on the stream's shapes
    alone (no data is read) and the random state is left as it was."""
    stream = config["stream"]
    shape, n_classes, per_experience = stream_shape(stream["name"], stream["n_experiences"], stream["scenario"])
    protocol = PROTOCOLS[stream["name"]]
    with preserved_rng():
        extractor = ConvFeatureExtractor(frozen=True) if protocol.conv else None
        benchmark = SimpleNamespace(input_shape=shape, n_classes=n_classes, classes_per_experience=per_experience)
        prior = build_prior(config, n_classes)
        parts = Parts(config, protocol, benchmark, prior, extractor, {"lr": 1e-3, "betas": (0.9, 0.999)},
                      functools.partial(build_prior, config) if prior is not None else None)
        if config["method"]["name"] in BASELINES:
            networks = {"model": parts.solver()}
        else:
            _, model, plugin = build_replay(parts)
            networks = plugin.method.guarded(model)
    return 4 * sum(t.numel() * t.element_size() for network in networks.values() for t in network.state_dict().values())


def build_replay(parts: Parts) -> tuple[ModelBuilder, torch.nn.Module, ReplayMethodPlugin]:
    """A registered replay method: its builder and the model it builds, the method from its config keys, one
    ``ReplayMethodPlugin``."""
    name, keys = parts.config["method"]["name"], dict(parts.config["method"])
    own = {key: keys.pop(key) for key in method_parameters(name)}
    keys.pop("name")
    builder = builder_class(name)(**keys)
    model, structural = builder.build(parts)
    return builder, model, ReplayMethodPlugin(method_class(name)(**structural, **own), parts.config["check_finite_every"])


def build_experiment(config: dict, out_dir: Path) -> Experiment:
    """Build a resolved ``config``'s run, writing its logs and replay images into ``out_dir``.

    Everything that draws random numbers is built in a fixed order after seeding (stream, conv layers, prior,
    models), so a config always gives the same initial state. A replay method trains through one ``ReplayMethodPlugin``,
    first among the strategy's plugins; the baselines are fine-tuning (``naive``, the lower bound) and Avalanche's
    ``Cumulative`` (``joint``, training on all the data seen so far, the upper bound).
    """
    check_files(config)
    device = resolve_device(config["device"])
    seed_everything(config["seed"])
    stream, model_cfg, method = config["stream"], config["model"], config["method"]["name"]
    protocol = PROTOCOLS[stream["name"]]
    benchmark = build_stream(stream["name"], stream["n_experiences"], config["seed"], stream["root"], stream["scenario"])
    extractor = ConvFeatureExtractor.load_frozen(model_cfg["conv_weights"]) if protocol.conv and model_cfg["conv_weights"] else None
    prior = build_prior(config, benchmark.n_classes)
    out_dir.mkdir(parents=True, exist_ok=True)
    optimizer_args = {"lr": config["optimizer"]["lr"], "betas": tuple(config["optimizer"]["betas"])}
    parts = Parts(config, protocol, benchmark, prior, extractor, optimizer_args,
                  functools.partial(build_prior, config) if prior is not None else None)
    if method in BASELINES:
        builder, model, replay_plugin = ModelBuilder(), parts.solver(), None
    else:
        builder, model, replay_plugin = build_replay(parts)
    loss_metric, share_metric = (ReplayLossMetric(), ReplayShareMetric()) if replay_plugin else (None, None)
    judged = replay_plugin is not None and config["replay_quality"] and replay_plugin.method.replays_images(model)
    quality_metric = build_quality_metric(config, benchmark, out_dir / "replay") if judged else None
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        *[metric for metric in (loss_metric, share_metric, quality_metric) if metric is not None],
        loggers=loggers(config, out_dir),
    )
    batches = FeatureCache(extractor) if builder.reads_features(parts) and model_cfg["feature_cache"] else InMemoryBatches()
    plugins: list = [batches, IterationBudget(config["iterations_per_experience"]),
                     ProgressBar(config["iterations_per_experience"], config["progress"])]
    if stream["scenario"] == "class":
        plugins.insert(0, SeenUnitsMask())
    if replay_plugin is None:  # the replay plugin guards the method's own loss terms
        plugins.append(FiniteGuardPlugin(config["check_finite_every"]))
    if config["precision"] == "bf16":
        plugins.append(MixedPrecision(torch.bfloat16))  # last: it closes autocast after the others' iteration work
    template = Cumulative if method == "joint" else SupervisedTemplate
    strategy = template(model=model, optimizer=adam(model.parameters(), **optimizer_args),
                        criterion=torch.nn.CrossEntropyLoss(), train_mb_size=config["batch_size"], train_epochs=1,
                        eval_mb_size=config["eval_batch_size"], device=device, evaluator=evaluator,
                        plugins=[replay_plugin, *plugins] if replay_plugin else plugins)
    return Experiment(config, benchmark, strategy, plugins, replay_plugin, loss_metric, share_metric, quality_metric)


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


def build_quality_metric(config: dict, benchmark: CLScenario, image_dir: Path) -> ReplayQualityMetric:
    """The replay-quality metric of a run: the stream's judge (cached under the data root's ``judges/``) and
    grids of replay samples written to ``image_dir``."""
    root = Path(config["stream"]["root"]) if config["stream"]["root"] else default_root()
    with preserved_rng():  # reading the data and the judge's initialisation must not change the run's stream
        x, y = judge_training_data(benchmark)
        judge = judge_for(x, y, benchmark.n_classes, root / "judges")
    return ReplayQualityMetric(judge, benchmark.test_stream, samples_per_class=config["replay_quality_samples"],
                               image_dir=image_dir)

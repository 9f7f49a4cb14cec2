"""The replay metrics through Avalanche's EvaluationPlugin and loggers: ReplayLossMetric (the plugins' named loss
terms) and ReplayShareMetric (how their replay divides among the earlier experiences)."""
from __future__ import annotations

import math

import pytest
import torch

from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import BaseLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin

from replay import BrainInspiredReplayPlugin, GenerativeReplayPlugin, IterationBudget, SeenUnitsMask
from replay.generators import mlp_vae
from replay.metrics import ReplayLossMetric, ReplayShareMetric
from replay.models import BIRModel, MLPClassifier
from replay.priors import build
from scenarios.streams import class_incremental_benchmark
from tests.helpers import blobs


class Collect(BaseLogger):
    """Every metric value a logger receives, in order."""

    def __init__(self):
        super().__init__()
        self.values: list[tuple[str, float, int]] = []

    def log_single_metric(self, name, value, x_plot):
        self.values.append((name, value, x_plot))


class IterationSpy(SupervisedPlugin):
    """``read()`` after every training iteration, per experience: the independent record to compare against."""

    def __init__(self, read):
        super().__init__()
        self.read, self.per_experience = read, []

    def before_training_exp(self, strategy, **kwargs):
        self.per_experience.append([])

    def after_training_iteration(self, strategy, **kwargs):
        self.per_experience[-1].append(self.read())


def run(model, replay_plugin, tiny_stream, iterations, every):
    metric, logger, spy = ReplayLossMetric(every=every), Collect(), IterationSpy(lambda: replay_plugin.last_losses)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), train_mb_size=32,
                     train_epochs=1, eval_mb_size=256,
                     plugins=[replay_plugin, SeenUnitsMask(), IterationBudget(iterations), spy],
                     evaluator=EvaluationPlugin(accuracy_metrics(experience=True), metric, loggers=[logger]))
    for experience in tiny_stream.train_stream:
        strategy.train(experience)
    return metric, logger, spy


def gr_setup():
    generator = mlp_vae((16,), build("gaussian", latent_dim=4), hidden=(32,))
    return MLPClassifier((16,), 4, (32,)), GenerativeReplayPlugin(generator, lr=1e-2)


def bir_setup():
    model = BIRModel((16,), 4, build("gmm", latent_dim=4, n_classes=4), (32, 32), gate_prop=0.5)
    return model, BrainInspiredReplayPlugin()


@pytest.mark.parametrize("setup, replay_terms", [
    (gr_setup, {"current", "replay", "generator"}),
    (bir_setup, {"classification_current", "recon_current", "reg_current", "classification_replay",
                 "recon_replay", "reg_replay"}),
])
def test_experience_means_equal_the_mean_of_each_iterations_terms(tiny_stream, setup, replay_terms):
    torch.manual_seed(0)
    metric, logger, spy = run(*setup(), tiny_stream, iterations=25, every=10)
    assert len(metric.experience_means) == 2
    assert set(metric.experience_means[1]) == replay_terms
    for means, iterations in zip(metric.experience_means, spy.per_experience):
        assert len(iterations) == 25
        for name, mean in means.items():
            values = [terms[name] for terms in iterations if name in terms]
            assert mean == pytest.approx(sum(values) / len(values), rel=1e-5)
    logged = {name: value for name, value, _ in logger.values}
    for name, mean in metric.experience_means[1].items():
        assert logged[f"ReplayLoss_Exp/{name}/train_phase/train_stream/Exp001"] == pytest.approx(mean)


def test_windows_cover_every_iteration_once(tiny_stream):
    torch.manual_seed(0)
    metric, logger, spy = run(*gr_setup(), tiny_stream, iterations=25, every=10)
    windows = [(value, x) for name, value, x in logger.values if name == "ReplayLoss_MB/replay/train_phase/train_stream"]
    assert [x for _, x in windows] == [35, 45, 50]  # experience 1 runs iterations 26-50: windows of 10, 10, 5
    replay = [terms["replay"] for terms in spy.per_experience[1]]
    expected = [sum(replay[:10]) / 10, sum(replay[10:20]) / 10, sum(replay[20:]) / 5]
    assert [value for value, _ in windows] == pytest.approx(expected, rel=1e-5)
    assert all(math.isfinite(value) for _, value, _ in logger.values)


def test_without_a_replay_plugin_it_fails_before_training(tiny_stream):
    model = MLPClassifier((16,), 4, (32,))
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters()), train_mb_size=32,
                     plugins=[IterationBudget(5)],
                     evaluator=EvaluationPlugin(ReplayLossMetric(), loggers=[]))
    with pytest.raises(ValueError, match="need a ReplayMethodPlugin"):
        strategy.train(tiny_stream.train_stream[0])
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        ReplayLossMetric(every=0)


def test_device_sums_equal_float_sums():
    from replay.metrics import TermSums

    generator = torch.Generator().manual_seed(0)
    by_device, by_float = TermSums(on_device=True), TermSums(on_device=False)
    expected = {"a": 0.0, "b": 0.0}
    for i in range(7):
        terms = {"a": torch.rand((1,), generator=generator), "b": torch.rand((), generator=generator)}
        if i >= 3:
            terms["c"] = torch.tensor(float(i))  # a term that appears later (replay from the second experience)
        for sums in (by_device, by_float):
            sums.add(terms)
        expected["a"] += float(terms["a"])
        expected["b"] += float(terms["b"])
    for sums in (by_device, by_float):
        totals = sums.sums()
        assert totals["a"][0] == pytest.approx(expected["a"], rel=1e-6) and totals["a"][1] == 7
        assert totals["b"][0] == pytest.approx(expected["b"], rel=1e-6)
        assert totals["c"] == (pytest.approx(3 + 4 + 5 + 6), 4)


def three_experience_stream():
    """6 classes of 16-dim blobs in 3 experiences: classes 0-1, 2-3, 4-5."""
    train, test = blobs(6, 100, 16, seed=1)
    return class_incremental_benchmark(train, test, 3, list(range(6)), name="blobs")


@pytest.mark.parametrize("setup", ["gr", "bir"])
def test_replay_shares_count_each_replayed_sample_for_the_experience_of_its_class(setup):
    torch.manual_seed(0)
    if setup == "gr":
        generator = mlp_vae((16,), build("gaussian", latent_dim=4), hidden=(32,))
        model, plugin = MLPClassifier((16,), 6, (32,)), GenerativeReplayPlugin(generator, lr=1e-2)
    else:
        model = BIRModel((16,), 6, build("gmm", latent_dim=4, n_classes=6), (32, 32), gate_prop=0.5)
        plugin = BrainInspiredReplayPlugin()
    metric, logger = ReplayShareMetric(), Collect()
    spy = IterationSpy(lambda: plugin.last_replay_classes)  # a fresh tensor each iteration
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), train_mb_size=32,
                     train_epochs=1, eval_mb_size=256,
                     plugins=[plugin, SeenUnitsMask(), IterationBudget(40), spy],
                     evaluator=EvaluationPlugin(metric, loggers=[logger]))
    for experience in three_experience_stream().train_stream:
        strategy.train(experience)
    first, second, third = metric.experience_shares
    assert first is None and set(spy.per_experience[0]) == {None}  # no replay while learning the first experience
    assert second == [1.0]  # only classes 0-1 can be replayed
    replayed = torch.cat(spy.per_experience[2])
    assert len(spy.per_experience[2]) == 40 and bool((replayed < 4).all())  # one replay batch per iteration
    from_first = float((replayed < 2).float().mean())  # an independent count: classes 0-1 came with experience 0
    assert third == pytest.approx([from_first, 1 - from_first])
    logged = {name: value for name, value, _ in logger.values}
    assert logged["ReplayShare_Exp/FromExp000/train_phase/train_stream/Exp002"] == pytest.approx(from_first)
    if setup == "bir":  # conditional replay draws the classes uniformly, and the frozen model recognises them
        assert 0.35 < from_first < 0.65

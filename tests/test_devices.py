"""Both replay plugins keep every tensor on the strategy's device, for each of the five priors.

The same test body runs on the CPU everywhere and on CUDA where torch sees a GPU (skipped otherwise), with the
pieces a GPU run uses: ``InMemoryBatches`` (data on the device), ``MixedPrecision`` (autocast on the device's
type) and the replay plugins' batched generation.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin

from replay import GenerativeReplayPlugin, InMemoryBatches, IterationBudget, MixedPrecision, SeenUnitsMask
from replay.generators import mlp_vae
from replay.models import BIRModel, MLPClassifier
from replay.priors import build
from replay.strategies import BrainInspiredReplayStrategy

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
PRIORS = ("gaussian", "binarized_gaussian", "gmm", "binarized_gmm", "cgm")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]


class ReplayDeviceProbe(SupervisedPlugin):
    """Collects the device types of the replay plugin's replay tensors and of the model's output, per iteration."""

    def __init__(self, plugin: SupervisedPlugin):
        super().__init__()
        self.plugin, self.devices, self.replay_iterations = plugin, set(), 0

    def after_forward(self, strategy, **kwargs):
        replay = self.plugin._replay
        if replay is not None:
            self.replay_iterations += 1
            self.devices |= {t.device.type for t in (replay.values() if isinstance(replay, dict) else replay)}
        self.devices.add(strategy.mb_output.device.type)


def module_devices(*modules: nn.Module) -> set[str]:
    return {t.device.type for module in modules for t in [*module.parameters(), *module.buffers()]}


def train_and_evaluate(strategy, stream) -> list[float]:
    for experience in stream.train_stream:
        strategy.train(experience)
    metrics = strategy.eval(stream.test_stream)
    return [metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"] for j in range(len(stream.test_stream))]


def common_options(device: str, plugins: list) -> dict:
    return dict(train_mb_size=32, train_epochs=1, eval_mb_size=256, device=device,
                evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]),
                plugins=[SeenUnitsMask(), InMemoryBatches(), IterationBudget(15), *plugins, MixedPrecision()])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("prior", PRIORS)
def test_gr_stays_on_the_device(tiny_stream, prior, device):
    torch.manual_seed(0)
    solver = MLPClassifier((16,), 4, (32,))
    generator = mlp_vae((16,), build(prior, latent_dim=4, n_classes=4), hidden=(32,))
    plugin = GenerativeReplayPlugin(generator, lr=1e-2)
    probe = ReplayDeviceProbe(plugin)
    strategy = Naive(model=solver, optimizer=torch.optim.Adam(solver.parameters(), lr=1e-2),
                     **common_options(device, [plugin, probe]))
    accuracies = train_and_evaluate(strategy, tiny_stream)
    assert probe.replay_iterations == 15 and probe.devices == {device}
    assert module_devices(solver, generator, plugin.method.frozen_generator, plugin.method.frozen_solver) == {device}
    assert all(math.isfinite(v) for v in plugin.last_losses.values()) and len(accuracies) == 2


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("prior", PRIORS)
def test_bir_stays_on_the_device(tiny_stream, prior, device):
    torch.manual_seed(0)
    model = BIRModel((16,), 4, build(prior, latent_dim=4, n_classes=4), (32, 32), gate_prop=0.5)
    strategy = BrainInspiredReplayStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                                   **common_options(device, []))
    probe = ReplayDeviceProbe(strategy.replay_plugin)
    strategy.plugins.append(probe)  # reads the replay made in before_forward: its place in the list does not matter
    accuracies = train_and_evaluate(strategy, tiny_stream)
    assert probe.replay_iterations == 15 and probe.devices == {device}
    assert module_devices(model, strategy.replay_plugin.method.frozen_model) == {device}
    assert all(math.isfinite(v) for v in strategy.replay_plugin.last_losses.values()) and len(accuracies) == 2


@CUDA
@pytest.mark.parametrize("prior", ["gmm", "binarized_gmm", "cgm", "cg_bpef", "intel_clustered"])
def test_conditional_sampling_never_synchronises_with_the_host(prior):
    """Conditional draws on the GPU run with torch's sync debug mode set to raise on any host synchronisation."""
    latent = build(prior, latent_dim=8, n_classes=10).cuda()
    latent.observe_classes(range(10))
    classes = torch.randint(10, (256,), device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        z = latent.sample(256, classes)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert z.shape == (256, 8) and z.device.type == "cuda"

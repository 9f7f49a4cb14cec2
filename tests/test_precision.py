"""MixedPrecision: bfloat16 training iterations around the replay plugins, float32 everywhere else."""
from __future__ import annotations

import pytest
import torch

from avalanche.training.plugins import SupervisedPlugin

from replay import GenerativeReplayPlugin, MixedPrecision, SeenUnitsMask
from replay.generators import mlp_vae
from replay.models import MLPClassifier
from replay.priors import build
from tests.test_gr import final_accuracies, make_naive


class DtypeProbe(SupervisedPlugin):
    """Records the solver's output dtype and whether autocast is on, during training and evaluation."""

    def __init__(self):
        super().__init__()
        self.train_dtypes, self.eval_dtypes = set(), set()

    def after_forward(self, strategy, **kwargs):
        self.train_dtypes.add(strategy.mb_output.dtype)

    def after_eval_forward(self, strategy, **kwargs):
        self.eval_dtypes.add(strategy.mb_output.dtype)


def test_iterations_run_in_bf16_with_float32_parameters_and_evaluation(tiny_stream):
    torch.manual_seed(0)
    model = MLPClassifier((16,), 4, (32,))
    generator = mlp_vae((16,), build("gaussian", latent_dim=4), hidden=(32,))
    plugin = GenerativeReplayPlugin(generator, lr=1e-2)
    seen, generator_loss = {}, plugin.method.generator_loss

    def probed(x, labels, weights):  # records the generator's reconstruction dtype inside its own update
        seen.update(recon_dtype=generator(x).output.dtype, autocast_on=torch.is_autocast_enabled("cpu"))
        return generator_loss(x, labels, weights)

    plugin.method.generator_loss = probed
    probe = DtypeProbe()
    strategy = make_naive(model, [plugin, SeenUnitsMask(), probe, MixedPrecision()], iterations=20)
    for experience in tiny_stream.train_stream:
        strategy.train(experience)
    final_accuracies(strategy, tiny_stream.test_stream)
    assert probe.train_dtypes == {torch.bfloat16}
    assert probe.eval_dtypes == {torch.float32}
    assert seen["autocast_on"] and seen["recon_dtype"] == torch.bfloat16  # GR's generator update is inside the autocast
    assert not torch.is_autocast_enabled("cpu")  # closed after training
    params = [*model.parameters(), *generator.parameters()]
    assert all(p.dtype == torch.float32 for p in params)
    assert all(torch.isfinite(p).all() for p in params)


def test_bf16_gr_keeps_the_old_task(tiny_stream):
    torch.manual_seed(0)
    plugin = GenerativeReplayPlugin(mlp_vae((16,), build("gmm", latent_dim=4, n_classes=4), hidden=(32,)), lr=1e-2)
    strategy = make_naive(MLPClassifier((16,), 4, (32,)), [plugin, SeenUnitsMask(), MixedPrecision()], iterations=150)
    for experience in tiny_stream.train_stream:
        strategy.train(experience)
    accuracies = final_accuracies(strategy, tiny_stream.test_stream)
    assert accuracies[0] > 0.6 and accuracies[1] > 0.8  # same bars as the float32 test in test_gr.py


def test_must_come_after_plugins_that_work_after_the_iteration(tiny_stream):
    plugin = GenerativeReplayPlugin(mlp_vae((16,), build("gaussian", latent_dim=4), hidden=(32,)))
    strategy = make_naive(MLPClassifier((16,), 4, (32,)), [MixedPrecision(), plugin], iterations=2)
    with pytest.raises(ValueError, match="MixedPrecision must come after GenerativeReplayPlugin"):
        strategy.train(tiny_stream.train_stream[0])


def test_a_binarized_shift_of_1e_4_survives_mixed_precision():
    """In bfloat16 (resolution 2^-8 near 1) r = 1e-4 would vanish; the guarded prior keeps it exactly."""
    plain, shifted = build("binarized_gaussian", latent_dim=4, r=0.0), build("binarized_gaussian", latent_dim=4, r=1e-4)
    head = plain.posterior_head(1)
    with torch.no_grad():
        head.mean.weight.fill_(0.9), head.mean.bias.zero_(), head.logvar.weight.zero_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q = head(torch.ones(1, 1))  # a bfloat16 linear layer would give 0.8984
        difference = plain.regularizer(q, q.mean) - shifted.regularizer(q, q.mean)
    # KL(N(mu, 1) || N(r, 1)) differs from r = 0 by r * mu - r^2 / 2 per dimension
    assert difference.item() == pytest.approx(4 * (1e-4 * 0.9 - 0.5e-8), rel=1e-3)

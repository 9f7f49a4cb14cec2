"""Priors whose plugins' hooks matter: the Bernoulli latent is refitted after each experience on current data plus
replay, in both plugins (every prior also runs in both: replay.priors.contract.check_in_replay_plugins)."""
from __future__ import annotations

import torch

from replay import IterationBudget, SeenUnitsMask
from replay.generators import mlp_vae
from replay.models import BIRModel, MLPClassifier
from replay.priors import build
from replay.strategies import BrainInspiredReplayStrategy, GenerativeReplayStrategy


def test_the_bernoulli_prior_is_refitted_on_current_data_and_replay(tiny_stream):
    torch.manual_seed(0)
    solver = MLPClassifier((16,), 4, (32,))
    generator = mlp_vae((16,), build("bernoulli", latent_dim=6, n_classes=4), hidden=(32,))
    gr = GenerativeReplayStrategy(model=solver, optimizer=torch.optim.Adam(solver.parameters()), generator=generator,
                          train_mb_size=32, plugins=[SeenUnitsMask(), IterationBudget(5)], evaluator=None)
    model = BIRModel((16,), 4, build("bernoulli", latent_dim=6, n_classes=4), (32,), gate_prop=0.5)
    bir = BrainInspiredReplayStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()), train_mb_size=32,
                              plugins=[SeenUnitsMask(), IterationBudget(5)], evaluator=None)
    for strategy in (gr, bir):
        for experience in tiny_stream.train_stream:
            strategy.train(experience)
    assert len(generator.prior.fit_errors) == 2 and {"global", 2, 3} <= set(generator.prior.fit_errors[-1])
    # BI-R's replay draws the old classes uniformly: the second fit sees classes 0-1 besides 2-3
    assert len(model.prior.fit_errors) == 2 and set(model.prior.fit_errors[-1]) == {"global", 0, 1, 2, 3}

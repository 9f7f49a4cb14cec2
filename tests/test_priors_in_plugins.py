"""Every registered prior runs, unchanged, inside both replay plugins (GR and BI-R) on a tiny stream."""
from __future__ import annotations

import pytest
import torch

from replay import IterationBudget, SeenUnitsMask
from replay.generators import mlp_vae
from replay.models import BIRModel, MLPClassifier
from replay.priors import PRIORS, build
from replay.strategies import BrainInspiredReplay, GenerativeReplay


@pytest.mark.parametrize("name", list(PRIORS))
def test_prior_in_gr_and_bir(tiny_stream, name):
    torch.manual_seed(0)
    solver = MLPClassifier((16,), 4, (32,))
    generator = mlp_vae((16,), build(name, latent_dim=6, n_classes=4), hidden=(32,))
    gr = GenerativeReplay(model=solver, optimizer=torch.optim.Adam(solver.parameters()), generator=generator,
                          train_mb_size=32, plugins=[SeenUnitsMask(), IterationBudget(5)], evaluator=None)
    model = BIRModel((16,), 4, build(name, latent_dim=6, n_classes=4), (32,), gate_prop=0.5)
    bir = BrainInspiredReplay(model=model, optimizer=torch.optim.Adam(model.parameters()), train_mb_size=32,
                              plugins=[SeenUnitsMask(), IterationBudget(5)], evaluator=None)
    for strategy in (gr, bir):
        for experience in tiny_stream.train_stream:
            strategy.train(experience)
        losses = strategy.replay_plugin.last_losses
        assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    if name == "bernoulli":  # refitted after each experience on current data plus replay
        assert len(model.prior.fit_errors) == 2 and set(model.prior.fit_errors[-1]) == {"global", 0, 1, 2, 3}

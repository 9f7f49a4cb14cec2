"""Every registered replay method keeps the method contract (replay.bench.contract), and every registered prior
trains in every method that takes one."""
from __future__ import annotations

import pytest

from replay.bench.contract import CONTRACT, check_prior_in_methods
from replay.methods import METHODS
from replay.priors import PRIORS, build


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", list(METHODS))
def test_method_keeps_the_contract(name, check):
    check(name)


@pytest.mark.parametrize("name", list(PRIORS))
def test_prior_trains_in_every_method(name):
    check_prior_in_methods(lambda latent_dim, n_classes: build(name, latent_dim, n_classes))

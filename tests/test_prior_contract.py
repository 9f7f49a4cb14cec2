"""Every registered prior keeps the prior contract (replay.priors.contract)."""
from __future__ import annotations

import pytest

from replay.priors import PRIORS, build
from replay.priors.contract import CONTRACT


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", list(PRIORS))
def test_prior_keeps_the_contract(name, check):
    check(lambda latent_dim, n_classes: build(name, latent_dim, n_classes))

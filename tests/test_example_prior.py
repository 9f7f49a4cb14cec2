"""A new prior, written as docs/priors.md ("How to add a prior") says, in this file alone: a factorised Laplace prior.

It goes through the whole prior contract (replay.priors.contract) without touching any other file; its regulariser
is checked against a Monte-Carlo estimate, as every prior's math is. Copy this file to start a prior of your own.
"""
from __future__ import annotations

import math
from typing import Optional

import pytest
import torch
from torch import Tensor

from replay.checks import POSITIVE
from replay.priors import GaussianPosterior, LatentPrior
from replay.priors.base import check_shapes
from replay.priors.contract import CONTRACT, check_regularizer


class Laplace(LatentPrior):
    """p(z) = prod_j Laplace(z_j; 0, b), with the Gaussian posterior of the default head.

    KL(N(m, s^2) || Laplace(0, b)) per dimension = -1/2 log(2 pi e s^2) + log(2b) + E|z| / b, with E|z| the folded
    normal mean s sqrt(2/pi) exp(-m^2 / 2s^2) + m (1 - 2 Phi(-m/s)). Unconditional: classes are ignored.
    """

    ranges = {"scale": POSITIVE}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, scale: float = 1.0):
        super().__init__(latent_dim, None)
        self.scale = scale

    def regularizer(self, posterior: GaussianPosterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        m, logvar = posterior.mean, posterior.logvar
        check_shapes(m, self.latent_dim)
        s = (0.5 * logvar).exp()
        folded_mean = s * math.sqrt(2 / math.pi) * torch.exp(-m.pow(2) / (2 * s.pow(2))) + m * torch.erf(m / (s * math.sqrt(2)))
        kl = -0.5 * (math.log(2 * math.pi * math.e) + logvar) + math.log(2 * self.scale) + folded_mean / self.scale
        return kl.sum(1)

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        return torch.distributions.Laplace(0.0, self.scale).sample((n, self.latent_dim)).to(self.seen.device)


def make(latent_dim: int, n_classes: Optional[int]) -> Laplace:
    return Laplace(latent_dim, n_classes, scale=0.7)


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
def test_the_example_prior_keeps_the_contract(check):
    check(make)


def test_the_laplace_kl_agrees_with_monte_carlo():
    torch.manual_seed(0)
    prior = make(3, None)
    posterior = GaussianPosterior(torch.tensor([[0.0, 1.5, -0.4]]), torch.tensor([[0.0, -1.0, 0.5]]))
    q = torch.distributions.Normal(posterior.mean, (0.5 * posterior.logvar).exp())
    z = q.sample((400_000,))
    p = torch.distributions.Laplace(0.0, 0.7)
    estimate = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean()
    assert float(prior.regularizer(posterior, posterior.mean)) == pytest.approx(float(estimate), abs=0.01)


def test_the_contract_catches_a_broken_prior():
    class Broken(Laplace):
        def regularizer(self, posterior, z, labels=None, probs=None):
            return super().regularizer(posterior, z).unsqueeze(1)  # [batch, 1], not one value per sample

    with pytest.raises(AssertionError, match="regularizer with"):
        check_regularizer(lambda latent_dim, n_classes: Broken(latent_dim, n_classes))

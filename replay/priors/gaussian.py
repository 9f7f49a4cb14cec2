"""Unimodal priors: the standard Gaussian and its binarized version (Hu & Rostami)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from replay.checks import NON_NEGATIVE
from replay.priors.base import GaussianPosterior as Posterior, LatentPrior, check_shapes
from replay.priors.divergences import binarized_gaussian_kl, binarized_log_normal

SAMPLING_MODES = ("reduced_bias", "biased")


def binary_shift(shape: tuple[int, ...], p_plus: Tensor | float, r: float, device: torch.device) -> Tensor:
    """+r with probability ``p_plus`` and -r otherwise, elementwise (the two sides of Hu & Rostami's binarized sampling)."""
    p = torch.as_tensor(p_plus, device=device).expand(shape)
    return r * (2.0 * torch.bernoulli(p) - 1.0)


class Gaussian(LatentPrior):
    """p(z) = N(0, I). Regulariser: closed-form KL (Kingma & Welling 2014, appendix B).

    Args:
        latent_dim: size of the latent code.
        n_classes: ignored (the prior is class-free).
    """

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None):
        super().__init__(latent_dim, None)

    @property
    def r(self) -> float:
        return 0.0

    def regularizer(self, posterior: Posterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        mu, logvar = posterior.mean, posterior.logvar
        check_shapes(mu, self.latent_dim)
        zero = mu.new_zeros(())
        return binarized_gaussian_kl(mu, logvar, zero, zero, self.r)

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        """Unconditional: ``classes`` is accepted for the common interface and ignored."""
        return torch.randn(n, self.latent_dim, device=self.seen.device)

    def log_prob(self, z: Tensor) -> Tensor:
        """log N(z; 0, I) (the binarized version: the two-sided mixture its ``sample`` draws from)."""
        zero = z.new_zeros(())
        return binarized_log_normal(z, zero, zero, self.r, self.p_plus)

    @property
    def p_plus(self) -> Tensor | float:
        """The probability of the +r side per dimension (none without binarizing)."""
        return 0.5


class BinarizedGaussian(Gaussian):
    """Binarized N(0, I) prior of Hu & Rostami (their eq. 2-5) with radius ``r``.

    Regulariser: KL to N(r * sign(mu), I) per dimension (correct variance term, see ``binarized_gaussian_kl``).
    Sampling: ``reduced_bias`` draws each dimension from 0.5 N(+r, 1) + 0.5 N(-r, 1) (used in all of the
    paper's experiments); ``biased`` weights the two sides by the fraction of training latent means above / below 0,
    refitted by ``end_experience`` on the latents it is given.

    Args:
        latent_dim: size of the latent code.
        n_classes: ignored (the prior is class-free).
        r: the binarizing radius (>= 0; 0 gives the Gaussian's KL).
        sampling: ``reduced_bias`` or ``biased``.
    """

    ranges = {"r": NON_NEGATIVE}
    choices = {"sampling": SAMPLING_MODES}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, r: float = 0.01,
                 sampling: str = "reduced_bias"):
        super().__init__(latent_dim)
        self._r = float(r)
        self.sampling = sampling
        self.wants_latents = sampling == "biased"
        self.register_buffer("p_above", torch.full((latent_dim,), 0.5))

    @property
    def r(self) -> float:
        return self._r

    @property
    def p_plus(self) -> Tensor:
        """The probability of the +r side per dimension: 1/2 (``reduced_bias``) or the refitted fraction (``biased``)."""
        return self.p_above

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        base = super().sample(n)
        return base + binary_shift(base.shape, self.p_plus, self.r, base.device)

    def end_experience(self, latents: Optional[Tensor] = None, labels: Optional[Tensor] = None) -> None:
        if self.sampling == "biased" and latents is not None:
            self.p_above.copy_((latents > 0).float().mean(0))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r={self.r}, sampling={self.sampling}"

"""Gaussian-mixture prior with one learnable mode per class (BI-R), and its binarized version."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from replay.checks import NON_NEGATIVE
from replay.errors import UserInputError
from replay.priors.base import GaussianPosterior as Posterior, LatentPrior, check_shapes
from replay.priors.divergences import binarized_gaussian_kl, binarized_log_normal, log_normal_diag
from replay.priors.gaussian import binary_shift

SOFT_ESTIMATORS = ("mc", "bound")


class GMM(LatentPrior):
    """p(z) = sum_c pi_c N(m_c, diag(e^lv_c)), one learnable mode per class slot.

    Modes are created for all ``n_classes`` slots (means and log-variances ~ N(0, 1), as in the reference)
    and become usable as their classes are observed, so classes are added as experiences arrive without
    changing the parameter set the optimiser holds.

    Regulariser (per sample):
    * class known: closed-form KL to that class's mode (lower variance than the reference's one-sample
      Monte-Carlo estimate, equal in expectation);
    * soft class probabilities ``p`` (``soft='mc'``, the reference): ``log q(z|x) - log sum_c p_c N(z; mode c)``
      on the sampled z; (``soft='bound'``): the upper bound ``sum_c p_c KL_c``;
    * nothing known: the Monte-Carlo estimate with uniform weights over the seen classes.

    Args:
        latent_dim: size of the latent code.
        n_classes: number of modes, one per class slot (required).
        soft: estimator with soft class probabilities: ``mc`` or ``bound``.
    """

    conditional = True
    choices = {"soft": SOFT_ESTIMATORS}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, soft: str = "mc"):
        if not n_classes:
            raise UserInputError(f"{type(self).__name__} needs n_classes (one mode per class)")
        super().__init__(latent_dim, n_classes)
        self.soft = soft
        self.means = nn.Parameter(torch.randn(n_classes, latent_dim))
        self.logvars = nn.Parameter(torch.randn(n_classes, latent_dim))

    @property
    def r(self) -> float:
        return 0.0

    def mode_means(self, mu: Tensor) -> Tensor:
        """Means of all modes as seen from each posterior mean, shape [batch, classes, dim].

        For the plain GMM these are the modes' means; the binarized version shifts them by +-r towards mu.
        """
        means = self.means.unsqueeze(0)
        if not self.r:
            return means.expand(mu.shape[0], -1, -1)
        return means + self.r * torch.sign(mu.unsqueeze(1) - means)

    def regularizer(self, posterior: Posterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        mu, logvar = posterior.mean, posterior.logvar
        check_shapes(mu, self.latent_dim)
        if labels is not None:
            return binarized_gaussian_kl(mu, logvar, self.means[labels], self.logvars[labels], self.r)
        weights = self._class_weights(probs, mu)
        if self.soft == "bound" and probs is not None:
            kl_all = binarized_gaussian_kl(
                mu.unsqueeze(1), logvar.unsqueeze(1), self.means.unsqueeze(0), self.logvars.unsqueeze(0), self.r
            )
            return (weights * kl_all).sum(1)
        log_q = log_normal_diag(z, mu, logvar)
        log_p_modes = log_normal_diag(z.unsqueeze(1), self.mode_means(mu), self.logvars.unsqueeze(0))
        log_p = torch.logsumexp(log_p_modes + weights.clamp_min(1e-30).log(), dim=1)
        return log_q - log_p

    def _class_weights(self, probs: Optional[Tensor], mu: Tensor) -> Tensor:
        """Class probabilities over all slots [batch, n_classes]; a prefix of classes is padded with zeros."""
        if probs is None:
            weights = self.seen.float() / self.seen.sum().clamp_min(1)
            return weights.unsqueeze(0).expand(mu.shape[0], -1)
        if probs.shape[1] > self.n_classes:
            raise UserInputError(f"{probs.shape[1]} class probabilities for a prior with {self.n_classes} classes")
        return nn.functional.pad(probs, (0, self.n_classes - probs.shape[1]))

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        """One latent per requested class (uniform over the seen classes when ``classes`` is None)."""
        classes = self.requested_classes(n, classes)
        means, std = self.means[classes], (0.5 * self.logvars[classes]).exp()
        z = means + std * torch.randn_like(means)
        if self.r:
            z = z + binary_shift(z.shape, 0.5, self.r, z.device)
        return z

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) of unconditional ``sample``: the uniform mixture of the seen classes' modes (each dimension
        shifted by +-r with probability 1/2 in the binarized version)."""
        seen = self.seen_classes()
        if len(seen) == 0:
            raise UserInputError("the prior has seen no class yet; call observe_classes first")
        per_mode = binarized_log_normal(z.unsqueeze(-2), self.means[seen], self.logvars[seen], self.r)
        return torch.logsumexp(per_mode, dim=-1) - math.log(len(seen))


class BinarizedGMM(GMM):
    """GMM whose per-class KL is binarized around the class's mode with radius r (Hu & Rostami, eq. 3).

    The paper publishes no code for this; this is the project's reading of eq. 3: the binarized KL of
    ``binarized_gaussian_kl`` against the class's mode (m_c, lv_c), and sampling from the class's mode with
    each dimension shifted by +-r with probability 1/2. With soft probabilities the Monte-Carlo mixture uses
    the per-sample shifted modes m_c + r sign(mu - m_c).

    Args:
        latent_dim: size of the latent code.
        n_classes: number of modes (required).
        r: the binarizing radius (>= 0).
        soft: as for ``GMM``.
    """

    ranges = {"r": NON_NEGATIVE}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, r: float = 0.002, soft: str = "mc"):
        super().__init__(latent_dim, n_classes, soft)
        self._r = float(r)

    @property
    def r(self) -> float:
        return self._r

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r={self.r}"

"""Coarse-grained bounded polynomial exponential family prior (CG-BPEF; Sun & Zhang 2017, "Coarse Grained Exponential
Variational Autoencoders")."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from replay.checks import Range, POSITIVE, COUNT
from replay.errors import UserInputError
from replay.priors.base import LatentPrior, Posterior, PosteriorHead, check_shapes


def grid(resolution: int) -> Tensor:
    """zeta_r = (2r - (R + 1)) / (R - 1), r = 1..R: R evenly spaced points on [-1, 1] (Sun & Zhang, section 3.2)."""
    return torch.linspace(-1.0, 1.0, resolution)


def monomial_basis(points: Tensor, order: int) -> Tensor:
    """[R, M] matrix of zeta_r^m, m = 1..M: the paper's polynomial basis (the constant is absorbed by the softmax)."""
    return points.unsqueeze(1) ** torch.arange(1, order + 1, dtype=points.dtype)


def gumbel_noise(like: Tensor) -> Tensor:
    """Standard Gumbel noise -log(-log U), U ~ Uniform(0, 1), shaped like ``like``. Drawn from ``rand`` rather
    than ``exponential_`` (what ``F.gumbel_softmax`` uses), which is about five times slower on CPU."""
    uniform = torch.rand_like(like).clamp_(min=torch.finfo(like.dtype).tiny)
    return -torch.log(-torch.log(uniform))


@dataclass(frozen=True)
class GridPosterior(Posterior):
    """Per latent dimension, a categorical over the R grid points: ``logits`` [batch, dim, R]; ``mean`` = E_q[z]."""

    logits: Tensor


class PolynomialLogitHead(PosteriorHead):
    """Encoder head giving, per latent dimension, M polynomial coefficients b_jm; returns a ``GridPosterior`` with
    logits beta_jr = sum_m b_jm zeta_r^m.

    Args:
        in_features: width of the encoder's last hidden layer.
        latent_dim: number of latent dimensions.
        basis: [R, M] monomial basis (``monomial_basis``).
        points: the R grid points.
    """

    def __init__(self, in_features: int, latent_dim: int, basis: Tensor, points: Tensor):
        super().__init__()
        self.latent_dim, self.order = latent_dim, basis.shape[1]
        self.coefficients = nn.Linear(in_features, latent_dim * self.order)
        self.register_buffer("basis", basis)
        self.register_buffer("points", points)

    def forward(self, h: Tensor) -> GridPosterior:
        b = self.coefficients(h).view(-1, self.latent_dim, self.order)
        logits = b @ self.basis.T
        return GridPosterior(F.softmax(logits, -1) @ self.points, logits)


class CGBPEF(LatentPrior):
    """CG-BPEF prior (Sun & Zhang, eq. 2-4): each latent dimension lives on R grid points of [-1, 1].

    * Posterior per dimension: categorical with polynomial logits (monomial basis zeta^1..zeta^M, the paper's);
      the head returns a ``GridPosterior`` and z is drawn with the Gumbel-softmax (Concrete) relaxation,
      z_j = sum_r y_jr zeta_r, at a temperature annealed exponentially from ``t_max`` to ``t_min`` over the
      first ``anneal_steps`` training iterations of the model that holds the prior (counted by ``training_step``,
      saved with the prior's state), then kept at ``t_min``.
    * Prior: per class slot, learned polynomial coefficients A_c (d x M) giving a categorical on the grid.
    * Regulariser: the exact discrete KL sum_j sum_r q_jr (log q_jr - log p_jr) to the class's prior (eq. 4).
      With soft class probabilities, or none (uniform over the seen classes): sum_c w_c KL_c, the upper bound
      of the KL to the mixture.
    * Sampling: a grid point per dimension from the class's categorical (hard, as T -> 0), by the Gumbel-max trick.

    Args:
        latent_dim: size of the latent code.
        n_classes: number of prior tables, one per class slot (required).
        resolution: R, grid points per dimension (>= 4).
        order: M, degree of the polynomial logits (1 <= M < R - 1).
        t_max: the Gumbel-softmax temperature at the start.
        t_min: the temperature after annealing (0 < t_min <= t_max).
        anneal_steps: training iterations over which the temperature anneals.
    """

    conditional = True

    ranges = {"resolution": Range(4, integer=True), "order": COUNT, "t_max": POSITIVE, "t_min": POSITIVE,
              "anneal_steps": COUNT}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, resolution: int = 51, order: int = 10,
                 t_max: float = 1.0, t_min: float = 0.5, anneal_steps: int = 5000):
        if not n_classes:
            raise UserInputError("CGBPEF needs n_classes (one prior table per class)")
        if not 1 <= order < resolution - 1:
            raise UserInputError(f"cg_bpef needs 1 <= order < resolution - 1, got order={order}, resolution={resolution}")
        if not 0 < t_min <= t_max:
            raise UserInputError(f"cg_bpef temperatures need 0 < t_min <= t_max, got {t_min}, {t_max}")
        super().__init__(latent_dim, n_classes)
        self.t_max, self.t_min, self.anneal_steps = float(t_max), float(t_min), int(anneal_steps)
        self.register_buffer("points", grid(resolution))
        self.register_buffer("basis", monomial_basis(self.points, order))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.coefficients = nn.Parameter(torch.zeros(n_classes, latent_dim, order))

    def posterior_head(self, in_features: int) -> nn.Module:
        return PolynomialLogitHead(in_features, self.latent_dim, self.basis, self.points)

    @property
    def temperature(self) -> float:
        """T = t_max (t_min / t_max)^min(steps / anneal_steps, 1)."""
        progress = min(float(self.steps) / max(self.anneal_steps, 1), 1.0)
        return self.t_max * (self.t_min / self.t_max) ** progress

    def training_step(self) -> None:
        self.steps += 1

    def reparameterize(self, posterior: GridPosterior) -> Tensor:
        """Gumbel-softmax draw y_j ~ Concrete(logits_j, T), z_j = y_j . zeta (eq. 5-6)."""
        logits = posterior.logits
        y = F.softmax((logits + gumbel_noise(logits)) / self.temperature, dim=-1)
        return y @ self.points

    def prior_log_probs(self) -> Tensor:
        """[classes, dim, R] log-probabilities of the prior tables."""
        return F.log_softmax(self.coefficients @ self.basis.T, dim=-1)

    def class_kl(self, logits: Tensor) -> Tensor:
        """[batch, classes] exact discrete KL of each posterior to each class's prior, summed over dimensions:
        KL_c = sum_jr q_jr log q_jr - sum_jr q_jr log p_c,jr, the second sum one matrix product for all classes."""
        log_q = F.log_softmax(logits, -1)
        q = log_q.exp()
        neg_entropy = (q * log_q).sum((-1, -2))
        cross = q.flatten(1) @ self.prior_log_probs().flatten(1).T
        return neg_entropy.unsqueeze(1) - cross

    def regularizer(self, posterior: GridPosterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        check_shapes(posterior.mean, self.latent_dim)
        logits = posterior.logits
        if labels is not None:
            log_q = F.log_softmax(logits, -1)
            return (log_q.exp() * (log_q - self.prior_log_probs()[labels])).sum((-1, -2))
        if probs is None:
            weights = (self.seen.float() / self.seen.sum().clamp_min(1)).expand(len(logits), -1)
        else:
            weights = F.pad(probs, (0, self.n_classes - probs.shape[1]))
        return (weights * self.class_kl(logits)).sum(1)

    def importance_sample(self, posterior: GridPosterior) -> tuple[Tensor, Tensor]:
        """A grid point per dimension drawn from q's categoricals (the model's discrete latent, as ``sample`` draws
        from the prior's), with log p(z) - log q(z|x) of the probability tables; p is the uniform mixture of the
        seen classes' tables, as in unconditional ``sample``."""
        log_q = F.log_softmax(posterior.logits, -1)  # [n, dim, R]
        index = (log_q + gumbel_noise(log_q)).argmax(-1)  # [n, dim]
        log_q_z = log_q.gather(-1, index.unsqueeze(-1)).squeeze(-1).sum(-1)
        seen = self.seen_classes()
        if len(seen) == 0:
            raise UserInputError("the prior has seen no class yet; call observe_classes first")
        tables = self.prior_log_probs()[seen]  # [k, dim, R]
        picked = tables.unsqueeze(0).expand(len(index), -1, -1, -1).gather(
            -1, index[:, None, :, None].expand(-1, len(seen), -1, 1)).squeeze(-1)  # [n, k, dim]
        log_p_z = torch.logsumexp(picked.sum(-1), 1) - math.log(len(seen))
        return self.points[index], log_p_z - log_q_z

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        classes = self.requested_classes(n, classes)
        log_probs = self.prior_log_probs()[classes]
        return self.points[(log_probs + gumbel_noise(log_probs)).argmax(-1)]

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, resolution={len(self.points)}, order={self.basis.shape[1]}, "
                f"t_max={self.t_max}, t_min={self.t_min}, anneal_steps={self.anneal_steps}")

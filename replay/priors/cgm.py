"""Categorical generative-model prior of Abrol, Sharma & Patra (CGM): prototypes, fixed encoder variance, MMD, descriptor."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from replay.checks import POSITIVE, NON_NEGATIVE
from replay.errors import UserInputError
from replay.priors.base import GaussianPosterior, LatentPrior, Posterior, PosteriorHead, check_shapes
from replay.priors.divergences import mmd2_per_sample


class FixedVarianceHead(PosteriorHead):
    """Mean-only encoder head; the log-variance is a constant (the bounded information rate of CGM)."""

    def __init__(self, in_features: int, latent_dim: int, logvar: float):
        super().__init__()
        self.mean = nn.Linear(in_features, latent_dim)
        self.logvar = logvar

    def forward(self, h: Tensor) -> GaussianPosterior:
        mu = self.mean(h)
        return GaussianPosterior(mu, torch.full_like(mu, self.logvar))


class CGM(LatentPrior):
    """CGM categorical prior (Abrol, Sharma & Patra, section II, eq. 6-8), supervised variant (CGM2).

    * Encoder gives the mean r = mu only; z = mu + eps with a fixed variance (``variance``, 0.02 in the paper,
      or ``info_rate`` bits over N dims: sigma^2 = 1 / 4^(I/N)).
    * K prototypes g_k, one per class slot, learned through the descriptor loss (eq. 8):
      ``||r - g_y||^2 + sum_{k != y, seen} max(0, m - ||r - g_k||^2)``.
    * MMD^2 (eq. 5) with the Gaussian kernel exp(-||a-b||^2 / (2N)) between the posterior samples z and
      samples g_y + eps' of the assigned prototypes.
    * Regulariser per sample: ``lam * mmd2_i + beta * descriptor_i`` (eq. 6; lam about 1000 against a
      per-image summed reconstruction loss). No KL.
    * Assignment: the label; else the most probable class of the soft probabilities; else the nearest seen
      prototype (the unsupervised CGM1 rule).
    * Sampling (``sampling``): ``prototype``, as in the paper, z = g_k + eps, eps ~ N(0, variance I); or
      ``encoded`` (ours, an option): z ~ N(m_k, S_k + variance I), with m_k and S_k the mean and covariance of the
      encoder's means r of class k's training data, fitted when the class's experience ends. That is the Gaussian
      fitted to the class's aggregate posterior (r + eps over its data): it keeps the spread of the class's
      encodings, where a prototype and the small fixed noise replay nearly one image per class. A class fitted from
      fewer than two encodings falls back to its prototype.
    * Prototypes (and fits) of past classes are frozen at the end of each experience (``end_experience``), so replay
      keeps decoding to them while new classes move.

    Args:
        latent_dim: size of the latent code.
        n_classes: number of prototypes, one per class slot (required).
        variance: the fixed encoder and prototype-noise variance (> 0).
        info_rate: bits over the latent instead of ``variance``: sigma^2 = 4^(-I/N).
        lam: weight of the MMD term.
        beta: weight of the descriptor term.
        margin: the descriptor's squared-distance margin to other prototypes.
        sampling: ``prototype`` (the paper's) or ``encoded`` (each class's fitted spread of encodings).
    """

    conditional = True

    ranges = {"variance": POSITIVE, "info_rate": POSITIVE, "lam": NON_NEGATIVE, "beta": NON_NEGATIVE,
              "margin": NON_NEGATIVE}
    choices = {"sampling": ("prototype", "encoded")}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, variance: float = 0.02,
                 info_rate: Optional[float] = None, lam: float = 1000.0, beta: float = 1.0, margin: float = 1.0,
                 sampling: str = "prototype"):
        if not n_classes:
            raise UserInputError("CGM needs n_classes (one prototype per class)")
        super().__init__(latent_dim, n_classes)
        if info_rate is not None:
            variance = 4.0 ** (-info_rate / latent_dim)
        if not variance > 0:
            raise UserInputError(f"CGM variance must be positive, got {variance}")
        self.variance, self.lam, self.beta, self.margin = float(variance), float(lam), float(beta), float(margin)
        self.prototypes = nn.Parameter(torch.randn(n_classes, latent_dim))
        self.register_buffer("frozen_prototypes", torch.zeros(n_classes, latent_dim))
        self.register_buffer("frozen", torch.zeros(n_classes, dtype=torch.bool))
        self.sampling = sampling
        self.wants_latents = sampling == "encoded"
        if self.wants_latents:  # the prototype sampler's state stays as it was
            self.register_buffer("spread_mean", torch.zeros(n_classes, latent_dim))
            self.register_buffer("spread_factor", torch.zeros(n_classes, latent_dim, latent_dim))
            self.register_buffer("fitted", torch.zeros(n_classes, dtype=torch.bool))

    def posterior_head(self, in_features: int) -> nn.Module:
        return FixedVarianceHead(in_features, self.latent_dim, math.log(self.variance))

    def current_prototypes(self) -> Tensor:
        return torch.where(self.frozen.unsqueeze(1), self.frozen_prototypes, self.prototypes)

    def assign(self, mu: Tensor, labels: Optional[Tensor], probs: Optional[Tensor], prototypes: Tensor) -> Tensor:
        if labels is not None:
            return labels
        if probs is not None:
            return probs.argmax(1)
        distances = torch.cdist(mu.detach(), prototypes.detach()).masked_fill(~self.seen, float("inf"))
        return distances.argmin(1)

    def descriptor_loss(self, mu: Tensor, labels: Tensor, prototypes: Tensor) -> Tensor:
        """Eq. 8 per sample: pull r to its own prototype, push it at least ``margin`` (squared) from the others."""
        sq_dist = torch.cdist(mu, prototypes).pow(2)
        own = sq_dist.gather(1, labels.unsqueeze(1)).squeeze(1)
        others = self.seen.unsqueeze(0) & (torch.arange(self.n_classes, device=mu.device) != labels.unsqueeze(1))
        hinge = torch.relu(self.margin - sq_dist) * others
        return own + hinge.sum(1)

    def regularizer(self, posterior: Posterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        mu = posterior.mean
        check_shapes(mu, self.latent_dim)
        prototypes = self.current_prototypes()
        labels = self.assign(mu, labels, probs, prototypes)
        targets = prototypes[labels]
        prototype_samples = targets + math.sqrt(self.variance) * torch.randn_like(targets)
        return self.lam * mmd2_per_sample(z, prototype_samples) + self.beta * self.descriptor_loss(mu, labels, prototypes)

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        classes = self.requested_classes(n, classes)
        centres = self.current_prototypes()[classes]
        noise = torch.randn_like(centres)
        prototype_draw = centres + math.sqrt(self.variance) * noise
        if self.sampling == "prototype":
            return prototype_draw
        encoded_draw = self.spread_mean[classes] + (self.spread_factor[classes] @ noise.unsqueeze(-1)).squeeze(-1)
        return torch.where(self.fitted[classes].unsqueeze(1), encoded_draw, prototype_draw)

    @torch.no_grad()
    def end_experience(self, latents: Optional[Tensor] = None, labels: Optional[Tensor] = None) -> None:
        newly = self.seen & ~self.frozen
        self.frozen_prototypes[newly] = self.prototypes[newly].detach()
        if self.sampling == "encoded" and latents is not None:
            self.fit_spreads(latents, labels, newly.nonzero().flatten().tolist())
        self.frozen |= self.seen

    @torch.no_grad()
    def fit_spreads(self, latents: Tensor, labels: Tensor, classes: list[int]) -> None:
        """For each of ``classes`` with at least two encodings: m_k, and the Cholesky factor of S_k + variance I
        (float64, then stored in the prior's dtype).

        Args:
            latents: encoder means r [n, latent_dim].
            labels: their classes [n].
            classes: the classes to fit (those whose experience just ended).
        """
        eye = torch.eye(self.latent_dim, dtype=torch.float64, device=latents.device)
        for k in classes:
            own = latents[labels == k].double()
            if len(own) < 2:
                continue
            covariance = torch.cov(own.T).reshape(self.latent_dim, self.latent_dim)
            self.spread_mean[k] = own.mean(0).to(self.spread_mean.dtype)
            self.spread_factor[k] = torch.linalg.cholesky(covariance + self.variance * eye).to(self.spread_factor.dtype)
            self.fitted[k] = True

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, variance={self.variance}, lam={self.lam}, beta={self.beta}, "
                f"margin={self.margin}, sampling={self.sampling}")

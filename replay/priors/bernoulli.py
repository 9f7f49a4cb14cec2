"""Latent Bernoulli prior of LBAE (Fajtl, Argyriou, Monekosso & Remagnino 2020, "Latent Bernoulli Autoencoder"): binary codes, no KL, moments fitted after training,
sampling by random hyperplane rounding."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from replay.checks import COUNT
from replay.priors.base import LatentPrior, Posterior, PosteriorHead, check_shapes


class TanhHead(PosteriorHead):
    """Encoder head of LBAE: tanh of a batch-normalised linear layer (the sign is taken by ``reparameterize``).

    The batch-norm (no affine part) is ours: without it, an MLP encoder trained with Adam 1e-3 pushes every
    input's pre-activation the same way in the first iterations, tanh saturates and all inputs share one code
    (seen at d = 4 and d = 32 on MNIST); normalising each unit over the batch keeps the bits balanced. The
    paper's residual CNN encoder has normalisation layers of its own. A training batch of one sample (the last,
    partial batch of an epoch, say) has no batch statistics: it is normalised with the running ones, as in evaluation,
    and leaves them unchanged.
    """

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.mean = nn.Linear(in_features, latent_dim)
        self.norm = nn.BatchNorm1d(latent_dim, affine=False)

    def forward(self, h: Tensor) -> Posterior:
        pre = self.mean(h)
        if self.training and len(pre) == 1:
            normed = F.batch_norm(pre, self.norm.running_mean, self.norm.running_var, training=False, eps=self.norm.eps)
        else:
            normed = self.norm(pre)
        return Posterior(torch.tanh(normed))


def binarize_straight_through(x: Tensor) -> Tensor:
    """sign(x) in {-1, 1} forward, identity gradient backward (Fajtl et al., section 3.1)."""
    hard = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    return x + (hard - x).detach()


def moment_matrix(codes: Tensor) -> Tensor:
    """M = [[E[YY^T], E[Y]], [E[Y]^T, 1]] of +-1 codes (Fajtl et al., eq. 4), float64."""
    y = codes.double()
    extended = torch.cat([y, torch.ones(len(y), 1, dtype=y.dtype, device=y.device)], 1)
    return extended.T @ extended / len(y)


def nearest_correlation(h: Tensor, eps: float = 1e-10) -> Tensor:
    """Repair a symmetric matrix to the nearest PSD matrix with unit diagonal (eigenvalue clipping), float64."""
    values, vectors = torch.linalg.eigh(h)
    if values.min() > eps:
        return h
    repaired = vectors @ torch.diag(values.clamp_min(eps)) @ vectors.T
    scale = repaired.diagonal().rsqrt()
    return repaired * scale[:, None] * scale[None, :]


def hyperplane_factor(m: Tensor) -> tuple[Tensor, bool]:
    """V with rows on the unit sphere and V V^T = H = cos(pi/2 (1 - M)) (eq. 8-10); whether H needed repair."""
    h = torch.cos(0.5 * math.pi * (1.0 - m))
    repaired = nearest_correlation(h)
    return torch.linalg.cholesky(repaired), repaired is not h


def hyperplane_round(v: Tensor, normals: Tensor) -> Tensor:
    """Eq. 12: b = sign(V r)_{-(N+1)} * sign(V_{N+1} r), for ``normals`` r of shape [n, N+1] (V: [N+1, N+1] or [n, N+1, N+1])."""
    projections = (v @ normals.unsqueeze(-1)).squeeze(-1) if v.dim() == 3 else normals @ v.T
    signs = torch.where(projections >= 0, 1.0, -1.0)
    return signs[:, :-1] * signs[:, -1:]


class Bernoulli(LatentPrior):
    """Multivariate Bernoulli latent of LBAE (Fajtl et al. 2020).

    * Encoder head: tanh, then sign with the straight-through (identity) gradient; no regulariser (zeros).
    * ``end_experience(latents, labels)``: refits the moment matrix M of the +-1 codes, globally and per class,
      turns it into H = cos(pi/2 (1 - M)), repairs H to the nearest PSD correlation matrix in float64 when
      needed, and keeps the Cholesky factor V. The moment-matching error of every fit (max |moment of 20k
      samples - fitted moment|) is recorded in ``fit_errors``.
    * ``sample(n, classes)``: random hyperplane rounding with r ~ N(0, I_{N+1}), from the global fit, or from
      each requested class's fit (conditional replay). Before any fit, V = I: independent fair bits.
    The plugins give ``end_experience`` the codes of the current encoder on current data plus replay of
    the previous classes, so old classes are refitted in the current code space.

    Args:
        latent_dim: number of bits of the code.
        n_classes: class slots for per-class fits (None: a global fit only).
        check_samples: samples drawn to measure each fit's moment-matching error.
    """

    conditional = True
    wants_latents = True

    ranges = {"check_samples": COUNT}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, check_samples: int = 20_000):
        super().__init__(latent_dim, n_classes)
        eye = torch.eye(latent_dim + 1)
        self.register_buffer("v_global", eye.clone())
        self.register_buffer("v_class", eye.repeat(n_classes or 0, 1, 1))
        self.check_samples = check_samples
        self.fit_errors: list[dict] = []

    def posterior_head(self, in_features: int) -> nn.Module:
        return TanhHead(in_features, self.latent_dim)

    def reparameterize(self, posterior: Posterior) -> Tensor:
        return binarize_straight_through(posterior.mean)

    def embed(self, mu: Tensor) -> Tensor:
        return torch.where(mu >= 0, 1.0, -1.0)

    def regularizer(self, posterior: Posterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        mu = posterior.mean
        check_shapes(mu, self.latent_dim)
        return mu.new_zeros(mu.shape[0])

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        normals = torch.randn(n, self.latent_dim + 1, device=self.v_global.device)
        if classes is None or self.n_classes is None:
            return hyperplane_round(self.v_global, normals)
        self.check_classes(classes)
        return hyperplane_round(self.v_class[classes], normals)

    @torch.no_grad()
    def fit(self, codes: Tensor) -> tuple[Tensor, dict]:
        """Cholesky factor for +-1 ``codes`` and the fit's record (repair needed, moment-matching error)."""
        m = moment_matrix(codes)
        v, repaired = hyperplane_factor(m)
        normals = torch.randn(self.check_samples, self.latent_dim + 1, dtype=torch.float64, device=codes.device)
        error = (moment_matrix(hyperplane_round(v, normals)) - m).abs().max()
        return v.float(), {"n_codes": len(codes), "repaired": bool(repaired), "max_moment_error": float(error)}

    @torch.no_grad()
    def end_experience(self, latents: Optional[Tensor] = None, labels: Optional[Tensor] = None) -> None:
        if latents is None:
            return
        codes = torch.where(latents >= 0, 1.0, -1.0)
        v, record = self.fit(codes)
        self.v_global.copy_(v)
        records = {"global": record}
        if labels is not None and self.n_classes:
            for c in torch.unique(labels).tolist():
                v_c, records[c] = self.fit(codes[labels == c])
                self.v_class[c].copy_(v_c)
        self.fit_errors.append(records)

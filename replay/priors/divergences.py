"""Closed-form divergences and log-densities shared by the priors (the only place that holds the formulas)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2.0 * math.pi)


def binarized_gaussian_kl(mu: Tensor, logvar: Tensor, mean: Tensor, logvar_p: Tensor, r: float = 0.0) -> Tensor:
    """Per-sample KL(N(mu, e^logvar) || N(mean + r*sign(mu - mean), e^logvar_p)), summed over latent dims.

    Hu & Rostami, eq. 2-5, with the correct variance term:
    ``0.5 * sum(lv - logvar + (exp(logvar) + (|mu - m| - r)^2) / exp(lv) - 1)``.
    The paper's eq. 4 prints the log-ratio upside down and its public code drops the division by the prior
    variance; both are corrected here (a deliberate deviation, see docs/priors.md). With ``r = 0`` this is exactly the Gaussian KL (``|d|^2 == d^2``).
    At ``mu == m`` the gradient is finite: torch's subgradient of ``|d|`` at 0 is 0.
    """
    distance = (mu - mean).abs() - r if r else mu - mean
    terms = logvar_p - logvar + (logvar.exp() + distance.pow(2)) / logvar_p.exp() - 1.0
    return 0.5 * terms.sum(dim=-1)


def log_normal_diag(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mean, diag(e^logvar)), summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp()).sum(dim=-1)


def binarized_log_normal(z: Tensor, mean: Tensor, logvar: Tensor, r: float, p_plus: Tensor | float = 0.5) -> Tensor:
    """log of prod_d [p_d N(z_d; m_d + r, e^lv_d) + (1 - p_d) N(z_d; m_d - r, e^lv_d)], summed over the last
    dimension: the density of a Gaussian whose every dimension is shifted by +r with probability p and by -r otherwise
    (the binarized priors' sampling; r = 0 gives log N(z; mean, diag(e^logvar))).

    Args:
        z: latents [..., dim].
        mean: the Gaussian's mean (broadcast against ``z``).
        logvar: its log-variance (broadcast against ``z``).
        r: the shift (>= 0).
        p_plus: the probability of +r per dimension (a number or a tensor broadcast against ``z``).
    """
    if not r:
        return log_normal_diag(z, mean, logvar)
    p_plus = torch.as_tensor(p_plus, dtype=z.dtype, device=z.device)
    per_dim = -0.5 * (LOG_2PI + logvar)
    up = per_dim - 0.5 * (z - mean - r).pow(2) / logvar.exp() + p_plus.log()
    down = per_dim - 0.5 * (z - mean + r).pow(2) / logvar.exp() + (1 - p_plus).log()
    return torch.logaddexp(up, down).sum(dim=-1)


def gaussian_kernel(a: Tensor, b: Tensor) -> Tensor:
    """k(a, b) = exp(-||a - b||^2 / (2N)) for all pairs, N = latent size (Abrol, Sharma & Patra, eq. 7)."""
    return torch.exp(-torch.cdist(a, b).pow(2) / (2.0 * a.shape[-1]))


def mmd2_per_sample(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample terms of the (biased, V-statistic) MMD^2 between samples ``a`` and ``b`` (Abrol, Sharma & Patra, eq. 5).

    Row i holds ``mean_j k(a_i,a_j) + mean_j k(b_i,b_j) - mean_j k(a_i,b_j) - mean_j k(b_i,a_j)``; their mean
    over i is ``mean k(a,a) + mean k(b,b) - 2 mean k(a,b)``, exactly zero when the two sample sets coincide.
    """
    k_ab = gaussian_kernel(a, b)
    return gaussian_kernel(a, a).mean(1) + gaussian_kernel(b, b).mean(1) - k_ab.mean(1) - k_ab.mean(0)

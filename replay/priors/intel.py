"""InteL-VAE priors (Miao et al. 2022, "On Incorporating Inductive Biases into VAEs"): Gaussian KL on an intermediary y, latent z = g(y) with an inductive-bias map."""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from replay.checks import POSITIVE, NON_NEGATIVE
from replay.errors import UserInputError
from replay.priors.base import GaussianPosterior, LatentPrior, check_shapes
from replay.priors.divergences import binarized_gaussian_kl, log_normal_diag


def gaussian_kl(posterior: GaussianPosterior) -> Tensor:
    """KL(q(y|x) || N(0, I)) per sample, the regulariser on the intermediary space (Miao et al., eq. 2)."""
    zero = posterior.mean.new_zeros(())
    return binarized_gaussian_kl(posterior.mean, posterior.logvar, zero, zero)


def intermediary_importance_sample(mapping: Callable[[Tensor], Tensor],
                                   posterior: GaussianPosterior) -> tuple[Tensor, Tensor]:
    """Importance sampling through the intermediary: the model is p(y) = N(0, I), z = g(y), so p(x) =
    E_{q(y|x)}[p(x|g(y)) N(y; 0, I) / q(y|x)] and the density of z itself (through g's Jacobian) is never needed.
    Returns (z = g(y) for y ~ q(y|x), log N(y; 0, I) - log q(y|x)).

    Args:
        mapping: g.
        posterior: q(y|x).
    """
    y = posterior.mean + (0.5 * posterior.logvar).exp() * torch.randn_like(posterior.mean)
    zero = y.new_zeros(())
    return mapping(y), log_normal_diag(y, zero, zero) - posterior.log_prob(y)


class InteLClustered(LatentPrior):
    """Clustered mapping (Miao et al., eq. 6 and appendix C.2) with one sector per class slot.

    g(y) = y + c1 * dis(y)^c2 * r(y) on the plane of y's first two dims, split into K = n_classes equal sectors
    starting at angle 0; r(y) is the unit direction of y's sector centre, dis(y) the distance to the nearest
    sector boundary. g(y) = y on the boundaries, so g is continuous. For finite gradients at the boundaries and
    the origin we use (dis + eps)^c2 - eps^c2 instead of dis^c2 (a deviation of at most eps^c2 = 1e-3 there).
    c1 = 5 and c2 = 0.5 by default (a deliberate choice: the paper's appendix uses c2 = 0.2).

    Conditional replay (not in the paper; how we tie sectors to classes): sector k belongs to class k. With
    labels (or soft probabilities) the regulariser adds ``sector_weight`` times the cross-entropy between the
    class and a von Mises-style sector score of the posterior mean's angle, kappa * cos(angle - centre_k), so a
    class's data settles in its sector. ``sample(n, classes)`` draws y ~ N(0, I) and rotates its first two dims
    to a uniform angle inside the class's sector (exact, as N(0, I) is isotropic), then maps z = g(y).

    Args:
        latent_dim: size of the latent (>= 2; the sectors live in its first two dimensions).
        n_classes: number of sectors, one per class slot (required).
    """

    conditional = True
    min_classes = 2

    ranges = {"c1": NON_NEGATIVE, "c2": POSITIVE, "sector_weight": NON_NEGATIVE, "kappa": POSITIVE,
              "eps": POSITIVE}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, c1: float = 5.0, c2: float = 0.5,
                 sector_weight: float = 1.0, kappa: float = 5.0, eps: float = 1e-6):
        if not n_classes or n_classes < 2:
            raise UserInputError("intel_clustered needs n_classes >= 2 (one sector per class)")
        if latent_dim < 2:
            raise UserInputError("intel_clustered needs latent_dim >= 2 (sectors live on the first two dims)")
        super().__init__(latent_dim, n_classes)
        self.c1, self.c2, self.sector_weight, self.kappa, self.eps = c1, c2, sector_weight, kappa, eps
        self.width = 2 * math.pi / n_classes
        centres = self.width * (torch.arange(n_classes) + 0.5)
        self.register_buffer("centres", centres)

    def sector_geometry(self, plane: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(sector index, distance to the nearest boundary, angle) of 2-d points."""
        angle = torch.atan2(plane[:, 1], plane[:, 0]) % (2 * math.pi)
        index = torch.div(angle, self.width, rounding_mode="floor").long().clamp_max(self.n_classes - 1)
        offset = angle - index * self.width
        nearest = torch.minimum(offset, self.width - offset)  # <= pi/2 since K >= 2
        return index, plane.norm(dim=1) * torch.sin(nearest), angle

    def mapping(self, y: Tensor) -> Tensor:
        """z = g(y)."""
        plane = y[:, :2]
        index, distance, _ = self.sector_geometry(plane)
        centre = self.centres[index]
        direction = torch.stack([torch.cos(centre), torch.sin(centre)], 1)
        push = self.c1 * ((distance + self.eps) ** self.c2 - self.eps ** self.c2)
        return torch.cat([plane + push.unsqueeze(1) * direction, y[:, 2:]], 1)

    def reparameterize(self, posterior: GaussianPosterior) -> Tensor:
        return self.mapping(super().reparameterize(posterior))

    def importance_sample(self, posterior: GaussianPosterior) -> tuple[Tensor, Tensor]:
        """Through the intermediary y (``intermediary_importance_sample``): unconditional ``sample`` draws y from
        N(0, I) whatever the sectors."""
        return intermediary_importance_sample(self.mapping, posterior)

    def embed(self, mu: Tensor) -> Tensor:
        return self.mapping(mu)

    def sector_logits(self, mu: Tensor) -> Tensor:
        angle = torch.atan2(mu[:, 1], mu[:, 0])
        return self.kappa * torch.cos(angle.unsqueeze(1) - self.centres.unsqueeze(0))

    def regularizer(self, posterior: GaussianPosterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        mu = posterior.mean
        check_shapes(mu, self.latent_dim)
        kl = gaussian_kl(posterior)
        if labels is None and probs is None:
            return kl
        log_p = F.log_softmax(self.sector_logits(mu), 1)
        if labels is not None:
            assignment = -log_p.gather(1, labels.unsqueeze(1)).squeeze(1)
        else:
            assignment = -(F.pad(probs, (0, self.n_classes - probs.shape[1])) * log_p).sum(1)
        return kl + self.sector_weight * assignment

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        y = torch.randn(n, self.latent_dim, device=self.centres.device)
        if classes is not None:
            self.check_classes(classes)
            angle = self.width * (classes.float() + torch.rand(n, device=y.device))
            radius = y[:, :2].norm(dim=1)
            y = torch.cat([torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1), y[:, 2:]], 1)
        return self.mapping(y)


def normalized_entropy(v: Tensor) -> Tensor:
    """H(v) = -sum_i (v_i / |v|_1) log(v_i / |v|_1) along the last dim, for positive v (Miao et al., eq. 7)."""
    p = v / v.sum(-1, keepdim=True)
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def hoyer(z: Tensor) -> Tensor:
    """Hoyer sparsity (Hurley & Rickard 2009; Miao et al., eq. C.3) of each row of z, dims scaled by their std
    over the rows: (sqrt(D) - |z|_1 / |z|_2) / (sqrt(D) - 1); 1 = one active dim, 0 = all equal."""
    scaled = z / z.std(0, keepdim=True).clamp_min(1e-12)
    d = z.shape[1]
    ratio = scaled.abs().sum(1) / scaled.norm(dim=1).clamp_min(1e-12)
    return (math.sqrt(d) - ratio) / (math.sqrt(d) - 1)


class InteLSparse(LatentPrior):
    """Sparse mapping (Miao et al., section 6.3): z = y * DS(y), DS a learned dimension selector with outputs in
    [0, 1] (a linear layer and a sigmoid). Regulariser per sample: the Gaussian KL on y plus ``gamma`` times the
    sparsity loss of eq. 7, L_sp = mean_i H(DS(y_i)) - H(mean_i DS(y_i)), which is *minimised*: low entropy of
    each selection (few active dims) and high entropy of the batch's mean selection (different dims for
    different samples). Its per-sample share is H(DS(y_i)) - H(mean DS); the y_i are a fresh draw from q(y|x),
    since the regulariser receives z = g(y), which cannot be inverted. Unconditional: classes are ignored.

    Args:
        latent_dim: size of the latent code.
        n_classes: ignored (the prior is class-free).
        gamma: weight of the sparsity loss (>= 0).
    """

    ranges = {"gamma": NON_NEGATIVE}

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None, gamma: float = 1.0):
        super().__init__(latent_dim, None)
        self.gamma = gamma
        self.selector = nn.Linear(latent_dim, latent_dim)

    def select(self, y: Tensor) -> Tensor:
        return torch.sigmoid(self.selector(y))

    def mapping(self, y: Tensor) -> Tensor:
        return y * self.select(y)

    def reparameterize(self, posterior: GaussianPosterior) -> Tensor:
        return self.mapping(super().reparameterize(posterior))

    def importance_sample(self, posterior: GaussianPosterior) -> tuple[Tensor, Tensor]:
        """Through the intermediary y (``intermediary_importance_sample``)."""
        return intermediary_importance_sample(self.mapping, posterior)

    def embed(self, mu: Tensor) -> Tensor:
        return self.mapping(mu)

    def sparsity_loss(self, selections: Tensor) -> Tensor:
        """Per-sample terms of eq. 7 for a batch of selections DS(y_i); their mean is L_sp."""
        return normalized_entropy(selections) - normalized_entropy(selections.mean(0))

    def regularizer(self, posterior: GaussianPosterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        check_shapes(posterior.mean, self.latent_dim)
        y = super().reparameterize(posterior)
        return gaussian_kl(posterior) + self.gamma * self.sparsity_loss(self.select(y))

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        return self.mapping(torch.randn(n, self.latent_dim, device=self.selector.weight.device))

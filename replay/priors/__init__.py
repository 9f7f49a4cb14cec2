"""Swappable latent priors and their registry: ``build(name, latent_dim=..., n_classes=..., **params)``."""
from __future__ import annotations

import inspect
from typing import Any, Optional

from replay.priors.base import LatentPrior
from replay.priors.bernoulli import Bernoulli
from replay.priors.cg_bpef import CGBPEF
from replay.priors.cgm import CGM
from replay.priors.gaussian import BinarizedGaussian, Gaussian
from replay.priors.gmm import GMM, BinarizedGMM
from replay.priors.intel import InteLClustered, InteLSparse

PRIORS: dict[str, type[LatentPrior]] = {
    "gaussian": Gaussian,
    "binarized_gaussian": BinarizedGaussian,
    "gmm": GMM,
    "binarized_gmm": BinarizedGMM,
    "cgm": CGM,
    "bernoulli": Bernoulli,
    "cg_bpef": CGBPEF,
    "intel_clustered": InteLClustered,
    "intel_sparse": InteLSparse,
}
_STRUCTURAL = ("self", "latent_dim", "n_classes")


def prior_parameters(name: str) -> dict[str, Any]:
    """The user-settable parameters of a registered prior with their defaults."""
    cls = prior_class(name)
    signature = inspect.signature(cls.__init__)
    return {k: p.default for k, p in signature.parameters.items() if k not in _STRUCTURAL}


def prior_class(name: str) -> type[LatentPrior]:
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; choose one of {', '.join(PRIORS)}")
    return PRIORS[name]


def build(name: str, latent_dim: int, n_classes: Optional[int] = None, **params: Any) -> LatentPrior:
    """Build a registered prior; unknown parameters are refused with the allowed ones named."""
    allowed = prior_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"prior {name!r} has no parameter {unknown[0]!r}; allowed: {', '.join(allowed) or 'none'}"
        )
    return prior_class(name)(latent_dim, n_classes, **params)


__all__ = ["LatentPrior", "Bernoulli", "CGBPEF", "InteLClustered", "InteLSparse", "Gaussian", "BinarizedGaussian", "GMM", "BinarizedGMM", "CGM", "PRIORS", "build",
           "prior_parameters", "prior_class"]

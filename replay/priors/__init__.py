"""Swappable latent priors and their registry: ``build(name, latent_dim=..., n_classes=..., **params)``."""
from __future__ import annotations

from typing import Any, Optional

from replay.errors import UserInputError
from replay.priors.base import GaussianPosterior, LatentPrior, Posterior
from replay.priors.bernoulli import Bernoulli
from replay.priors.cg_bpef import CGBPEF
from replay.priors.cgm import CGM
from replay.priors.gaussian import BinarizedGaussian, Gaussian
from replay.priors.gmm import GMM, BinarizedGMM
from replay.priors.intel import InteLClustered, InteLSparse
from replay.schema import constructor_keys, constructor_parameters

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
_STRUCTURAL = ("latent_dim", "n_classes")


def prior_parameters(name: str) -> dict[str, Any]:
    """The user-settable parameters of the registered prior ``name``, with their defaults."""
    return constructor_parameters(prior_class(name), skip=_STRUCTURAL)


def prior_class(name: str) -> type[LatentPrior]:
    """The class registered as ``name``; a one-line error for an unknown name."""
    if name not in PRIORS:
        raise UserInputError(f"unknown prior {name!r}; choose one of {', '.join(PRIORS)}")
    return PRIORS[name]


def check_parameters(name: str, params: dict[str, Any]) -> None:
    """Refuse, for the prior ``name``, unknown keys of ``params`` (naming the allowed ones); the constructor checks
    the values (``replay.schema.Declared``)."""
    allowed = prior_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise UserInputError(
            f"prior {name!r} has no parameter {unknown[0]!r}; allowed: {', '.join(allowed) or 'none'}"
        )


def prior_schema(name: str) -> dict:
    """The config keys (``replay.schema.Key``) of ``prior.<key>`` for the registered prior ``name``."""
    return constructor_keys(prior_class(name), skip=_STRUCTURAL)


def build(name: str, latent_dim: int, n_classes: Optional[int] = None, **params: Any) -> LatentPrior:
    """Build a registered prior after ``check_parameters``.

    Args:
        name: a key of ``PRIORS``.
        latent_dim: size of the latent code.
        n_classes: class slots (needed by the class-conditional priors).
        params: the prior's own parameters (``prior_parameters(name)`` lists them with their defaults).
    """
    check_parameters(name, params)
    return prior_class(name)(latent_dim, n_classes, **params)


__all__ = ["LatentPrior", "Posterior", "GaussianPosterior", "Bernoulli", "CGBPEF", "InteLClustered", "InteLSparse", "Gaussian", "BinarizedGaussian", "GMM", "BinarizedGMM", "CGM", "PRIORS", "build",
           "prior_parameters", "prior_class", "check_parameters", "prior_schema"]

"""The prior interface: what GR's generator and BI-R's model ask of a latent prior, and nothing more.

A prior plays the role of pythae's sampler: the VAE never branches on its kind. It asks the prior for
* its posterior head (``posterior_head``): hidden features -> a named posterior (``GaussianPosterior``: mean and
  log-variance; a prior with another family returns its own ``Posterior`` subclass, e.g. CG-BPEF's grid logits);
* a latent drawn from a posterior (``reparameterize``) and the code of its mean (``embed``);
* the regulariser of a batch of posteriors (``regularizer``), one value per sample, given hard labels,
  soft class probabilities, or nothing;
* latents to decode (``sample``), unconditional or one per requested class;
* its density, where it has one: ``log_prob(z)`` and ``importance_sample(posterior)`` (a latent and the log-ratio
  of prior to posterior density at it, which the generative classifier's importance sampling needs; a prior without
  one says so in one line), and the posterior's density ``Posterior.log_prob(z)``;
* hooks: ``training_step`` after each optimiser step of the model that holds it (schedules such as an annealed
  temperature follow the training iterations), ``end_experience`` for priors that keep or refit state.
State lives in parameters and buffers, so it is saved and restored with ``state_dict``.

Latent computations are always float32: under mixed-precision training (``MixedPrecision``) the posterior
heads and the priors' ``reparameterize``, ``regularizer`` and ``sample`` run with autocast off, on float32
inputs. Shifts as small as the binarized priors' r = 1e-4 and the MMD kernels would be lost in bfloat16,
whose resolution near 1 is 2^-8.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor, nn

from replay.errors import UserInputError
from replay.priors.divergences import log_normal_diag
from replay.schema import Declared

FLOAT32_METHODS = ("reparameterize", "regularizer", "sample", "log_prob", "importance_sample")
#: the registered priors that score their latents (checked against the registry by the tests)
DENSITY_PRIOR_NAMES = ("gaussian", "binarized_gaussian", "gmm", "binarized_gmm", "cg_bpef", "intel_clustered",
                       "intel_sparse")


def as_float32(value: Any) -> Any:
    """Floating-point tensors, and the fields of a ``Posterior``, in float32; anything else unchanged."""
    if isinstance(value, Posterior):
        return type(value)(**{f.name: as_float32(getattr(value, f.name)) for f in fields(value)})
    return value.float() if isinstance(value, Tensor) and value.is_floating_point() else value


def in_float32(method: Callable) -> Callable:
    """Wrap a method of a module so that it runs with autocast off and float32 tensor arguments.

    When autocast is off (the default), the method is called unchanged.
    """
    @functools.wraps(method)
    def guarded(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        device_type = self.seen.device.type if isinstance(self, LatentPrior) else args[0].device.type
        if not torch.is_autocast_enabled(device_type):
            return method(self, *args, **kwargs)
        with torch.autocast(device_type, enabled=False):
            return method(self, *map(as_float32, args), **{k: as_float32(v) for k, v in kwargs.items()})

    return guarded


@dataclass(frozen=True)
class Posterior:
    """Base of the named posteriors q(z|x) that heads return. ``mean`` is E_q[z] before the prior's ``embed`` (what
    ``encode(x).mean`` hands to analyses and to priors that refit); subclasses add the family's parameters as
    further fields. Each field holds one row per sample."""

    mean: Tensor

    def rows(self, index: Any) -> "Posterior":
        """The posterior of the rows ``index`` of the batch (every field indexed alike)."""
        return type(self)(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) of latents ``z`` [..., batch, latent_dim] drawn for this batch (summed over the latent)."""
        raise UserInputError(f"the posterior {type(self).__name__} has no density here (it is not a proposal for "
                             "importance sampling)")


@dataclass(frozen=True)
class GaussianPosterior(Posterior):
    """Diagonal Gaussian posterior N(mean, diag(exp(logvar))); ``logvar`` is [batch, latent_dim]."""

    logvar: Tensor

    def log_prob(self, z: Tensor) -> Tensor:
        """log N(z; mean, diag(exp(logvar))), summed over the latent; ``z`` may have leading sample dimensions."""
        return log_normal_diag(z.float(), self.mean.float(), self.logvar.float())


class PosteriorHead(nn.Module):
    """Base of the encoder heads that priors hand out; ``forward(h)`` runs in float32 (see the module doc)."""

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = in_float32(cls.__dict__["forward"])


class GaussianHead(PosteriorHead):
    """Encoder head giving a ``GaussianPosterior``; the log-variance layer has no bias, as in the BI-R reference.

    Args:
        in_features: width of the encoder's last hidden layer.
        latent_dim: size of the latent.
    """

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.mean = nn.Linear(in_features, latent_dim)
        self.logvar = nn.Linear(in_features, latent_dim, bias=False)

    def forward(self, h: Tensor) -> GaussianPosterior:
        return GaussianPosterior(self.mean(h), self.logvar(h))


class LatentPrior(Declared, nn.Module):
    """Base class of all priors. ``n_classes`` is the number of class slots (None for class-free priors).

    Args:
        latent_dim: size of the latent code.
        n_classes: number of class slots (None for a class-free prior).
    """

    #: whether ``sample(n, classes)`` really conditions on the classes
    conditional: bool = False
    #: whether ``end_experience`` needs the encoder's latent means of the experience's data
    wants_latents: bool = False
    #: the fewest class slots the prior can be built with (a model of one class builds it with this many)
    min_classes: int = 1
    #: error messages name a parameter as the config does (``prior.r``); ``ranges`` and ``choices`` (allowed
    #: values of the numeric and string constructor parameters) are checked at construction (``Declared``)
    prefix = "prior."

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        for name in FLOAT32_METHODS:
            if name in cls.__dict__:
                setattr(cls, name, in_float32(cls.__dict__[name]))

    def __init__(self, latent_dim: int, n_classes: Optional[int] = None):
        super().__init__()
        if latent_dim < 1:
            raise UserInputError(f"latent_dim must be positive, got {latent_dim}")
        self.latent_dim = latent_dim
        self.n_classes = n_classes
        self.register_buffer("seen", torch.zeros(n_classes or 0, dtype=torch.bool))

    # -- posterior ---------------------------------------------------------------------------------------
    def posterior_head(self, in_features: int) -> nn.Module:
        """The encoder's last layer, mapping ``in_features`` hidden features to the prior's ``Posterior``."""
        return GaussianHead(in_features, self.latent_dim)

    @in_float32
    def reparameterize(self, posterior: GaussianPosterior) -> Tensor:
        """z = mean + exp(logvar / 2) * eps (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", eq. 10).

        Args:
            posterior: the batch's posterior, from this prior's head.
        """
        return posterior.mean + (0.5 * posterior.logvar).exp() * torch.randn_like(posterior.mean)

    def embed(self, mu: Tensor) -> Tensor:
        """The deterministic latent code of a posterior mean (what the decoder reads for it); identity here.

        Args:
            mu: posterior means [batch, latent_dim].
        """
        return mu

    # -- regulariser and sampling --------------------------------------------------------------------------
    def regularizer(self, posterior: Posterior, z: Tensor, labels: Optional[Tensor] = None,
                    probs: Optional[Tensor] = None) -> Tensor:
        """Per-sample regulariser (KL or its replacement), shape [batch].

        Args:
            posterior: the batch's posterior (from this prior's head).
            z: the latents drawn from it (``reparameterize``).
            labels: hard class labels [batch], for class-aware priors (else ignored).
            probs: class probabilities [batch, classes seen so far], instead of ``labels``.
        """
        raise NotImplementedError

    def sample(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        """``n`` latents; with ``classes`` (shape [n]) one latent per requested class."""
        raise NotImplementedError

    @property
    def has_density(self) -> bool:
        """Whether the prior scores its latents (``log_prob`` or ``importance_sample`` of its own)."""
        return type(self).density_defined()

    @classmethod
    def density_defined(cls) -> bool:
        """Whether the class overrides ``log_prob`` or ``importance_sample``."""
        return cls.log_prob is not LatentPrior.log_prob or cls.importance_sample is not LatentPrior.importance_sample

    @classmethod
    def require_density(cls) -> None:
        """Raise the one-line ``UserInputError`` of a prior class without a density (before building one)."""
        if not cls.density_defined():
            raise UserInputError(f"prior {cls.__name__} has no density p(z) to score latents with (its samples are "
                                 "not drawn from a distribution with a known log-probability here); the generative "
                                 f"classifier needs one: choose {', '.join(DENSITY_PRIOR_NAMES)}")

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) of the distribution ``sample`` draws from, summed over the latent; ``z`` is [..., latent_dim].

        Args:
            z: latents, with any leading dimensions.
        """
        type(self).require_density()
        raise NotImplementedError

    def importance_sample(self, posterior: Posterior) -> tuple[Tensor, Tensor]:
        """One draw for importance sampling with the posterior as the proposal: (the latent the decoder reads, log of
        the prior's density over the proposal's at the draw), the weight's latent part in the generative
        classifier's log p(x) ~ logsumexp_s [log p(x|z_s) + log p(z_s) - log q(z_s|x)] - log S. By default z from
        ``reparameterize``, scored with ``log_prob`` and ``posterior.log_prob``; a prior whose density lives in another
        space (an intermediary, a discrete grid) draws and scores there.

        Args:
            posterior: q(z|x) of a batch, from this prior's head.
        """
        z = self.reparameterize(posterior)
        return z, self.log_prob(z) - posterior.log_prob(z)

    def training_step(self) -> None:
        """Called after each optimiser step of the model that holds the prior; a no-op unless the prior follows a
        schedule over training iterations."""

    # -- classes and experiences ---------------------------------------------------------------------------
    def observe_classes(self, classes: Iterable[int]) -> None:
        """Mark classes as seen (called when an experience starts). Class-free priors ignore this."""
        classes = sorted(int(c) for c in classes)
        if self.n_classes is None:
            return
        bad = [c for c in classes if not 0 <= c < self.n_classes]
        if bad:
            raise UserInputError(f"class {bad[0]} is outside the prior's {self.n_classes} class slots: build the prior "
                                 f"with n_classes of at least {max(bad) + 1}")
        self.seen[classes] = True

    def seen_classes(self) -> Tensor:
        return self.seen.nonzero().flatten()

    def check_classes(self, classes: Tensor) -> None:
        """Raise if a requested class has not been seen (a conditional prior has no mode for it yet).

        On the CPU this is a one-line ``UserInputError``. On an accelerator the check stays on the device, free of
        host synchronisation (``torch._assert_async``: an unseen class stops the run with a device-side assert at
        the next synchronisation), so that the replay plugins' conditional draws never wait for the host.

        Args:
            classes: requested class ids [n].
        """
        if self.n_classes is None:
            return
        if classes.device.type != "cpu":
            known = (classes >= 0) & (classes < self.n_classes) & self.seen[classes.clamp(0, self.n_classes - 1)]
            torch._assert_async(known.all(), "a requested class has not been seen by the prior")
            return
        unique = torch.unique(classes).cpu()
        if unique.numel() and (unique.min() < 0 or unique.max() >= self.n_classes or not self.seen[unique].all()):
            unseen = [int(c) for c in unique if not (0 <= c < self.n_classes and self.seen[c])]
            raise UserInputError(f"class {unseen[0]} has not been seen by the prior (seen: {self.seen_classes().tolist()})")

    def requested_classes(self, n: int, classes: Optional[Tensor]) -> Tensor:
        """The class of each of ``n`` conditional draws: ``classes`` after ``check_classes``, or, when None, classes
        drawn uniformly among the seen ones.

        Args:
            n: number of draws.
            classes: the requested classes [n], or None.
        """
        if classes is None:
            return self.uniform_seen_classes(n)
        self.check_classes(classes)
        return classes

    def uniform_seen_classes(self, n: int) -> Tensor:
        """``n`` classes drawn uniformly among the seen ones.

        Args:
            n: how many classes to draw.
        """
        seen = self.seen_classes()
        if seen.numel() == 0:
            raise UserInputError("the prior has seen no class yet; call observe_classes first")
        return seen[torch.randint(len(seen), (n,), device=seen.device)]

    def end_experience(self, latents: Optional[Tensor] = None, labels: Optional[Tensor] = None) -> None:
        """Hook run after each experience; ``latents`` are given when ``wants_latents`` is True.

        Args:
            latents: the encoder's posterior means of the experience's data (plus replay), when ``wants_latents``.
            labels: their class labels.
        """

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, n_classes={self.n_classes}"


def check_shapes(mu: Tensor, latent_dim: int) -> None:
    """Raise if ``mu`` is not [batch, latent_dim]."""
    if mu.dim() != 2 or mu.shape[1] != latent_dim:
        raise UserInputError(f"latents of shape {tuple(mu.shape)} do not match the prior's latent size {latent_dim}")

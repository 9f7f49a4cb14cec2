"""The contract every latent prior keeps, as checks a test suite runs on a prior factory.

Each check takes ``make(latent_dim, n_classes) -> LatentPrior`` and raises ``AssertionError`` naming what broke.
``tests/test_prior_contract.py`` runs ``CONTRACT`` on every registered prior, and a new prior's test module runs it
on the new prior (docs/priors.md, "How to add a prior"). That a prior trains in every registered replay method is
checked one layer up, by ``replay.bench.contract.check_prior_in_methods``.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import fields
from typing import Callable, Optional

import torch
from torch import Tensor

from replay.priors.base import LatentPrior, Posterior

Factory = Callable[[int, Optional[int]], LatentPrior]
LATENT_DIM, N_CLASSES, HIDDEN, BATCH = 6, 4, 8, 12


def _prior_with_classes(make: Factory) -> LatentPrior:
    prior = make(LATENT_DIM, N_CLASSES)
    prior.observe_classes(range(N_CLASSES))
    return prior


def _posterior(prior: LatentPrior, seed: int = 0) -> tuple[torch.nn.Module, Tensor, Posterior]:
    torch.manual_seed(seed)
    head = prior.posterior_head(HIDDEN)
    h = torch.randn(BATCH, HIDDEN)
    return head, h, head(h)


def _labels() -> Tensor:
    return torch.arange(BATCH) % N_CLASSES


def _finite(name: str, value: Tensor, shape: tuple) -> None:
    assert tuple(value.shape) == shape, f"{name} has shape {tuple(value.shape)}, expected {shape}"
    assert torch.isfinite(value).all(), f"{name} is not finite"


def check_posterior_and_latents(make: Factory) -> None:
    """The head returns a ``Posterior`` whose fields have one row per sample; ``reparameterize`` and ``embed`` give
    finite [batch, latent_dim] latents."""
    prior = _prior_with_classes(make)
    _, _, posterior = _posterior(prior)
    assert isinstance(posterior, Posterior), f"posterior_head returned {type(posterior).__name__}, not a Posterior"
    for field in fields(posterior):
        assert len(getattr(posterior, field.name)) == BATCH, f"posterior field {field.name!r} has not one row per sample"
    _finite("posterior.mean", posterior.mean, (BATCH, LATENT_DIM))
    _finite("reparameterize", prior.reparameterize(posterior), (BATCH, LATENT_DIM))
    _finite("embed", prior.embed(posterior.mean), (BATCH, LATENT_DIM))
    rows = posterior.rows(slice(0, 3))
    assert type(rows) is type(posterior) and len(rows.mean) == 3, "Posterior.rows does not select rows"


def check_regularizer(make: Factory) -> None:
    """One finite value per sample with hard labels, with class probabilities, and with nothing."""
    prior = _prior_with_classes(make)
    _, _, posterior = _posterior(prior)
    z = prior.reparameterize(posterior)
    probs = torch.softmax(torch.randn(BATCH, N_CLASSES), 1)
    for given in ({"labels": _labels()}, {"probs": probs}, {}):
        _finite(f"regularizer with {list(given) or 'nothing'}", prior.regularizer(posterior, z, **given), (BATCH,))


def check_gradients(make: Factory) -> None:
    """The regulariser and the latents pass gradients to the encoder's head."""
    prior = _prior_with_classes(make)
    head, h, posterior = _posterior(prior)
    z = prior.reparameterize(posterior)
    (prior.regularizer(posterior, z, labels=_labels()).sum() + z.pow(2).sum()).backward()
    grads = [p.grad for p in head.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), "no finite gradient reaches the head"
    assert any(float(g.abs().sum()) > 0 for g in grads), "the gradient reaching the head is zero"


def check_samples(make: Factory) -> None:
    """``sample`` gives finite latents, unconditionally and one per requested seen class; an unseen class is refused."""
    prior = make(LATENT_DIM, N_CLASSES)
    prior.observe_classes([0, 1])
    _finite("sample(n)", prior.sample(5), (5, LATENT_DIM))
    _finite("sample(n, classes)", prior.sample(4, torch.tensor([0, 1, 1, 0])), (4, LATENT_DIM))
    if prior.conditional:
        try:
            prior.sample(2, torch.tensor([0, 3]))
        except ValueError:
            return
        raise AssertionError("a conditional prior sampled a class it has not seen")


def check_state_round_trip(make: Factory) -> None:
    """A fresh prior given ``state_dict`` samples and regularises exactly as the original."""
    first = _prior_with_classes(make)
    torch.manual_seed(3)
    first.end_experience(torch.randn(40, LATENT_DIM), torch.arange(40) % N_CLASSES)
    first.training_step()
    second = make(LATENT_DIM, N_CLASSES)
    second.load_state_dict(first.state_dict())
    classes = torch.tensor([0, 2, 3])
    torch.manual_seed(4)
    a = first.sample(3, classes)
    torch.manual_seed(4)
    assert torch.equal(a, second.sample(3, classes)), "sample differs after a state_dict round trip"
    _, _, posterior = _posterior(first)
    z = posterior.mean
    torch.manual_seed(5)
    a = first.regularizer(posterior, z, labels=_labels())
    torch.manual_seed(5)
    assert torch.equal(a, second.regularizer(posterior, z, labels=_labels())), "the regulariser differs after a round trip"


def check_float32_under_autocast(make: Factory) -> None:
    """Under bfloat16 autocast the posterior, latents, regulariser and samples stay float32."""
    prior = _prior_with_classes(make)
    head, h, _ = _posterior(prior)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        posterior = head(h)
        z = prior.reparameterize(posterior)
        values = [getattr(posterior, f.name) for f in fields(posterior)]
        values += [z, prior.regularizer(posterior, z, labels=_labels()), prior.sample(3, torch.tensor([0, 1, 2]))]
    assert {v.dtype for v in values} == {torch.float32}, f"dtypes under autocast: {sorted({str(v.dtype) for v in values})}"


def check_parameters_declared(make: Factory) -> None:
    """Every constructor parameter has a default and a type (int, float, bool or str, optionally Optional); numeric
    ones have a range in ``ranges``, so the config and ``build`` can check them."""
    cls = type(make(LATENT_DIM, N_CLASSES))
    hints = typing.get_type_hints(cls.__init__)
    for name, parameter in list(inspect.signature(cls.__init__).parameters.items())[3:]:
        assert parameter.default is not inspect.Parameter.empty, f"parameter {name!r} has no default"
        assert name in hints, f"parameter {name!r} has no type annotation"
        kinds = [t for t in (typing.get_args(hints[name]) or (hints[name],)) if t is not type(None)]
        assert len(kinds) == 1 and kinds[0] in (int, float, bool, str), f"parameter {name!r} is not int, float, bool or str"
        if kinds[0] in (int, float):
            assert name in cls.ranges, f"numeric parameter {name!r} has no range in {cls.__name__}.ranges"


CONTRACT: tuple[Callable[[Factory], None], ...] = (
    check_posterior_and_latents, check_regularizer, check_gradients, check_samples, check_state_round_trip,
    check_float32_under_autocast, check_parameters_declared,
)

"""Reconstruction likelihoods: Bernoulli (BCE, MNIST pixels) and unit-variance Gaussian (MSE, CIFAR features).

Decoders output unconstrained values; the likelihood turns them into the data's mean (``mean``) and
computes the per-sample negative log-likelihood with a named reduction over units:
``mean`` (averaged per unit: the GR / BI-R reference convention) or ``sum`` (summed per image: Hu & Rostami's
Table 1 "image-summed BCE").
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from replay.errors import UserInputError

REDUCTIONS = ("mean", "sum")


def _reduce(per_unit: Tensor, reduction: str) -> Tensor:
    if reduction not in REDUCTIONS:
        raise UserInputError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    per_unit = per_unit.flatten(1)
    return per_unit.mean(1) if reduction == "mean" else per_unit.sum(1)


class _BernoulliNLLPerUnit(torch.autograd.Function):
    """Binary cross-entropy with logits, per unit: ``softplus(a) - x*a``, with gradient ``sigmoid(a) - x``.

    Written as ``relu(a) - x*a - log(sigmoid(|a|))``, which is exact (softplus(a) = relu(a) + softplus(-|a|) and
    softplus(-|a|) = -log sigmoid(|a|)) and stable for any logit (sigmoid(|a|) lies in [0.5, 1)). Same value as
    ``F.binary_cross_entropy_with_logits`` to float rounding and the same gradient. Its speed against torch's
    kernel depends on how fast the machine's ``log1p`` is against ``log`` (a script of commit 3ea2c3e measured it;
    measurements in docs/speed.md).
    """

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor) -> Tensor:
        ctx.save_for_backward(logits, target)
        return torch.addcmul(logits.relu(), target, logits, value=-1).sub_(logits.abs().sigmoid_().log_())

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        logits, target = ctx.saved_tensors
        return torch.sigmoid(logits).sub_(target).mul_(grad), None


class BernoulliLikelihood:
    """Pixels in [0, 1]: decoder logits a, mean = sigmoid(a), NLL = binary cross-entropy
    ``-x log sigmoid(a) - (1 - x) log(1 - sigmoid(a))`` per unit (computed in at least float32 from the logits).
    """

    name = "bernoulli"
    support = (0.0, 1.0)

    @staticmethod
    def mean(output: Tensor) -> Tensor:
        return torch.sigmoid(output)

    @staticmethod
    def nll(output: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        dtype = torch.promote_types(output.dtype, torch.float32)  # bfloat16 logits (autocast) are upcast
        per_unit = _BernoulliNLLPerUnit.apply(output.to(dtype), target.view_as(output).to(dtype))
        return _reduce(per_unit, reduction)

    @staticmethod
    def log_prob_samples(output: Tensor, target: Tensor) -> Tensor:
        """log p(x|z) summed over units for ``S`` decoder outputs per target, without gradients: ``x . a - sum
        softplus(a)`` (the negative of ``nll``'s per-unit terms, summed), the target broadcast over the samples
        rather than copied, so scoring reads the logits twice instead of six times.

        Args:
            output: logits [S, n, *shape] (S samples for each of n targets).
            target: pixels in [0, 1], [n, *shape].
        """
        logits = output.flatten(2).float()
        return torch.einsum("snd,nd->sn", logits, target.flatten(1).float()) - F.softplus(logits).sum(-1)


class UnitGaussianLikelihood:
    """Real-valued data: decoder gives the mean, NLL = 0.5 (x - mean)^2 + 0.5 log(2 pi) per unit."""

    name = "gaussian"
    support = None

    @staticmethod
    def mean(output: Tensor) -> Tensor:
        return output

    @staticmethod
    def nll(output: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        per_unit = 0.5 * (output - target.view_as(output)).pow(2) + 0.5 * math.log(2 * math.pi)
        return _reduce(per_unit, reduction)

    @staticmethod
    def log_prob_samples(output: Tensor, target: Tensor) -> Tensor:
        """log p(x|z) summed over units for ``S`` decoder outputs per target, without gradients; the target is
        broadcast over the samples rather than copied.

        Args:
            output: means [S, n, *shape] (S samples for each of n targets).
            target: [n, *shape].
        """
        squared = (output.flatten(2).float() - target.flatten(1).float()).square_().sum(-1)
        return -0.5 * squared - 0.5 * math.log(2 * math.pi) * target[0].numel()


LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": UnitGaussianLikelihood}


def likelihood(name: str) -> type:
    """The likelihood registered as ``name`` (``bernoulli`` or ``gaussian``)."""
    if name not in LIKELIHOODS:
        raise UserInputError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name]

"""Reconstruction likelihoods: Bernoulli (BCE, MNIST pixels) and unit-variance Gaussian (MSE, CIFAR features).

Decoders output unconstrained values; the likelihood turns them into the data's mean (``mean``) and
computes the per-sample negative log-likelihood with a named reduction over units:
``mean`` (averaged per unit: the GR / BI-R reference convention) or ``sum`` (summed per image: seed 000's
Table 1 "image-summed BCE").
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

REDUCTIONS = ("mean", "sum")


def _reduce(per_unit: Tensor, reduction: str) -> Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    per_unit = per_unit.flatten(1)
    return per_unit.mean(1) if reduction == "mean" else per_unit.sum(1)


class Bernoulli:
    """Pixels in [0, 1]: decoder logits, mean = sigmoid, NLL = binary cross-entropy."""

    name = "bernoulli"

    @staticmethod
    def mean(output: Tensor) -> Tensor:
        return torch.sigmoid(output)

    @staticmethod
    def nll(output: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        per_unit = F.binary_cross_entropy_with_logits(output, target.view_as(output), reduction="none")
        return _reduce(per_unit, reduction)


class UnitGaussian:
    """Real-valued data: decoder gives the mean, NLL = 0.5 (x - mean)^2 + 0.5 log(2 pi) per unit."""

    name = "gaussian"

    @staticmethod
    def mean(output: Tensor) -> Tensor:
        return output

    @staticmethod
    def nll(output: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        per_unit = 0.5 * (output - target.view_as(output)).pow(2) + 0.5 * math.log(2 * math.pi)
        return _reduce(per_unit, reduction)


LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": UnitGaussian}


def likelihood(name: str) -> type:
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}")
    return LIKELIHOODS[name]

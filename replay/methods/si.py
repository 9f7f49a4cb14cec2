"""Synaptic intelligence (Zenke, Poole & Ganguli 2017, "Continual Learning Through Synaptic Intelligence"), as the
BI-R reference code computes it, for a chosen set of parameters.

Per parameter theta_i, over the iterations of an experience, the path integral of the gradient along the parameter's
trajectory:

    W_i += -g_i * (theta_i after the optimiser step - theta_i before it)                                    (eq. 3)

with g the gradient of the iteration's whole loss (every replay and penalty term included: whatever the optimiser
stepped on). At the end of the experience, with Delta_i = theta_i now - theta_i at the end of the previous one
(at the start of training, for the first),

    omega_i += W_i / (Delta_i^2 + epsilon),   then W_i = 0 and theta*_i = theta_i now                       (eq. 5)

and the penalty added to later experiences' losses is

    c * sum_i omega_i (theta_i - theta*_i)^2                                                                (eq. 4)

Deviations from the paper's wording, both the reference code's: the penalty has no 1/2, and omega is not clipped.
Avalanche's ``SynapticIntelligencePlugin`` is another variant (importance clipped at 0.001, epsilon 1e-7, half the
penalty, every parameter); docs/methods.md compares them.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

NamedParameters = dict[str, nn.Parameter]


class _WeightedSquaredDistance(torch.autograd.Function):
    """sum omega * (theta - anchor)^2 and its gradient 2 * omega * (theta - anchor) with respect to theta, in fp32
    whatever autocast is on: the same value and gradient as autograd's, in a third of the passes over the parameter
    (the penalty is computed every iteration, over millions of parameters on split CIFAR-100)."""

    @staticmethod
    def forward(ctx, theta: Tensor, omega: Tensor, anchor: Tensor) -> Tensor:
        distance = theta.float() - anchor
        weighted = omega * distance
        ctx.save_for_backward(weighted)
        ctx.dtype = theta.dtype
        with torch.autocast(theta.device.type, enabled=False):
            return torch.dot(weighted.reshape(-1), distance.reshape(-1))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (weighted,) = ctx.saved_tensors
        return (weighted * (2 * grad)).to(ctx.dtype), None, None


class SynapticIntelligence:
    """The running path integral ``W``, the importances ``omega`` and the anchors ``theta*`` of a set of parameters.

    Call ``start`` before an experience trains, ``accumulate`` after every optimiser step, ``consolidate`` after the
    experience, and add ``penalty`` (times ``c``) to the losses of later experiences. Parameters are passed by name
    each time (they may have moved to another device since the last call).

    Args:
        epsilon: the damping of eq. 5 (> 0).
    """

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = epsilon
        self.omega: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}  # theta*: the values at the end of the previous experience
        self.path: dict[str, Tensor] = {}  # W
        self.previous: dict[str, Tensor] = {}  # theta before this iteration's step

    @property
    def consolidated(self) -> bool:
        """Whether an experience has been consolidated (so that the penalty is not zero)."""
        return bool(self.omega)

    @torch.no_grad()
    def start(self, parameters: NamedParameters) -> None:
        """Before an experience trains: W reset, the current values as the step's "before"; on the very first call
        the anchors too (Delta of the first experience is measured from here).

        Args:
            parameters: the covered parameters, by name.
        """
        for name, p in parameters.items():
            self.path[name] = torch.zeros_like(p, dtype=torch.float32)
            self.previous[name] = p.detach().float().clone()
            if name not in self.anchor:
                self.anchor[name] = p.detach().float().clone()
            self.anchor[name] = self.anchor[name].to(p.device)
            if name in self.omega:
                self.omega[name] = self.omega[name].to(p.device)

    @torch.no_grad()
    def accumulate(self, parameters: NamedParameters) -> None:
        """After an optimiser step: W += -grad * (theta now - theta before) (eq. 3); theta now becomes "before".

        A parameter without a gradient in this iteration contributes nothing (its W is unchanged).

        Args:
            parameters: the covered parameters, by name, with the gradients of the step just taken.
        """
        for name, p in parameters.items():
            before, now = self.previous[name], p.detach().float()  # .float(): no copy of an fp32 parameter
            if p.grad is not None:
                self.path[name].addcmul_(p.grad.float(), now - before, value=-1.0)
            before.copy_(now)

    @torch.no_grad()
    def consolidate(self, parameters: NamedParameters) -> None:
        """After an experience: omega += W / (Delta^2 + epsilon) (eq. 5), then W = 0 and theta* = theta now.

        Args:
            parameters: the covered parameters, by name.
        """
        for name, p in parameters.items():
            now = p.detach().float()
            delta = now - self.anchor[name]
            added = self.path[name] / (delta**2 + self.epsilon)
            self.omega[name] = self.omega[name] + added if name in self.omega else added
            self.anchor[name] = now.clone()
            self.path[name].zero_()

    def penalty(self, parameters: NamedParameters) -> Optional[Tensor]:
        """sum_i omega_i (theta_i - theta*_i)^2 over the covered parameters (eq. 4 without c), with gradients; None
        before the first consolidation.

        Args:
            parameters: the covered parameters, by name.
        """
        if not self.omega:
            return None
        return sum(_WeightedSquaredDistance.apply(p, self.omega[name], self.anchor[name])
                   for name, p in parameters.items())

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """omega, theta*, W and the last "before" values, by parameter name (torch's convention)."""
        return {"omega": dict(self.omega), "anchor": dict(self.anchor), "path": dict(self.path),
                "previous": dict(self.previous)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict``."""
        for key in ("omega", "anchor", "path", "previous"):
            setattr(self, key, dict(state_dict[key]))

"""Stop training at the first non-finite loss term or parameter, without a host synchronisation per iteration.

A learning rate far too high, or data a likelihood cannot score, turns the losses into NaN or inf within a few
iterations; the optimiser then writes NaN into every parameter and the run would go on to report a meaningless
accuracy. ``FiniteGuard`` keeps, on the device, the index of the first iteration whose named terms were not all
finite (and their values then); the host reads it every ``every`` iterations and at the end of each experience,
and also checks the parameters there. The stop is a one-line ``NonFiniteError`` that names the term, the
experience and the iteration.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional

import torch
from torch import Tensor, nn

from avalanche.training.plugins import SupervisedPlugin

from replay.checks import Range
from replay.errors import NonFiniteError

EVERY = Range(0, integer=True)


class FiniteGuard:
    """Watches named scalar loss terms and modules' parameters for NaN and inf.

    Args:
        every: iterations between two host reads of the device-side record (0 turns the guard off).
        where: who stops the run, for the message.
    """

    def __init__(self, every: int = 50, where: str = "training"):
        EVERY.check("check_finite_every", every)
        self.every, self.where = every, where
        self.start(0)

    def start(self, experience: int) -> None:
        """Reset the record at the start of an experience (0-based index, for the message)."""
        self.experience, self.iteration = experience, 0
        self._names: Optional[tuple[str, ...]] = None
        self._first: Optional[Tensor] = None  # first bad iteration (-1: none), on the terms' device
        self._values: Optional[Tensor] = None  # the terms at that iteration

    def observe(self, terms: Mapping[str, Tensor], modules: Mapping[str, nn.Module]) -> None:
        """Record one iteration's terms (device operations only); every ``every`` iterations, ``check``."""
        if not self.every:
            return
        names = tuple(terms)
        if names != self._names and self._first is not None:
            self.check(modules)  # the set of terms changed: settle the record of the old set first
            self._first = None
        values = torch.stack([value.detach().float().reshape(()) for value in terms.values()])
        if self._first is None:
            self._names = names
            self._first = torch.full((), -1, dtype=torch.long, device=values.device)
            self._values = torch.zeros_like(values)
        new = (~torch.isfinite(values).all()) & (self._first < 0)
        self._first = torch.where(new, self.iteration, self._first)
        self._values = torch.where(new, values, self._values)
        self.iteration += 1
        if self.iteration % self.every == 0:
            self.check(modules)

    def check(self, modules: Mapping[str, nn.Module]) -> None:
        """Read the record (one host synchronisation) and check the parameters; raise ``NonFiniteError``."""
        if not self.every:
            return
        if self._first is not None and int(self._first) >= 0:
            name, value = next((name, value) for name, value in zip(self._names, self._values.tolist())
                               if not math.isfinite(value))
            raise NonFiniteError(f"{self.where}: loss term {name!r} is {value} at experience {self.experience}, "
                                 f"iteration {int(self._first)}: lower the learning rate or check the data")
        for module_name, module in modules.items():
            parameters = [(name, p) for name, p in module.named_parameters() if p.is_floating_point()]
            if parameters and not bool(torch.stack([torch.isfinite(p).all() for _, p in parameters]).all()):
                name = next(name for name, p in parameters if not torch.isfinite(p).all())
                raise NonFiniteError(f"{self.where}: parameter {module_name}.{name} is not finite after experience "
                                     f"{self.experience}, iteration {self.iteration - 1}: lower the learning rate or "
                                     "check the data")


class FiniteGuardPlugin(SupervisedPlugin):
    """``FiniteGuard`` on the strategy's loss and model, for strategies without a replay plugin (which guards
    its own terms).

    Args:
        every: iterations between two host reads (0 turns it off).
    """

    def __init__(self, every: int = 50):
        super().__init__()
        self.guard = FiniteGuard(every, "FiniteGuardPlugin")

    def before_training_exp(self, strategy, **kwargs):
        self.guard.start(strategy.experience.current_experience)

    def after_training_iteration(self, strategy, **kwargs):
        self.guard.observe({"loss": strategy.loss}, {"model": strategy.model})

    def after_training_exp(self, strategy, **kwargs):
        self.guard.check({"model": strategy.model})

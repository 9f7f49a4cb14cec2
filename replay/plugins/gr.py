"""Generative replay (Shin et al. 2017) as an Avalanche plugin: ``ReplayMethodPlugin`` around ``GenerativeReplayMethod``."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from replay.checks import POSITIVE, Range
from replay.generators.vae import VAE
from replay.methods.gr import GenerativeReplayMethod
from replay.optim import adam
from replay.plugins.replay import ReplayMethodPlugin


class GenerativeReplayPlugin(ReplayMethodPlugin):
    """Turns any ``SupervisedTemplate`` into generative replay (``GenerativeReplayMethod``, in ``self.method``).

    The replay is appended to the current inputs (one forward pass over both), the solver's loss becomes the
    method's weighted total, and the generator steps after each solver step (``'alongside'`` schedule) or trains
    for ``generator_iterations`` steps after each experience, on current data plus replay (``'after'``).
    ``last_losses`` holds the named terms of the last iteration: ``current`` and ``replay`` (the solver's,
    unweighted) and ``generator`` (its weighted total; alongside schedule only); ``last_replay_classes`` the frozen
    solver's label of each replayed sample.

    The data may come normalised (Avalanche's stock benchmarks): a generator without a declared ``normalization``
    adopts the one the experience's transforms apply, and the first batch of each experience is checked against
    the likelihood's support. Multi-head models are refused. With a ``FeatureCache`` among the strategy's plugins
    (frozen conv layers), the solver reads cached features of the current batch, the generator still models its
    images, and the replay is turned into features once for the frozen and the current solver.

    Args:
        generator: the VAE (any prior).
        lr: learning rate of the generator's Adam (ignored with ``optimizer_factory``).
        betas: Adam's betas for the generator (ignored with ``optimizer_factory``).
        replay_size: replayed samples per iteration (None: the current batch's size).
        targets: ``"hard"`` (the frozen solver's argmax) or ``"soft"`` (distillation).
        temperature: distillation temperature T (> 0).
        generator_schedule: ``"alongside"`` (one generator step per solver step) or ``"after"``.
        generator_iterations: generator steps after each experience, for ``"after"`` (None: as many as the solver's).
        optimizer_factory: builds the generator's optimiser from its parameters.
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
        check_finite_every: stop at the first non-finite loss term or parameter, read on the host every this many
            iterations (``FiniteGuard``; 0 turns it off).
    """

    def __init__(self, generator: VAE, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 replay_size: Optional[int] = None, targets: str = "hard", temperature: float = 2.0,
                 generator_schedule: str = "alongside", generator_iterations: Optional[int] = None,
                 optimizer_factory: Optional[Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = None,
                 replay_chunk: int = 1, check_finite_every: int = 50):
        POSITIVE.check("GenerativeReplayPlugin: lr", lr)
        for beta in betas:
            Range(0, 1, high_open=True).check("GenerativeReplayPlugin: betas", beta)
        method = GenerativeReplayMethod(generator, optimizer_factory or (lambda params: adam(params, lr=lr, betas=betas)),
                                        replay_size, targets, temperature, generator_schedule, generator_iterations,
                                        replay_chunk)
        super().__init__(method, check_finite_every)

    @property
    def generator(self) -> VAE:
        return self.method.generator

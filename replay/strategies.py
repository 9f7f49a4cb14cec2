"""Ready ``SupervisedTemplate`` strategies with a replay plugin attached (named apart from Avalanche's own
``GenerativeReplay`` strategy)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from avalanche.core import BasePlugin
from avalanche.training.templates import SupervisedTemplate

from replay.generators.vae import VAE
from replay.models.bir import BIRModel
from replay.plugins.bir import BrainInspiredReplayPlugin
from replay.plugins.gr import GenerativeReplayPlugin


class GenerativeReplayStrategy(SupervisedTemplate):
    """Generative replay: ``model`` is the solver, ``generator`` a VAE; replay options go to the plugin.

    Args:
        model: the solver.
        optimizer: the solver's optimiser.
        generator: the VAE (any prior).
        plugins: more plugins, after the replay plugin.
        replay_options: keyword arguments of ``GenerativeReplayPlugin``.
        template_kwargs: any other ``SupervisedTemplate`` argument.
    """

    def __init__(self, *, model: nn.Module, optimizer: torch.optim.Optimizer, generator: VAE,
                 plugins: Optional[Sequence[BasePlugin]] = None, replay_options: Optional[dict[str, Any]] = None,
                 **template_kwargs: Any):
        self.replay_plugin = GenerativeReplayPlugin(generator, **(replay_options or {}))
        super().__init__(model=model, optimizer=optimizer, plugins=[self.replay_plugin, *(plugins or [])],
                         **template_kwargs)


class BrainInspiredReplayStrategy(SupervisedTemplate):
    """Brain-inspired replay on a :class:`BIRModel`; replay options go to the plugin.

    Args:
        model: the ``BIRModel``.
        optimizer: its optimiser.
        plugins: more plugins, after the replay plugin.
        replay_options: keyword arguments of ``BrainInspiredReplayPlugin``.
        template_kwargs: any other ``SupervisedTemplate`` argument.
    """

    def __init__(self, *, model: BIRModel, optimizer: torch.optim.Optimizer,
                 plugins: Optional[Sequence[BasePlugin]] = None, replay_options: Optional[dict[str, Any]] = None,
                 **template_kwargs: Any):
        self.replay_plugin = BrainInspiredReplayPlugin(**(replay_options or {}))
        super().__init__(model=model, optimizer=optimizer, plugins=[self.replay_plugin, *(plugins or [])],
                         **template_kwargs)

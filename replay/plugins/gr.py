"""Generative replay (Shin et al. 2017) as an Avalanche plugin: the wiring of ``GenerativeReplayMethod``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import Tensor, nn

from avalanche.training.plugins import SupervisedPlugin

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

from replay.checks import COUNT, POSITIVE, Range, check_ranges
from replay.errors import UserInputError
from replay.generators.vae import VAE
from replay.methods.gr import GenerativeReplayMethod
from replay.optim import adam
from replay.plugins.common import ReplayAlongside, ReplayTrace, check_single_head
from replay.plugins.features import FeatureCache
from replay.plugins.finite import FiniteGuard

GENERATOR_SCHEDULES = ("alongside", "after")


class GenerativeReplayPlugin(ReplayTrace, SupervisedPlugin):
    """Turns any ``SupervisedTemplate`` into generative replay (``GenerativeReplayMethod``, in ``self.method``).

    The hooks only move tensors in and out of the strategy's mini-batch: ``before_forward`` appends this
    iteration's replay to the current inputs (one forward pass over both), ``after_forward`` cuts the output back
    to the current samples (Avalanche's training metrics see the real data only), ``before_backward`` replaces the
    loss by the method's weighted total, ``after_training_iteration`` steps the generator (``'alongside'``
    schedule). With ``generator_schedule='after'`` the generator instead trains for ``generator_iterations`` steps
    after each experience, on current data plus replay.

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
        generator_iterations: generator steps after each experience, for ``"after"``.
        optimizer_factory: builds the generator's optimiser from its parameters.
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
        check_finite_every: stop at the first non-finite loss term or parameter, read on the host every this many
            iterations (``FiniteGuard``; 0 turns it off).
    """

    trains_after_iteration = True  # the generator's step (see MixedPrecision)

    def __init__(self, generator: VAE, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 replay_size: Optional[int] = None, targets: str = "hard", temperature: float = 2.0,
                 generator_schedule: str = "alongside", generator_iterations: int = 2000,
                 optimizer_factory: Optional[Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = None,
                 replay_chunk: int = 1, check_finite_every: int = 50):
        super().__init__()
        if generator_schedule not in GENERATOR_SCHEDULES:
            raise UserInputError(f"unknown generator_schedule {generator_schedule!r}; choose one of {', '.join(GENERATOR_SCHEDULES)}")
        check_ranges("GenerativeReplayPlugin: ", {"lr": POSITIVE, "temperature": POSITIVE, "replay_size": COUNT,
                                                  "generator_iterations": COUNT},
                     dict(lr=lr, temperature=temperature, replay_size=replay_size, generator_iterations=generator_iterations))
        for beta in betas:
            Range(0, 1, high_open=True).check("GenerativeReplayPlugin: betas", beta)
        self.method = GenerativeReplayMethod(
            generator, optimizer_factory or (lambda params: adam(params, lr=lr, betas=betas)), replay_size, targets,
            temperature, replay_chunk)
        self.generator_schedule, self.generator_iterations = generator_schedule, generator_iterations
        self.alongside = ReplayAlongside()
        self._replay: Optional[dict[str, Tensor]] = None
        self._replay_scores: Optional[Tensor] = None
        self._losses: dict[str, Tensor] = {}
        self.finite = FiniteGuard(check_finite_every, "GenerativeReplayPlugin")

    @property
    def generator(self) -> VAE:
        return self.method.generator

    def before_training(self, strategy, **kwargs):
        check_single_head(strategy.model, "GenerativeReplayPlugin")  # before Avalanche adapts the heads

    def before_training_exp(self, strategy, **kwargs):
        cache = next((p for p in strategy.plugins if isinstance(p, FeatureCache)), None)
        self.method.start(strategy.model, strategy.experience, strategy.device, cache)
        self.finite.start(strategy.experience.current_experience)

    def current_images(self, strategy: SupervisedTemplate) -> Tensor:
        """What the generator models of the current batch: the inputs, or their images with a ``FeatureCache``."""
        return self.method.features.batch_images() if self.method.features is not None else strategy.mb_x

    def before_forward(self, strategy, **kwargs):
        self.method.check_data(self.current_images(strategy))
        self._replay, self._losses, self.last_replay_classes = None, {}, None
        if self.method.replaying:
            self._replay = self.method.next_replay(len(strategy.mb_y))
            self.last_replay_classes = self.method.replay_labels(self._replay["teacher_scores"])
            self.alongside.attach(strategy, self._replay["inputs"])

    def after_forward(self, strategy, **kwargs):
        self._replay_scores = self.alongside.detach(strategy)

    def before_backward(self, strategy, **kwargs):
        if self._replay is not None:
            strategy.loss, terms = self.method.solver_loss(strategy.loss, self._replay_scores, self._replay)
            self._losses.update({name: value.detach() for name, value in terms.items()})
        self._replay_scores = None

    def after_training_iteration(self, strategy, **kwargs):
        if self.generator_schedule == "alongside":
            self._losses["generator"] = self.method.generator_step(self.current_images(strategy), strategy.mb_y,
                                                                   self._replay)
        self._replay = None
        self.finite.observe({"loss": strategy.loss, **self._losses}, self.guarded(strategy))

    def guarded(self, strategy: SupervisedTemplate) -> dict[str, nn.Module]:
        """The networks whose parameters the finite guard checks."""
        return {"solver": strategy.model, "generator": self.method.generator}

    def after_training_exp(self, strategy, **kwargs):
        if self.generator_schedule == "after":
            self.method.train_generator(strategy.experience.dataset, strategy.train_mb_size, strategy.device,
                                        self.generator_iterations)
        self.finite.check(self.guarded(strategy))
        self.method.finish(strategy.model, strategy.experience, strategy.device)

    def state_dict(self) -> dict:
        return self.method.state_dict()

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        self.method.load_state_dict(state_dict, strict)

"""Generative replay (Shin et al. 2017) as an Avalanche plugin, with a VAE generator and any prior."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from avalanche.training.plugins import SupervisedPlugin

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

from replay.checks import COUNT, POSITIVE, Range, check_ranges
from replay.errors import UserInputError
from replay.generators.vae import VAE
from replay.plugins.common import (
    DataGuard, ReplayAlongside, ReplayClasses, ReplayPool, ReplayTrace, adam, check_single_head, distillation_loss,
    frozen_copy, posterior_means, replay_weights,
)
from replay.plugins.features import FeatureCache
from replay.plugins.finite import FiniteGuard

TARGETS = ("hard", "soft")
GENERATOR_SCHEDULES = ("alongside", "after")


class GenerativeReplayPlugin(ReplayTrace, SupervisedPlugin):
    """Turns any ``SupervisedTemplate`` into generative replay.

    Each training iteration (from the second experience on):
    1. the frozen previous generator draws a replay batch in one batched call on the strategy's device;
    2. the frozen previous solver labels it over the classes seen before: hard (argmax) by default,
       soft (distillation, temperature T, times T^2) with ``targets='soft'``;
    3. the solver's loss becomes ``(1/t) * loss_current + (1 - 1/t) * loss_replay`` (reference weighting;
       not Avalanche's 50/50 concatenation); the current batch stays the strategy's ``mb_x``/``mb_output``,
       so Avalanche's training metrics describe the real data only;
    4. the generator takes one step on the same weighting of its loss, ``recon + reg / n_inputs`` (reconstruction
       averaged per unit, prior regulariser divided by the number of input units, as in the reference code),
       on current data (with its labels) and replay (with the frozen solver's labels).
    With ``generator_schedule='after'`` the generator is instead trained for ``generator_iterations`` steps
    after each experience, on current data plus replay.
    At the end of each experience the prior's hook runs and frozen copies of generator and solver are taken.
    ``replay_chunk = k`` draws the replay of ``k`` iterations at once (``ReplayPool``: same distribution,
    another random stream; 1, the default, draws every iteration).

    ``last_losses`` holds the named terms of the last training iteration of the strategy: ``current`` and
    ``replay`` (the solver's, unweighted) and ``generator`` (its weighted total; alongside schedule only);
    ``last_replay_classes`` the frozen solver's label of each replayed sample.

    The data may come normalised (Avalanche's stock benchmarks): a generator without a declared
    ``normalization`` adopts the one the experience's transforms apply, and the first batch of each
    experience is checked against the likelihood's support (``DataGuard``). Multi-head models are refused.
    With a ``FeatureCache`` among the strategy's plugins (frozen conv layers), the solver reads cached features of
    the current batch, the generator still models its images, and the replay is turned into features once for the
    frozen and the current solver.

    Args:
        generator: the VAE (any prior).
        lr, betas: the generator's Adam (ignored with ``optimizer_factory``).
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
        if targets not in TARGETS:
            raise UserInputError(f"unknown replay targets {targets!r}; choose one of {', '.join(TARGETS)}")
        if generator_schedule not in GENERATOR_SCHEDULES:
            raise UserInputError(f"unknown generator_schedule {generator_schedule!r}; choose one of {', '.join(GENERATOR_SCHEDULES)}")
        check_ranges("GenerativeReplayPlugin: ", {"lr": POSITIVE, "temperature": POSITIVE, "replay_size": COUNT,
                                                  "generator_iterations": COUNT},
                     dict(lr=lr, temperature=temperature, replay_size=replay_size, generator_iterations=generator_iterations))
        for beta in betas:
            Range(0, 1, high_open=True).check("GenerativeReplayPlugin: betas", beta)
        self.generator = generator
        self.optimizer_factory = optimizer_factory or (lambda params: adam(params, lr=lr, betas=betas))
        self.generator_optimizer: Optional[torch.optim.Optimizer] = None
        self._saved_optimizer_state: Optional[dict] = None
        self.replay_size, self.targets, self.temperature = replay_size, targets, temperature
        self.generator_schedule, self.generator_iterations = generator_schedule, generator_iterations
        self.frozen_generator: Optional[VAE] = None
        self.frozen_solver: Optional[nn.Module] = None
        self.classes = ReplayClasses()
        self.alongside = ReplayAlongside()
        self.pool = ReplayPool(replay_chunk)
        self._replay: Optional[tuple[Tensor, Tensor, Tensor]] = None
        self._replay_scores: Optional[Tensor] = None
        self.experiences_done = 0
        self._losses: dict[str, Tensor] = {}
        self.data_guard = DataGuard("GenerativeReplayPlugin")
        self.cache: Optional[FeatureCache] = None
        self.finite = FiniteGuard(check_finite_every, "GenerativeReplayPlugin")

    # -- set-up ----------------------------------------------------------------------------------------------
    def before_training(self, strategy, **kwargs):
        check_single_head(strategy.model, "GenerativeReplayPlugin")  # before Avalanche adapts the heads

    def before_training_exp(self, strategy, **kwargs):
        self.cache = next((p for p in strategy.plugins if isinstance(p, FeatureCache)), None)
        self.generator.to(strategy.device)
        if self.generator_optimizer is None:
            self.generator_optimizer = self.optimizer_factory(list(self.generator.parameters()))
            if self._saved_optimizer_state is not None:
                self.generator_optimizer.load_state_dict(self._saved_optimizer_state)
                self._saved_optimizer_state = None
        for frozen in (self.frozen_generator, self.frozen_solver):
            if frozen is not None:
                frozen.to(strategy.device)
        self.generator.prior.observe_classes(strategy.experience.classes_in_this_experience)
        self.data_guard.start(self.generator, [self.frozen_generator], strategy.experience)
        self.finite.start(strategy.experience.current_experience)
        self.pool.clear()
        self.classes.start(strategy.experience.classes_in_this_experience, strategy.device)

    @property
    def t(self) -> int:
        return self.experiences_done + 1

    # -- replay ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def replay_batch(self, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """(x_replay, scores of the frozen solver over the previous classes, the solver's input), one batched
        call each. The solver's input is ``x_replay`` itself, or its features once with a ``FeatureCache``."""
        x = self.frozen_generator.generate(n)
        inputs = self.cache.features(x) if self.cache is not None else x
        scores = self.frozen_solver(inputs)[:, self.classes.previous]
        return x, scores, inputs

    def current_images(self, strategy: SupervisedTemplate) -> Tensor:
        """What the generator models of the current batch: the inputs, or their images with a ``FeatureCache``."""
        return self.cache.batch_images() if self.cache is not None else strategy.mb_x

    def replay_loss(self, scores: Tensor, target_scores: Tensor) -> Tensor:
        """Loss of the solver's scores on replay, over all active units (old and new classes)."""
        scores = scores[:, self.classes.active]
        if self.targets == "soft":
            return distillation_loss(scores, self.classes.active_probs(target_scores, self.temperature), self.temperature)
        return F.cross_entropy(scores, self.classes.positions(self.replay_labels(target_scores)))

    def replay_labels(self, target_scores: Tensor) -> Tensor:
        """Hard labels (class ids) of replayed samples: argmax of the frozen solver over previous classes."""
        return self.classes.top_previous(target_scores)

    def generator_loss(self, x: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
        """Weighted sum over samples of ``recon + reg / n_inputs`` (labels go to class-aware priors)."""
        terms = self.generator.loss_terms(x, labels=labels if self.generator.prior.conditional else None)
        return (weights * (terms["recon"] + terms["reg"] / self.generator.n_inputs)).sum()

    def generator_step(self, x: Tensor, y: Tensor, replay: Optional[tuple[Tensor, ...]]) -> None:
        """One generator update on current (+ replayed) data in a single batched pass.

        Per-sample weights ``w_current / n_current`` and ``w_replay / n_replay`` make the weighted sum equal
        to ``w_current * mean_current + w_replay * mean_replay`` (priors whose regulariser couples the batch,
        like CGM's MMD, see current and replayed samples together).
        """
        self.generator.train()
        weights = torch.full((len(y),), 1.0 / len(y), device=y.device)
        if replay is not None:
            w_current, w_replay = replay_weights(self.t)
            n_replay = len(replay[0])
            x = torch.cat([x, replay[0]])
            y = torch.cat([y, self.replay_labels(replay[1])])
            weights = torch.cat([weights * w_current, torch.full((n_replay,), w_replay / n_replay, device=y.device)])
        loss = self.generator_loss(x, y, weights)
        self.generator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.generator_optimizer.step()
        self._losses["generator"] = loss.detach()

    def before_forward(self, strategy, **kwargs):
        self.data_guard.check(self.generator, self.current_images(strategy))
        self._replay, self._losses, self.last_replay_classes = None, {}, None
        if self.frozen_generator is not None:
            self._replay = self.pool.take(self.replay_size or len(strategy.mb_y), self.replay_batch)
            self.last_replay_classes = self.replay_labels(self._replay[1])
            self.alongside.attach(strategy, self._replay[2])

    def after_forward(self, strategy, **kwargs):
        self._replay_scores = self.alongside.detach(strategy)

    def before_backward(self, strategy, **kwargs):
        if self._replay is not None:
            w_current, w_replay = replay_weights(self.t)
            loss_replay = self.replay_loss(self._replay_scores, self._replay[1])
            self._losses.update(current=strategy.loss.detach(), replay=loss_replay.detach())
            strategy.loss = w_current * strategy.loss + w_replay * loss_replay
        self._replay_scores = None

    def after_training_iteration(self, strategy, **kwargs):
        if self.generator_schedule == "alongside":
            self.generator_step(self.current_images(strategy), strategy.mb_y, self._replay)
        self._replay = None
        self.finite.observe({"loss": strategy.loss, **self._losses}, self.guarded(strategy))

    def guarded(self, strategy: SupervisedTemplate) -> dict[str, nn.Module]:
        """The networks whose parameters the finite guard checks."""
        return {"solver": strategy.model, "generator": self.generator}

    # -- end of experience -----------------------------------------------------------------------------------
    def after_training_exp(self, strategy, **kwargs):
        if self.generator_schedule == "after":
            self.train_generator_after(strategy)
        self.finite.check(self.guarded(strategy))
        self.run_prior_hook(strategy)
        self.pool.clear()
        self.frozen_generator = frozen_copy(self.generator)
        self.frozen_solver = frozen_copy(strategy.model)
        self.classes.finish(strategy.experience.classes_in_this_experience)
        self.experiences_done += 1

    def train_generator_after(self, strategy: SupervisedTemplate) -> None:
        loader = torch.utils.data.DataLoader(strategy.experience.dataset, batch_size=strategy.train_mb_size, shuffle=True)
        done = 0
        while done < self.generator_iterations:
            for x, y, *_ in loader:
                x, y = x.to(strategy.device), y.to(strategy.device)
                self.data_guard.check(self.generator, x)
                replay = self.pool.take(len(y), self.replay_batch) if self.frozen_generator is not None else None
                self.generator_step(x, y, replay)
                done += 1
                if done == self.generator_iterations:
                    break

    @torch.no_grad()
    def run_prior_hook(self, strategy: SupervisedTemplate) -> None:
        """The prior's end-of-experience hook; priors that refit get the current generator's latent means of
        the experience's data plus as many replayed samples (labelled by the frozen solver)."""
        prior = self.generator.prior
        latents = labels = None
        if prior.wants_latents:
            latents, labels = posterior_means(self.generator, strategy.experience.dataset, strategy.device)
            if self.frozen_generator is not None:
                x, scores, _ = self.replay_batch(len(labels))
                self.generator.eval()
                latents = torch.cat([latents, self.generator.encode(x)[0]])
                labels = torch.cat([labels, self.replay_labels(scores)])
                self.generator.train()
        prior.end_experience(latents, labels)

    # -- checkpointing ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict() if self.generator_optimizer else None,
            "frozen_generator": self.frozen_generator.state_dict() if self.frozen_generator else None,
            "frozen_solver": self.frozen_solver.state_dict() if self.frozen_solver else None,
            "previous_classes": self.classes.finished,
            "experiences_done": self.experiences_done,
        }

    def load_state_dict(self, state: dict, solver: nn.Module) -> None:
        """Restore; ``solver`` is a model of the solver's architecture (the strategy's model)."""
        self.generator.load_state_dict(state["generator"])
        self.generator_optimizer = None  # rebuilt on the strategy's device, then given this state
        self._saved_optimizer_state = state["generator_optimizer"]
        if state["frozen_generator"] is not None:
            self.frozen_generator = frozen_copy(self.generator)
            self.frozen_generator.load_state_dict(state["frozen_generator"])
            self.frozen_solver = frozen_copy(solver)
            self.frozen_solver.load_state_dict(state["frozen_solver"])
        self.pool.clear()
        self.classes.finished = list(state["previous_classes"])
        self.experiences_done = int(state["experiences_done"])


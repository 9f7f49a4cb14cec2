"""One Avalanche plugin for every replay method: it moves the method's tensors in and out of the strategy's
mini-batch (``replay.methods.ReplayMethod`` holds the science)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from torch import Tensor

from avalanche.training import Cumulative
from avalanche.training.plugins import SupervisedPlugin

from replay.errors import UserInputError
from replay.methods.base import Context, ReplayMethod
from replay.plugins.features import FeatureCache
from replay.plugins.finite import FiniteGuard

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate


class ReplayAlongside:
    """Runs a replay batch through the strategy's own forward pass, appended to the current batch.

    ``attach`` (in ``before_forward``) puts the method's inputs (current rows first, then replay) in
    ``strategy.mbatch[0]``; ``detach`` (in ``after_forward``) restores the current batch, cuts
    ``strategy.mb_output`` back to the current samples and returns the replayed part. One pass over both halves the
    kernels and avoids summing two weight-gradient graphs; for models without batch-coupled layers (no batch-norm
    in training mode) the result equals two separate passes. Avalanche's metrics still see only the current batch.
    """

    def __init__(self):
        self.n_current: Optional[int] = None

    def attach(self, strategy: SupervisedTemplate, inputs: Tensor) -> None:
        """Forward ``inputs`` (current samples first, then replay) instead of the current batch."""
        self.n_current = len(strategy.mbatch[1])
        self.current_inputs = strategy.mbatch[0]
        strategy.mbatch[0] = inputs

    def detach(self, strategy: SupervisedTemplate) -> Optional[Tensor]:
        """The replayed rows' output (None when nothing was attached); the strategy's batch and output restored."""
        if self.n_current is None:
            return None
        n, self.n_current = self.n_current, None
        strategy.mbatch[0] = self.current_inputs
        self.current_inputs = None
        output = strategy.mb_output
        strategy.mb_output = output[:n]
        return output[n:]


class ReplayMethodPlugin(SupervisedPlugin):
    """Turns any ``SupervisedTemplate`` into the replay method ``method`` (in ``self.method``).

    The hooks only move tensors: ``before_training`` lets the method refuse the model; ``before_training_exp``
    starts the experience (``Context``: model, experience, device, batch size, the strategy's ``FeatureCache``);
    ``before_forward`` takes this iteration's replay and puts the method's ``forward_inputs`` (current, then
    replayed rows) into the strategy's one forward pass; ``after_forward`` cuts the output back to the current
    samples (Avalanche's training metrics see the real data only); ``before_backward`` replaces the loss by the
    method's weighted total; ``after_training_iteration`` runs the method's own optimiser steps and the finite
    guard; ``after_training_exp`` finishes the experience.

    ``loss_tensors`` / ``last_losses`` hold the named terms of the last iteration (the method's docstring names
    them), ``last_replay_classes`` the class the previous model sees in each replayed sample (None without replay):
    ``replay.metrics`` reads them.

    Args:
        method: the replay method.
        check_finite_every: stop at the first non-finite loss term or parameter, read on the host every this many
            iterations (``FiniteGuard``; 0 turns it off).
    """

    def __init__(self, method: ReplayMethod, check_finite_every: int = 50):
        super().__init__()
        self.method = method
        self.alongside = ReplayAlongside()
        self.finite = FiniteGuard(check_finite_every, type(self).__name__)
        self.last_replay_classes: Optional[Tensor] = None
        self._replay: Optional[dict[str, Tensor]] = None
        self._replay_scores: Optional[Tensor] = None
        self._losses: dict[str, Tensor] = {}

    @property
    def trains_after_iteration(self) -> bool:
        """Whether the method steps an optimiser of its own after each iteration (``MixedPrecision`` checks it)."""
        return self.method.trains_after_iteration

    @property
    def loss_tensors(self) -> dict[str, Tensor]:
        """The last iteration's terms as detached tensors, by name (no device sync)."""
        return dict(self._losses)

    @property
    def last_losses(self) -> dict[str, float]:
        """The last iteration's terms as floats (reading them syncs with the device)."""
        return {name: float(value) for name, value in self._losses.items()}

    def context(self, strategy: SupervisedTemplate) -> Context:
        """What the method sees of the strategy at an experience's start and end."""
        cache = next((p for p in strategy.plugins if isinstance(p, FeatureCache)), None)
        return Context(strategy.model, strategy.experience, strategy.device, strategy.train_mb_size, cache)

    def before_training(self, strategy, **kwargs):
        if isinstance(strategy, Cumulative):
            raise UserInputError(f"{type(self).__name__} replays what earlier experiences taught, but Cumulative "
                                 "already trains on all their data: use Naive (or another SupervisedTemplate)")
        self.method.check_model(strategy.model)  # before Avalanche adapts the model

    def before_training_exp(self, strategy, **kwargs):
        self._largest_class = max(strategy.experience.classes_in_this_experience)
        self.method.start(self.context(strategy))
        self.finite.start(strategy.experience.current_experience)

    def before_forward(self, strategy, **kwargs):
        self._losses = {}
        self._replay = self.method.next_replay(strategy.mb_x) if self.method.replaying else None
        self.last_replay_classes = self.method.replay_classes(self._replay) if self._replay is not None else None
        inputs = self.method.forward_inputs(strategy.model, strategy.mb_x, self._replay)
        if self._replay is not None:
            self.alongside.attach(strategy, inputs)

    def after_forward(self, strategy, **kwargs):
        self._replay_scores = self.alongside.detach(strategy)
        units, largest = strategy.mb_output.shape[-1], self._largest_class
        if units <= largest:  # before the criterion indexes past the output (on a GPU: a device-side assert)
            raise UserInputError(f"{type(strategy.model).__name__} gives {units} output units, but experience "
                                 f"{strategy.experience.current_experience} has class {largest}: build the model "
                                 f"with at least {largest + 1} outputs (e.g. SimpleMLP(num_classes=...), "
                                 "MLPClassifier's or BIRModel's n_classes)")

    def before_backward(self, strategy, **kwargs):
        strategy.loss, terms = self.method.loss(strategy.model, strategy.loss, strategy.mb_y, self._replay,
                                                self._replay_scores)
        self._losses = {name: value.detach() for name, value in terms.items()}
        self._replay_scores = None

    def after_training_iteration(self, strategy, **kwargs):
        own = self.method.after_update(strategy.model, strategy.mb_x, strategy.mb_y, self._replay)
        self._losses.update({name: value.detach() for name, value in own.items()})
        self._replay = None
        self.finite.observe({"loss": strategy.loss, **self._losses}, self.method.guarded(strategy.model))

    def after_training_exp(self, strategy, **kwargs):
        self.method.finish(self.context(strategy))
        self.finite.check(self.method.guarded(strategy.model))

    def state_dict(self) -> dict:
        return self.method.state_dict()

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        self.method.load_state_dict(state_dict, strict)

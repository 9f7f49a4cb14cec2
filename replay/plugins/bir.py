"""Brain-inspired replay (van de Ven et al. 2020) as an Avalanche plugin: the wiring of ``BrainInspiredReplayMethod``."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from avalanche.training.plugins import SupervisedPlugin

from replay.checks import COUNT, POSITIVE, check_ranges
from replay.errors import UserInputError
from replay.methods.bir import BrainInspiredReplayMethod
from replay.models.bir import BIRModel
from replay.plugins.common import ReplayAlongside, ReplayTrace
from replay.plugins.finite import FiniteGuard


class BrainInspiredReplayPlugin(ReplayTrace, SupervisedPlugin):
    """BI-R (``BrainInspiredReplayMethod``, in ``self.method``) on a strategy whose model is a :class:`BIRModel`.

    The hooks only move tensors in and out of the strategy's mini-batch: ``before_forward`` asks the model to keep
    the activations of the strategy's forward pass (``BIRModel.capture_next_forward``) and appends this iteration's
    replay to the current inputs, ``after_forward`` cuts the output back to the current samples, ``before_backward``
    replaces the loss by the method's weighted total of named terms (the VAE terms reuse the captured activations).
    ``last_losses`` holds each named term of the last iteration (``classification_current``, ``recon_current``,
    ``reg_current`` and, with replay, the ``_replay`` ones); ``last_replay_classes`` the frozen model's top class
    for each replayed sample. As for GR, a model without a declared ``normalization`` adopts the one the
    experience's transforms apply, and the first batch of each experience is checked against the likelihood's
    support.

    Args:
        replay_size: replayed samples per iteration (None: the current batch's size).
        distill: distillation targets (else the frozen model's hard labels).
        temperature: distillation temperature T (> 0).
        conditional: draw z from the replayed class's prior mode (else unconditional, gate by class).
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
        check_finite_every: stop at the first non-finite loss term or parameter, read on the host every this many
            iterations (``FiniteGuard``; 0 turns it off).
    """

    def __init__(self, replay_size: Optional[int] = None, distill: bool = True, temperature: float = 2.0,
                 conditional: bool = True, replay_chunk: int = 1, check_finite_every: int = 50):
        super().__init__()
        check_ranges("BrainInspiredReplayPlugin: ", {"temperature": POSITIVE, "replay_size": COUNT},
                     dict(temperature=temperature, replay_size=replay_size))
        self.method = BrainInspiredReplayMethod(replay_size, distill, temperature, conditional, replay_chunk)
        self.alongside = ReplayAlongside()
        self._replay: Optional[dict[str, Tensor]] = None
        self._replay_scores: Optional[Tensor] = None
        self._losses: dict[str, Tensor] = {}
        self.finite = FiniteGuard(check_finite_every, "BrainInspiredReplayPlugin")

    def before_training(self, strategy, **kwargs):
        if not isinstance(strategy.model, BIRModel):
            raise UserInputError(f"BrainInspiredReplayPlugin needs a replay.models.BIRModel as the strategy's model, "
                                 f"got {type(strategy.model).__name__}")

    def before_training_exp(self, strategy, **kwargs):
        self.method.start(strategy.model, strategy.experience, strategy.device)
        self.finite.start(strategy.experience.current_experience)

    def before_forward(self, strategy, **kwargs):
        self.method.check_data(strategy.model, strategy.mb_x)
        strategy.model.capture_next_forward()
        self._replay, self.last_replay_classes = None, None
        if self.method.replaying:
            self._replay = self.method.next_replay(len(strategy.mb_y))
            self.last_replay_classes = self.method.replay_labels(self._replay)
            current = strategy.model.to_replay_space(strategy.mb_x)
            self.alongside.attach_inputs(strategy, torch.cat([current, self._replay["x"]]))

    def after_forward(self, strategy, **kwargs):
        self._replay_scores = self.alongside.detach(strategy)

    def before_backward(self, strategy, **kwargs):
        strategy.loss, terms = self.method.loss(strategy.model, strategy.loss, strategy.mb_y, self._replay,
                                                self._replay_scores)
        self._losses = {name: value.detach() for name, value in terms.items()}
        self._replay = self._replay_scores = None

    def after_training_iteration(self, strategy, **kwargs):
        self.finite.observe({"loss": strategy.loss, **self._losses}, {"model": strategy.model})

    def after_training_exp(self, strategy, **kwargs):
        self.finite.check({"model": strategy.model})
        self.method.finish(strategy.model, strategy.experience, strategy.device)

    def state_dict(self) -> dict:
        return self.method.state_dict()

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        self.method.load_state_dict(state_dict, strict)

"""What the replay plugins share in their wiring: the refusal of multi-head models, the single forward pass of
current plus replayed samples, and the trace of each iteration's named loss terms and replay."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor, nn

from avalanche.models import MultiTaskModule

from replay.errors import UserInputError

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate


def check_single_head(model: nn.Module, where: str) -> None:
    """Raise ``UserInputError`` for multi-head models: replay here is class-incremental, over one head."""
    if isinstance(model, MultiTaskModule):
        raise UserInputError(f"{where} replays class-incrementally into one head; {type(model).__name__} is a "
                             "multi-head MultiTaskModule: use a single-head model (e.g. SimpleMLP or IncrementalClassifier)")


class ReplayAlongside:
    """Runs a replay batch through the strategy's own forward pass, appended to the current batch.

    ``attach`` (in ``before_forward``) appends the replayed inputs to ``strategy.mbatch[0]``; ``detach`` (in
    ``after_forward``) restores the current batch, cuts ``strategy.mb_output`` back to the current samples and
    returns the replayed part. One pass over both halves the kernels and avoids summing two weight-gradient
    graphs; for models without batch-coupled layers (no batch-norm in training mode) the result equals two
    separate passes. Avalanche's metrics still see only the current batch.
    """

    def __init__(self):
        self.n_current: Optional[int] = None

    def attach(self, strategy: SupervisedTemplate, x_replay: Tensor) -> None:
        self.attach_inputs(strategy, torch.cat([strategy.mbatch[0], x_replay]))

    def attach_inputs(self, strategy: SupervisedTemplate, inputs: Tensor) -> None:
        """Forward ``inputs`` (current samples first, then replay) instead of the current batch."""
        self.n_current = len(strategy.mbatch[1])
        self.current_inputs = strategy.mbatch[0]
        strategy.mbatch[0] = inputs

    def detach(self, strategy: SupervisedTemplate) -> Optional[Tensor]:
        if self.n_current is None:
            return None
        n, self.n_current = self.n_current, None
        strategy.mbatch[0] = self.current_inputs
        self.current_inputs = None
        output = strategy.mb_output
        strategy.mb_output = output[:n]
        return output[n:]


class ReplayTrace:
    """What a replay plugin's last training iteration did: its named loss terms and the classes it replayed.

    A plugin stores detached tensors in ``_losses`` (no device sync per iteration); ``loss_tensors`` hands them
    to ``replay.metrics.ReplayLossMetric`` (which sums them on the device on accelerators), and ``last_losses``
    reads them as floats. ``last_replay_classes`` holds, for each replayed sample of the iteration, the class
    the frozen previous model sees in it (its top class over the previous classes; with hard targets, the label
    the sample is trained on), or None without replay: ``replay.metrics.ReplayShareMetric`` counts them.
    """

    _losses: dict[str, Tensor]
    last_replay_classes: Optional[Tensor] = None

    @property
    def loss_tensors(self) -> dict[str, Tensor]:
        """The last iteration's terms as detached tensors, by name."""
        return dict(self._losses)

    @property
    def last_losses(self) -> dict[str, float]:
        """The last iteration's terms as floats (reading them syncs with the device)."""
        return {name: float(value) for name, value in self._losses.items()}

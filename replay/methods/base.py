"""The contract every replay method keeps: what ``replay.plugins.ReplayMethodPlugin`` asks of it, and nothing more.

A method is the science of one replay algorithm, apart from Avalanche's wiring. Over a stream it provides
* its experience transitions: ``check_model`` (before any training: refuse a model it cannot train), ``start``
  (before an experience trains) and ``finish`` (after: refits, frozen copies, anything kept for the next one);
* its replay: ``replaying`` (whether there is anything to replay), ``next_replay(x)`` (this iteration's replay given
  the current inputs: a dict of tensors with one row per replayed sample; by default ``replay_size`` rows, or as
  many as the current batch, from the lifecycle's pool of ``draw(n)``, n samples drawn in one batched call),
  ``replay_classes`` (the class the previous model sees in each replayed sample, for the replay shares);
* its iteration: ``forward_inputs`` (what the strategy's one forward pass reads: the current inputs, then the
  replayed ones), ``loss`` (the weighted total and its named terms, from the strategy's loss on the current batch
  and the model's scores of the replay) and ``after_update`` (its own optimiser steps after the model's, with
  their named terms; ``trains_after_iteration`` says it has some);
* for the replay-quality measures: ``replays_images`` and ``judge_samples`` (samples per class, in image space);
* ``guarded`` (the networks whose parameters the finite guard checks), and ``state_dict`` / ``load_state_dict``
  (torch's convention; ``bind`` builds what a loaded state needs from the strategy's model).
Its constructor's parameters with defaults are its config keys (``method.<key>``), checked at construction
(``replay.schema.Declared``); ``structural`` names the ones a builder supplies instead (a generator, a factory).
docs/methods.md describes the contract; ``replay.bench.contract`` checks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Sequence

import torch
from torch import Tensor, nn

from replay.checks import COUNT
from replay.methods.lifecycle import ReplayClasses, ReplayLifecycle
from replay.schema import Declared

if TYPE_CHECKING:
    from avalanche.benchmarks import CLExperience


@dataclass
class Context:
    """What a method sees of the strategy at an experience's start and end.

    Args:
        model: the strategy's model.
        experience: the experience about to train, or just trained.
        device: the training device.
        batch_size: the strategy's training mini-batch size.
        features: the strategy's ``FeatureCache`` (frozen conv features computed once per experience), or None: the
            model then reads features of the current batch, whose images ``features.batch_images()`` gives.
    """

    model: nn.Module
    experience: CLExperience
    device: torch.device
    batch_size: int
    features: Optional[Any] = None

    @property
    def classes(self) -> list[int]:
        """The experience's classes."""
        return list(self.experience.classes_in_this_experience)


@dataclass
class JudgeSamples:
    """Replayed samples for the replay-quality measures.

    Args:
        x: the samples, in the data's space.
        intended: the class each was drawn for, or None when the replay is unconditional.
        to_unit: maps ``x`` to pixels in [0, 1] (for the image grid).
    """

    x: Tensor
    intended: Optional[Tensor]
    to_unit: Callable[[Tensor], Tensor]


class ReplayMethod(Declared):
    """Base of the replay methods: the lifecycle (classes seen, replay pool, the ``1/t`` weighting), the replay's
    size and its batch-by-batch supply, and the contract's defaults.

    Args:
        replay_size: replayed samples per iteration (None: as many as the current batch).
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
    """

    prefix = "method."
    ranges = {"replay_size": COUNT, "replay_chunk": COUNT}
    #: constructor parameters a builder supplies (objects, not config keys)
    structural: ClassVar[tuple[str, ...]] = ()
    #: the method steps an optimiser of its own in ``after_update`` (``MixedPrecision`` must come after it)
    trains_after_iteration: ClassVar[bool] = False
    #: the method replays from the second experience on (False for a method that learns without replay, such as the
    #: generative classifier: ``replaying`` then stays False and the contract checks no replay)
    replays: ClassVar[bool] = True

    def __init__(self, replay_size: Optional[int] = None, replay_chunk: int = 1):
        self.replay_size = replay_size
        self.lifecycle = ReplayLifecycle(replay_chunk)

    @property
    def classes(self) -> ReplayClasses:
        return self.lifecycle.classes

    # -- experiences -----------------------------------------------------------------------------------------
    def check_model(self, model: nn.Module) -> None:
        """Before any training: raise ``UserInputError`` for a model this method cannot train."""

    def start(self, context: Context) -> None:
        """Before an experience trains (the lifecycle's start; subclasses add theirs)."""
        self.lifecycle.start(context.classes, context.device)

    def finish(self, context: Context) -> None:
        """After an experience trained (subclasses take their frozen copies first, then call this)."""
        self.lifecycle.finish(context.classes)

    def bind(self, model: nn.Module) -> None:
        """Build what a loaded state waits for from a model of the strategy's architecture (default: nothing)."""

    @property
    def replaying(self) -> bool:
        """Whether there is anything to replay (from the second experience, for most methods)."""
        raise NotImplementedError

    # -- replay ----------------------------------------------------------------------------------------------
    def draw(self, n: int) -> dict[str, Tensor]:
        """``n`` replayed samples in one batched call: a dict of tensors with one row per sample, among them
        ``inputs`` (what the model reads) unless the method overrides ``forward_inputs``."""
        raise NotImplementedError

    def next_replay(self, x: Tensor) -> dict[str, Tensor]:
        """This iteration's replay given the current inputs ``x``: ``draw``'s columns, ``replay_size`` rows or as
        many as the current batch (a method whose replay depends on ``x`` overrides this).

        Args:
            x: the current batch's inputs.
        """
        return self.lifecycle.pool.take(self.replay_size or len(x), self.draw)

    def replay_classes(self, replay: dict[str, Tensor]) -> Tensor:
        """The class the previous model sees in each replayed sample (``ReplayShareMetric`` counts them)."""
        raise NotImplementedError

    # -- one training iteration ------------------------------------------------------------------------------
    def forward_inputs(self, model: nn.Module, x: Tensor, replay: Optional[dict[str, Tensor]]) -> Tensor:
        """What the strategy's forward pass reads: the current inputs ``x``, then the replayed ``inputs``.

        Args:
            model: the strategy's model.
            x: the current batch's inputs.
            replay: this iteration's replay, or None.
        """
        return x if replay is None else torch.cat([x, replay["inputs"]])

    def loss(self, model: nn.Module, current_loss: Tensor, y: Tensor, replay: Optional[dict[str, Tensor]],
             replay_scores: Optional[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(weighted total, named terms) of one iteration.

        Args:
            model: the strategy's model.
            current_loss: the strategy's criterion on the current batch.
            y: the current batch's labels.
            replay: this iteration's replay, or None.
            replay_scores: the model's output for the replayed rows (None without replay).
        """
        raise NotImplementedError

    def after_update(self, model: nn.Module, x: Tensor, y: Tensor,
                     replay: Optional[dict[str, Tensor]]) -> dict[str, Tensor]:
        """The method's own optimiser steps after the model's; returns their named terms (default: none).

        Args:
            model: the strategy's model.
            x: the current batch's inputs.
            y: their labels.
            replay: this iteration's replay, or None.
        """
        return {}

    def guarded(self, model: nn.Module) -> dict[str, nn.Module]:
        """The networks whose parameters the finite guard checks, by name."""
        return {"model": model}

    # -- replay quality --------------------------------------------------------------------------------------
    def replays_images(self, model: nn.Module) -> bool:
        """Whether ``judge_samples`` can draw images for the replay-quality measures (default: no)."""
        return False

    def judge_samples(self, classes: Sequence[int], per_class: int) -> JudgeSamples:
        """``per_class`` replayed samples for each of ``classes`` (or as many unconditional ones), from what the
        method would replay now.

        Args:
            classes: classes of finished experiences.
            per_class: samples per class.
        """
        raise NotImplementedError(f"{type(self).__name__} replays no images to judge")

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything the method keeps across experiences (torch's convention); the base: the lifecycle's counters."""
        return self.lifecycle.state_dict()

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        """Restore ``state_dict``."""
        self.lifecycle.load_state_dict(state_dict)

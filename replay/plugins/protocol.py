"""Training-protocol plugins of the reference code, for any Avalanche strategy: a fixed number of iterations
per experience, batches indexed from device tensors, and the class-incremental output over the units seen so far."""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

import torch
from torch import Tensor
from torch.utils.data import Dataset

from avalanche.training.plugins import SupervisedPlugin

from replay.checks import COUNT
from replay.errors import UserInputError


class _Budgeted:
    """Iterates ``loader`` (re-shuffled at every pass) for exactly ``iterations`` batches."""

    def __init__(self, loader: Iterable, iterations: int):
        self.loader, self.iterations = loader, iterations

    def __len__(self) -> int:
        return self.iterations

    def __iter__(self) -> Iterator:
        done = 0
        while done < self.iterations:
            for batch in self.loader:
                yield batch
                done += 1
                if done == self.iterations:
                    return


class TensorBatches:
    """Random mini-batches indexed straight out of tensors already on the device (no per-sample collate).

    Every pass draws a fresh permutation from torch's global generator and drops the last partial batch,
    so all batches have the full size (as in the reference code's loaders). ``last_rows`` holds the rows of the
    batch handed out last (``FeatureCache`` finds the images of a batch of features with it).
    """

    last_rows: Optional[Tensor] = None

    def __init__(self, tensors: tuple[Tensor, ...], batch_size: int):
        self.tensors, self.batch_size = tensors, batch_size
        self.n = len(tensors[0])

    def __len__(self) -> int:
        return max(self.n // self.batch_size, 1)

    def __iter__(self) -> Iterator:
        order = torch.randperm(self.n).to(self.tensors[0].device)
        for i in range(len(self)):
            self.last_rows = order[i * self.batch_size: (i + 1) * self.batch_size]
            yield tuple(t[self.last_rows] for t in self.tensors)


def materialize(dataset: Dataset, device: torch.device, batch_size: int = 4096) -> tuple[Tensor, ...]:
    """All items of a (small, transform-free) dataset stacked into tensors on ``device``, in one pass."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    columns = list(zip(*loader))
    return tuple(torch.cat(column).to(device) for column in columns)


class InMemoryBatches(SupervisedPlugin):
    """Replaces the strategy's train loader by ``TensorBatches`` over the experience's data on the device.

    For in-memory streams without random transforms (all of ``scenarios``): the data is materialized once per
    experience and every batch is a single index operation. Put it before ``IterationBudget``.
    """

    def before_training_exp(self, strategy, **kwargs):
        tensors = materialize(strategy.adapted_dataset, strategy.device)
        strategy.dataloader = TensorBatches(tensors, strategy.train_mb_size)


class IterationBudget(SupervisedPlugin):
    """Train each experience for a fixed number of iterations (the papers' protocol) instead of epochs.

    The strategy's train loader is cycled for exactly ``iterations`` batches within one epoch, so
    ``train_epochs`` must be 1.
    """

    def __init__(self, iterations: int):
        super().__init__()
        COUNT.check("IterationBudget: iterations", iterations)
        self.iterations = iterations

    def before_training_exp(self, strategy, **kwargs):
        if strategy.train_epochs != 1:
            raise UserInputError(f"IterationBudget needs train_epochs=1, the strategy has {strategy.train_epochs}")
        strategy.dataloader = _Budgeted(strategy.dataloader, self.iterations)


class SeenUnitsMask(SupervisedPlugin):
    """Class-incremental output: units of classes not seen yet get -inf in training and evaluation.

    This is the reference protocol (predictions over all units seen so far); with a fixed head it keeps
    unseen units out of the softmax and out of the argmax of Avalanche's accuracy metrics.
    """

    def __init__(self):
        super().__init__()
        self.seen: set[int] = set()
        self._hidden: dict[tuple[int, torch.device], Tensor] = {}

    def before_training_exp(self, strategy, **kwargs):
        self.seen |= {int(c) for c in strategy.experience.classes_in_this_experience}
        self._hidden.clear()

    def _mask(self, strategy) -> None:
        if not self.seen:
            return
        output = strategy.mb_output
        key = (output.shape[1], output.device)
        if key not in self._hidden:
            hidden = torch.ones(output.shape[1], dtype=torch.bool)
            hidden[[c for c in self.seen if c < output.shape[1]]] = False
            self._hidden[key] = hidden.to(output.device)
        strategy.mb_output = output.masked_fill(self._hidden[key], float("-inf"))

    def after_forward(self, strategy, **kwargs):
        self._mask(strategy)

    def after_eval_forward(self, strategy, **kwargs):
        self._mask(strategy)

    def state_dict(self) -> dict:
        return {"seen": sorted(self.seen)}

    def load_state_dict(self, state: dict) -> None:
        self.seen = set(state["seen"])

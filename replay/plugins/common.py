"""Helpers shared by the replay plugins: optimiser, frozen copies, distillation, class bookkeeping, weighting,
replay drawn in chunks, the single forward pass of current plus replayed samples, and the trace of each
iteration's replay."""
from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Callable, Iterable, Optional, TypeVar, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from avalanche.models import MultiTaskModule

from replay.checks import COUNT
from replay.errors import UserInputError
from replay.generators.normalization import ModelsData, find_normalization

if TYPE_CHECKING:
    from avalanche.benchmarks import CLExperience
    from avalanche.training.templates import SupervisedTemplate

logger = logging.getLogger("replay")


def adam(params: Iterable[nn.Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """Adam with the fused kernel (about 2.7x faster per step than the default on our CPUs, same update)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy in eval mode with every parameter's ``requires_grad`` off."""
    clone = copy.deepcopy(module).eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def distillation_loss(scores: Tensor, target_probs: Tensor, temperature: float = 2.0) -> Tensor:
    """Knowledge distillation (Hinton et al. 2015): soft-target cross-entropy at temperature T, times T^2.

    ``target_probs`` = softmax(teacher scores / T), zero for classes the teacher did not know. Equal in
    gradient to T^2 KL(targets || softmax(scores / T)); this is the reference's form. Computed in float32
    (bfloat16 scores under mixed precision are upcast).
    """
    log_probs = F.log_softmax(scores.float() / temperature, dim=1)
    return -(target_probs * log_probs).sum(1).mean() * temperature**2


@torch.no_grad()
def posterior_means(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Posterior means (``model.encode(x)[0]``, in eval mode) and labels of a whole dataset, for priors that refit."""
    was_training = model.training
    model.eval()
    means, labels = [], []
    for x, y, *_ in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
        means.append(model.encode(x.to(device))[0])
        labels.append(y.to(device))
    model.train(was_training)
    return torch.cat(means), torch.cat(labels)


def check_single_head(model: nn.Module, where: str) -> None:
    """Raise ``UserInputError`` for multi-head models: replay here is class-incremental, over one head."""
    if isinstance(model, MultiTaskModule):
        raise UserInputError(f"{where} replays class-incrementally into one head; {type(model).__name__} is a "
                             "multi-head MultiTaskModule: use a single-head model (e.g. SimpleMLP or IncrementalClassifier)")


class DataGuard:
    """Fits a replay plugin's generative model to the data of each experience, before it trains on it.

    ``start`` (in ``before_training_exp``): when the model's likelihood is bounded (Bernoulli) and it was given
    no normalisation, it adopts the one the experience's transforms apply (``find_normalization``), for the
    model and its frozen copies. ``check`` (on the experience's first batch): one host synchronisation that
    raises a one-line ``UserInputError`` if the un-normalised data leaves the likelihood's support.
    """

    def __init__(self, where: str):
        self.where = where
        self.pending = False
        self.experience_id = 0

    def start(self, model: ModelsData, copies: Iterable[Optional[ModelsData]], experience: CLExperience) -> None:
        if model.bounded and model.normalization is None:
            found = find_normalization(experience.dataset)
            if found is not None:
                for target in (model, *copies):
                    if target is not None:
                        target.use_normalization(found)
                logger.info("%s: the data is normalised (%s); the generator models the un-normalised pixels",
                            self.where, found.extra_repr())
        self.pending, self.experience_id = True, experience.current_experience

    def check(self, model: ModelsData, x: Tensor) -> None:
        if self.pending:
            self.pending = False
            model.check_data(x, f"{self.where}, experience {self.experience_id}")


class ReplayClasses:
    """Class bookkeeping of a replay plugin: ``previous`` (classes of finished experiences) and ``active``
    (previous plus the current experience's), as sorted tensors on the strategy's device.

    Replayed samples are scored over the ``active`` units (as the reference does in class-IL): the solver
    must learn that old samples are not new classes. Teacher targets, known only over ``previous``, are
    placed into ``active`` positions with zeros for the new classes.
    """

    def __init__(self):
        self.finished: list[int] = []

    def start(self, current: Iterable[int], device: torch.device) -> None:
        self.previous = torch.tensor(self.finished, dtype=torch.long, device=device)
        active = sorted(set(self.finished) | {int(c) for c in current})
        self.active = torch.tensor(active, dtype=torch.long, device=device)
        self._previous_positions = torch.searchsorted(self.active, self.previous)

    def finish(self, current: Iterable[int]) -> None:
        self.finished = sorted(set(self.finished) | {int(c) for c in current})

    def draw_previous(self, n: int) -> Tensor:
        return self.previous[torch.randint(len(self.previous), (n,), device=self.previous.device)]

    def top_previous(self, teacher_scores: Tensor) -> Tensor:
        """Class id of each row's highest teacher score (scores over ``previous``, in its order)."""
        return self.previous[teacher_scores.argmax(1)]

    def positions(self, classes: Tensor) -> Tensor:
        """Index of each class id within ``active``."""
        return torch.searchsorted(self.active, classes)

    def active_probs(self, teacher_scores: Tensor, temperature: float) -> Tensor:
        """softmax(teacher / T) over previous classes, placed in the ``active`` columns (zeros elsewhere)."""
        probs = teacher_scores.new_zeros(teacher_scores.shape[0], len(self.active), dtype=torch.float32)
        probs[:, self._previous_positions] = F.softmax(teacher_scores.float() / temperature, dim=1)
        return probs


def replay_weights(t: int) -> tuple[float, float]:
    """(1/t, 1 - 1/t) for current and replayed data, t = number of experiences so far (Shin et al. 2017)."""
    return 1.0 / t, 1.0 - 1.0 / t


Replay = TypeVar("Replay", bound=Union[tuple, dict])


class ReplayPool:
    """Hands out replay batch by batch from draws of ``chunk`` batches at a time.

    A replay plugin's draw (frozen generator, then the frozen model's scores) runs the frozen networks on a
    batch of ``n`` samples every iteration; with ``chunk = k`` it runs once every ``k`` iterations on ``k * n``
    samples, and each iteration takes the next ``n`` rows. The frozen networks do not change within an
    experience, so every replayed sample is still an independent draw from the same distribution: the method
    is unchanged, only the random stream differs from ``chunk = 1`` (one draw per iteration, the reference
    code's order, which the published results use). Larger matrix products and fewer calls make the draw
    cheaper: at ``chunk = 16``, in bf16, 3.0x for BI-R and 2.0x for GR per batch of 128
    (``scripts/bench_replay_chunk.py``). The pool must be ``clear``-ed whenever the frozen networks change
    (the plugins do it at each experience's start and end). A draw returns a tuple or a dict of tensors with
    one row per sample.
    """

    def __init__(self, chunk: int = 1):
        COUNT.check("replay_chunk", chunk)
        self.chunk = chunk
        self.clear()

    def take(self, n: int, draw: Callable[[int], Replay]) -> Replay:
        """The next ``n`` replayed samples, drawing ``chunk * n`` new ones when fewer than ``n`` are left."""
        if self._stock is None or self._size - self._next < n:
            self._stock = draw(self.chunk * n)
            columns = self._stock.values() if isinstance(self._stock, dict) else self._stock
            self._size, self._next = len(next(iter(columns))), 0
        rows = slice(self._next, self._next + n)
        self._next += n
        if isinstance(self._stock, dict):
            return {name: column[rows] for name, column in self._stock.items()}
        return tuple(column[rows] for column in self._stock)

    def clear(self) -> None:
        """Forget the samples left (their frozen networks are about to change)."""
        self._stock: Optional[Union[tuple, dict]] = None
        self._size = self._next = 0


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

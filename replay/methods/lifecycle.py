"""What replay methods share across experiences: the classes seen, the replay pool, the count of finished experiences
(and with it the weighting of current against replayed data), frozen copies."""
from __future__ import annotations

import copy
from typing import Callable, Iterable, Optional, TypeVar, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from replay.checks import COUNT


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` in eval mode with every parameter's ``requires_grad`` off."""
    clone = copy.deepcopy(module).eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def replay_weights(t: int) -> tuple[float, float]:
    """(1/t, 1 - 1/t) for current and replayed data, t = number of experiences so far (Shin et al. 2017)."""
    return 1.0 / t, 1.0 - 1.0 / t


class ReplayClasses:
    """Class bookkeeping of a replay method: ``previous`` (classes of finished experiences) and ``active``
    (previous plus the current experience's), as sorted tensors on the training device.

    Replayed samples are scored over the ``active`` units (as the reference does in class-IL): the solver
    must learn that old samples are not new classes. Teacher targets, known only over ``previous``, are
    placed into ``active`` positions with zeros for the new classes.
    """

    def __init__(self):
        self.finished: list[int] = []

    def start(self, current: Iterable[int], device: torch.device) -> None:
        """Set ``previous`` and ``active`` for an experience with the classes ``current``, on ``device``."""
        self.previous = torch.tensor(self.finished, dtype=torch.long, device=device)
        active = sorted(set(self.finished) | {int(c) for c in current})
        self.active = torch.tensor(active, dtype=torch.long, device=device)
        self._previous_positions = torch.searchsorted(self.active, self.previous)

    def finish(self, current: Iterable[int]) -> None:
        """Add the classes ``current`` of the experience just finished to ``finished``."""
        self.finished = sorted(set(self.finished) | {int(c) for c in current})

    def draw_previous(self, n: int) -> Tensor:
        """``n`` previous classes drawn uniformly."""
        return self.previous[torch.randint(len(self.previous), (n,), device=self.previous.device)]

    def top_previous(self, teacher_scores: Tensor) -> Tensor:
        """Class id of each row's highest teacher score (scores over ``previous``, in its order).

        Args:
            teacher_scores: scores [n, previous classes].
        """
        return self.previous[teacher_scores.argmax(1)]

    def positions(self, classes: Tensor) -> Tensor:
        """Index of each class id within ``active``.

        Args:
            classes: class ids, each in ``active``.
        """
        return torch.searchsorted(self.active, classes)

    def active_probs(self, teacher_scores: Tensor, temperature: float) -> Tensor:
        """softmax(teacher / T) over previous classes, placed in the ``active`` columns (zeros elsewhere).

        Args:
            teacher_scores: scores [n, previous classes].
            temperature: T (> 0).
        """
        probs = teacher_scores.new_zeros(teacher_scores.shape[0], len(self.active), dtype=torch.float32)
        probs[:, self._previous_positions] = F.softmax(teacher_scores.float() / temperature, dim=1)
        return probs


Replay = TypeVar("Replay", bound=Union[tuple, dict])


class ReplayPool:
    """Hands out replay batch by batch from draws of ``chunk`` batches at a time.

    A replay method's draw (frozen generator, then the frozen model's scores) runs the frozen networks on a
    batch of ``n`` samples every iteration; with ``chunk = k`` it runs once every ``k`` iterations on ``k * n``
    samples, and each iteration takes the next ``n`` rows. The frozen networks do not change within an
    experience, so every replayed sample is still an independent draw from the same distribution: the method
    is unchanged, only the random stream differs from ``chunk = 1`` (one draw per iteration, the reference
    code's order, which the published results use). Larger matrix products and fewer calls make the draw
    cheaper (docs/speed.md). The pool must be ``clear``-ed whenever the frozen
    networks change (the lifecycle does it at each experience's start and end). A draw returns a tuple or a
    dict of tensors with one row per sample.

    Args:
        chunk: iterations of replay drawn per call (a positive integer).
    """

    def __init__(self, chunk: int = 1):
        COUNT.check("replay_chunk", chunk)
        self.chunk = chunk
        self.clear()

    def take(self, n: int, draw: Callable[[int], Replay]) -> Replay:
        """The next ``n`` replayed samples, drawing ``chunk * n`` new ones when fewer than ``n`` are left.

        Args:
            n: rows wanted.
            draw: ``m -> replay of m samples`` (a tuple or dict of tensors).
        """
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


class ReplayLifecycle:
    """The state every replay method keeps across experiences, and its two transitions.

    ``start`` (before an experience trains) sets the classes' tensors and empties the pool; ``finish`` (after it)
    records its classes, empties the pool and counts it. ``t`` (experiences so far, the current one included)
    gives the weighting ``(1/t, 1 - 1/t)`` of current against replayed data.

    Args:
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
    """

    def __init__(self, replay_chunk: int = 1):
        self.classes = ReplayClasses()
        self.pool = ReplayPool(replay_chunk)
        self.experiences_done = 0

    @property
    def t(self) -> int:
        return self.experiences_done + 1

    @property
    def weights(self) -> tuple[float, float]:
        """(weight of the current data, weight of the replay) in this experience."""
        return replay_weights(self.t)

    def start(self, classes: Iterable[int], device: torch.device) -> None:
        """Before an experience whose classes are ``classes`` trains on ``device``."""
        self.pool.clear()
        self.classes.start(classes, device)

    def finish(self, classes: Iterable[int]) -> None:
        """After the experience whose classes are ``classes`` has trained (its frozen copies taken)."""
        self.pool.clear()
        self.classes.finish(classes)
        self.experiences_done += 1

    def state_dict(self) -> dict:
        return {"previous_classes": list(self.classes.finished), "experiences_done": self.experiences_done}

    def load_state_dict(self, state: dict) -> None:
        self.pool.clear()
        self.classes.finished = list(state["previous_classes"])
        self.experiences_done = int(state["experiences_done"])

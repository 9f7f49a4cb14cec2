"""Avalanche metrics of the replay plugins, through ``EvaluationPlugin`` and its loggers: their named loss terms
(``ReplayLossMetric``) and how their replay divides among the earlier experiences (``ReplayShareMetric``)."""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Optional, Union

import torch
from torch import Tensor

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from replay.checks import COUNT
from replay.errors import UserInputError
from replay.plugins.common import ReplayTrace

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate


class ReplayLossMetric(PluginMetric[dict]):
    """Means of a replay plugin's named loss terms (``GenerativeReplayPlugin``: ``current``, ``replay``,
    ``generator``; ``BrainInspiredReplayPlugin``: ``classification``/``recon``/``reg``, each ``_current`` and
    ``_replay``; with distillation, ``classification_replay`` is the distillation loss).

    Every ``every`` training iterations it emits the window's mean of each term as
    ``ReplayLoss_MB/<term>/train_phase/train_stream`` (x = the training iterations seen so far), and at the
    end of each experience the experience's mean as ``ReplayLoss_Exp/<term>/train_phase/train_stream/ExpNNN``.
    On an accelerator the terms are summed on the device and read once per window, so the metric adds no
    per-iteration sync; on the CPU they are read as floats each iteration.
    ``experience_means`` keeps one ``{term: mean}`` per finished experience.
    """

    def __init__(self, every: int = 100):
        super().__init__()
        COUNT.check("ReplayLossMetric: every", every)
        self.every = every
        self.experience_means: list[dict[str, float]] = []
        self._window = TermSums()
        self._experience: dict[str, tuple[float, int]] = {}  # (sum, iterations) per term, from finished windows
        self._iterations = 0
        self._on_device = False
        self._source: Optional[ReplayTrace] = None

    def result(self) -> dict:
        return self.experience_means[-1] if self.experience_means else {}

    def reset(self) -> None:
        self.experience_means = []

    def before_training_exp(self, strategy: SupervisedTemplate) -> None:
        self._on_device = strategy.device.type != "cpu"
        self._window, self._experience = TermSums(self._on_device), {}
        self._source = replay_source(strategy)  # fails here, before any training, when no replay plugin is attached

    def after_training_iteration(self, strategy: SupervisedTemplate) -> Optional[list[MetricValue]]:
        self._window.add(self._source.loss_tensors)
        self._iterations += 1
        return self._close_window() if self._window.iterations >= self.every else None

    def after_training_exp(self, strategy: SupervisedTemplate) -> list[MetricValue]:
        values = self._close_window() if self._window.iterations else []
        means = {name: total / count for name, (total, count) in sorted(self._experience.items())}
        self.experience_means.append(means)
        experience = strategy.experience.current_experience
        return values + [MetricValue(self, f"ReplayLoss_Exp/{name}/train_phase/train_stream/Exp{experience:03d}",
                                     value, self._iterations) for name, value in means.items()]

    def _close_window(self) -> list[MetricValue]:
        """The window's means as metric values; its sums go into the experience's."""
        sums, self._window = self._window.sums(), TermSums(self._on_device)
        for name, (total, count) in sums.items():
            accumulate(self._experience, name, total, count)
        return [MetricValue(self, f"ReplayLoss_MB/{name}/train_phase/train_stream", total / count, self._iterations)
                for name, (total, count) in sorted(sums.items())]

    def __str__(self) -> str:
        return "ReplayLoss"


class ReplayShareMetric(PluginMetric[list]):
    """Share of each earlier experience in the replay an experience trained on.

    Each replayed sample counts for the experience that introduced the class the frozen previous model sees in
    it (``last_replay_classes`` of the replay plugin: with GR's hard targets, its training label). Uniform
    replay gives each of the t - 1 earlier experiences 1/(t - 1); GR's unconditional replay need not (its
    generator and solver decide what is replayed), BI-R's conditional replay draws the classes uniformly.
    At the end of each experience with replay it emits ``ReplayShare_Exp/FromExpMMM/train_phase/train_stream/ExpNNN``
    for each earlier experience MMM; ``experience_shares`` keeps one list of shares per finished experience
    (None for the first). Counts are summed on the strategy's device and read once per experience.
    """

    def __init__(self):
        super().__init__()
        self.experience_shares: list[Optional[list[float]]] = []
        self._counts: Optional[Tensor] = None
        self._origins: Optional[Tensor] = None
        self._iterations = 0
        self._source: Optional[ReplayTrace] = None

    def result(self) -> Optional[list[float]]:
        return self.experience_shares[-1] if self.experience_shares else None

    def reset(self) -> None:
        self.experience_shares = []

    def before_training_exp(self, strategy: SupervisedTemplate) -> None:
        self._source = replay_source(strategy)
        self._origins = class_origins(strategy.experience, strategy.device)
        self._counts = None

    def after_training_iteration(self, strategy: SupervisedTemplate) -> None:
        self._iterations += 1
        classes = self._source.last_replay_classes
        if classes is not None:
            counts = torch.bincount(self._origins[classes], minlength=strategy.experience.current_experience)
            self._counts = counts if self._counts is None else self._counts + counts

    def after_training_exp(self, strategy: SupervisedTemplate) -> list[MetricValue]:
        if self._counts is None:
            self.experience_shares.append(None)
            return []
        shares = (self._counts / self._counts.sum()).tolist()
        self.experience_shares.append(shares)
        experience = strategy.experience.current_experience
        return [MetricValue(self, f"ReplayShare_Exp/FromExp{origin:03d}/train_phase/train_stream/Exp{experience:03d}",
                            share, self._iterations) for origin, share in enumerate(shares)]

    def __str__(self) -> str:
        return "ReplayShare"


def class_origins(experience: Any, device: torch.device) -> Tensor:
    """Index of the experience that introduced each class, up to the given one (-1 for classes not seen yet)."""
    stream = experience.origin_stream
    introduced = [stream[index].classes_in_this_experience for index in range(experience.current_experience + 1)]
    origins = torch.full((1 + max(max(classes) for classes in introduced),), -1, dtype=torch.long)
    for index, classes in reversed(list(enumerate(introduced))):
        origins[torch.as_tensor(list(classes), dtype=torch.long)] = index
    return origins.to(device)


class TermSums:
    """Running sums of named scalar tensors (the strategy's own loss has shape (1,)).

    ``on_device`` (for accelerators): each iteration's terms are stacked into one vector on their device (one
    small op, no sync) and ``sums`` reads them back in one transfer per set of names. Otherwise (CPU, where a
    read costs no sync) they are read as floats at once, which is cheaper there.
    """

    def __init__(self, on_device: bool = False):
        self.on_device = on_device
        self.rows: dict[tuple[str, ...], list[Union[Tensor, list[float]]]] = defaultdict(list)
        self.iterations = 0

    def add(self, terms: dict[str, Tensor]) -> None:
        self.iterations += 1
        if not terms:
            return
        if self.on_device:
            row: Union[Tensor, list[float]] = torch.stack([value.detach().float().reshape(()) for value in terms.values()])
        else:
            row = [float(value) for value in terms.values()]
        self.rows[tuple(terms)].append(row)

    def sums(self) -> dict[str, tuple[float, int]]:
        """(sum, number of iterations that had it) for each name."""
        totals: dict[str, tuple[float, int]] = {}
        for names, rows in self.rows.items():
            column_sums = torch.stack(rows).sum(0).tolist() if self.on_device else map(sum, zip(*rows))
            for name, total in zip(names, column_sums):
                accumulate(totals, name, total, len(rows))
        return totals


def accumulate(totals: dict[str, tuple[float, int]], name: str, total: float, count: int) -> None:
    """Adds (total, count) to the (sum, count) kept under ``name``."""
    previous, seen = totals.get(name, (0.0, 0))
    totals[name] = (previous + total, seen + count)


def replay_source(strategy: SupervisedTemplate) -> ReplayTrace:
    """The strategy's replay plugin (the first plugin that keeps a replay trace)."""
    for plugin in strategy.plugins:
        if isinstance(plugin, ReplayTrace):
            return plugin
    raise UserInputError("the replay metrics need a GenerativeReplayPlugin or BrainInspiredReplayPlugin among the "
                     "strategy's plugins")

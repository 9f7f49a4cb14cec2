"""Avalanche metrics of any replay method (``ReplayMethodPlugin``), through ``EvaluationPlugin`` and its loggers: its
named loss terms (``ReplayLossMetric``), how its replay divides among the earlier experiences
(``ReplayShareMetric``) and what it replays, judged by a separate classifier (``ReplayQualityMetric``). They ask the
plugin's method for what they need (``replay.methods.ReplayMethod``), never its type."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import torch
from torch import Tensor
from torchvision.transforms.functional import to_pil_image
from torchvision.utils import make_grid, save_image

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from replay.checks import COUNT
from replay.errors import UserInputError
from replay.files import atomic_file
from replay.methods.base import ReplayMethod
from replay.plugins.protocol import materialize
from replay.plugins.replay import ReplayMethodPlugin
from replay.quality import Judge, replay_quality
from replay.random_state import preserved_rng

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate


class ReplayLossMetric(PluginMetric[dict]):
    """Means of a replay method's named loss terms (GR: ``current``, ``replay``, ``generator``; BI-R:
    ``classification``/``recon``/``reg``, each ``_current`` and ``_replay``; with distillation,
    ``classification_replay`` is the distillation loss).

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
        self._source: Optional[ReplayMethodPlugin] = None

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
        self._source: Optional[ReplayMethodPlugin] = None

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


def replay_source(strategy: SupervisedTemplate) -> ReplayMethodPlugin:
    """The strategy's replay plugin (the first ``ReplayMethodPlugin``: GR's, BI-R's or any method's)."""
    for plugin in strategy.plugins:
        if isinstance(plugin, ReplayMethodPlugin):
            return plugin
    raise UserInputError("the replay metrics need a ReplayMethodPlugin (e.g. GenerativeReplayPlugin or "
                         "BrainInspiredReplayPlugin) among the strategy's plugins")


class ReplayQualityMetric(PluginMetric[dict]):
    """What the frozen generator would replay, judged after each experience (``replay.quality``).

    After every training experience (when the replay plugin has taken its frozen copies) it draws
    ``samples_per_class`` samples for each class seen so far: per class when the replay is conditional (BI-R;
    GR with a class-conditional prior), otherwise as many unconditional samples, grouped by the judge's label.
    It measures them against up to ``real_per_class`` real test images of each class with ``replay_quality``
    and emits each number as ``ReplayQuality_Exp/<measure>/train_phase/train_stream/ExpNNN``, plus the grid of
    replayed samples (one row per class) as an image for loggers that show images (TensorBoard, W&B).
    ``per_experience`` keeps every experience's measures; with ``image_dir`` the grids are also written as
    ``expNNN.png``. Replay of conv features (internal replay) has no images to judge: the metric then refuses
    to start.

    Args:
        judge: the stream's judge classifier (``replay.quality.judge_for``), never the solver being trained.
        test_stream: the benchmark's test stream (the real images).
        samples_per_class: replay samples per class seen so far.
        real_per_class: real test images per class.
        grid_columns: samples per class in the image grid.
        image_dir: folder for the PNG grids (None: not written).
        k: neighbours of precision / recall / density / coverage.
        max_samples: at most this many replay samples and real images in all (the counts per class shrink when
            many classes have been seen, e.g. permuted MNIST), which bounds the cost of the k-NN distances.
    """

    def __init__(self, judge: Judge, test_stream: Any, samples_per_class: int = 100, real_per_class: int = 200,
                 grid_columns: int = 8, image_dir: Optional[Path | str] = None, k: int = 5, max_samples: int = 5000):
        super().__init__()
        for name, value in (("samples_per_class", samples_per_class), ("real_per_class", real_per_class),
                            ("grid_columns", grid_columns), ("k", k), ("max_samples", max_samples)):
            COUNT.check(f"ReplayQualityMetric: {name}", value)
        self.judge, self.test_stream = judge, test_stream
        self.samples_per_class, self.real_per_class, self.grid_columns, self.k = samples_per_class, real_per_class, grid_columns, k
        self.max_samples = max_samples
        self.image_dir = Path(image_dir) if image_dir is not None else None
        self.per_experience: list[dict] = []
        self._real: dict[int, Tensor] = {}

    def result(self) -> Optional[dict]:
        return self.per_experience[-1] if self.per_experience else None

    def reset(self) -> None:
        self.per_experience = []

    def before_training(self, strategy: SupervisedTemplate) -> None:
        method = replay_source(strategy).method
        if not method.replays_images(strategy.model):
            raise UserInputError(f"ReplayQualityMetric judges images; {type(method).__name__} with this "
                                 f"{type(strategy.model).__name__} replays none (e.g. conv features: internal replay): "
                                 "leave the metric out")

    def real_images(self, classes: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Up to ``real_per_class`` test images of each class (test experiences read once, when first needed)."""
        per_class = min(self.real_per_class, max(self.k + 1, self.max_samples // len(classes)))
        for experience in self.test_stream:
            if not set(map(int, experience.classes_in_this_experience)) <= set(self._real) and \
                    set(map(int, experience.classes_in_this_experience)) & set(classes):
                x, y, *_ = materialize(experience.dataset, torch.device("cpu"))
                for c in map(int, experience.classes_in_this_experience):
                    self._real[c] = x[y == c][: self.real_per_class]
        x = torch.cat([self._real[c][:per_class] for c in classes])
        return x, torch.cat([torch.full((len(self._real[c][:per_class]),), c) for c in classes])

    def measure(self, method: ReplayMethod, name: str) -> tuple[dict, Tensor]:
        """The measures and the sample grid of what ``method`` replays now (``judge_samples``), over the classes of
        its finished experiences; the grid is also written as ``image_dir/<name>.png``."""
        classes = list(method.classes.finished)
        per_class = min(self.samples_per_class, max(self.k + 1, self.max_samples // len(classes)))
        samples = method.judge_samples(classes, per_class)
        replay, intended, to_unit = samples.x, samples.intended, samples.to_unit
        self.judge.to(replay.device)
        real, real_labels = self.real_images(classes)
        measures = replay_quality(self.judge, replay, real, real_labels, classes, intended, self.k)
        grid = self.grid(to_unit(replay).cpu(), intended if intended is not None else self.judge.describe(replay)[1],
                         classes)
        if self.image_dir is not None:
            with atomic_file(self.image_dir / f"{name}.png") as handle:
                save_image(grid, handle, format="png")
        return measures, grid

    def after_training_exp(self, strategy: SupervisedTemplate) -> list[MetricValue]:
        experience = strategy.experience.current_experience
        with preserved_rng():  # the samples judged here leave training's random stream as it was
            measures, grid = self.measure(replay_source(strategy).method, f"exp{experience:03d}")
        self.per_experience.append(measures)
        step = strategy.clock.train_iterations
        values = [MetricValue(self, f"ReplayQuality_Exp/{name}/train_phase/train_stream/Exp{experience:03d}", value, step)
                  for name, value in measures.items() if isinstance(value, float)]
        # a PIL image: TensorBoard's and W&B's loggers both show it (Avalanche hands W&B a TensorImage channel-first)
        return values + [MetricValue(self, f"ReplayQuality_Exp/samples/train_phase/train_stream/Exp{experience:03d}",
                                     to_pil_image(grid), step)]

    def grid(self, replay: Tensor, labels: Tensor, classes: Sequence[int]) -> Tensor:
        """One row per class of up to ``grid_columns`` samples (blank where a class has fewer), pixels in [0, 1]."""
        labels = labels.cpu()
        blank = torch.zeros_like(replay[0])
        rows = []
        for c in classes:
            chosen = list(replay[labels == c][: self.grid_columns])
            rows += chosen + [blank] * (self.grid_columns - len(chosen))
        images = torch.stack(rows).clamp(0, 1)
        if images.dim() == 2:  # flat inputs: no picture, one row of pixels per sample
            images = images[:, None, None, :]
        return make_grid(images, nrow=self.grid_columns, padding=2, pad_value=1.0)

    def __str__(self) -> str:
        return "ReplayQuality"

"""The generative classifier (van de Ven, Li & Tolias 2021, "Class-Incremental Learning with Generative Classifiers")
as a method of the replay contract: it replays nothing and stores no data; each new class trains a VAE of its own
(``replay.models.GenerativeClassifier``), and nothing trained before changes, so nothing is forgotten."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from replay.checks import COUNT
from replay.errors import UserInputError
from replay.generators.data_guard import DataGuard
from replay.methods.base import Context, ReplayMethod
from replay.models.generative_classifier import GenerativeClassifier


class ClassBatches:
    """Mini-batches of one class's data, reshuffled at each pass, the last incomplete batch of a pass dropped (as the
    reference's loaders do; a class with fewer samples than a batch gives all of them each time).

    Args:
        x: the class's samples (on the training device).
    """

    def __init__(self, x: Tensor):
        self.x = x
        self.order: Optional[Tensor] = None
        self.next_row = 0

    def take(self, n: int) -> Tensor:
        """The next ``n`` samples (or all, when the class has fewer)."""
        n = min(n, len(self.x))
        if self.order is None or self.next_row + n > len(self.x):
            self.order, self.next_row = torch.randperm(len(self.x), device=self.x.device), 0
        rows = self.order[self.next_row:self.next_row + n]
        self.next_row += n
        return self.x[rows]


class GenerativeClassifierMethod(ReplayMethod):
    """Trains, in each experience, one VAE per new class on that class's data alone.

    Every strategy iteration takes one optimiser step of each new class's VAE, each on its own batch of
    ``batch_size`` samples of its class (None: the strategy's batch size), so ``iterations_per_experience`` is the
    iterations per class of the paper (1000 on split MNIST). The strategy's optimiser holds every VAE's parameters;
    Adam's update is elementwise, and a VAE whose class is not training gets no gradient, so this equals one Adam
    per VAE (tested). The strategy's own mini-batch only feeds Avalanche's training metrics.

    Named loss terms: ``recon`` and ``reg`` (each the mean over the new classes' VAEs of the batch's mean negative
    log-likelihood averaged per input unit, and of the prior's regulariser divided by the number of input units);
    the total is the sum over the new classes of ``recon + reg`` (one loss per VAE).

    Args:
        batch_size: samples per class per iteration (None: the strategy's batch size).
    """

    ranges = {"batch_size": COUNT}
    replays = False

    def __init__(self, batch_size: Optional[int] = None):
        super().__init__()
        self.batch_size = batch_size
        self.class_batches: dict[int, ClassBatches] = {}
        self.per_class = 0
        self.data_guard = DataGuard("GenerativeClassifierPlugin")

    @property
    def replaying(self) -> bool:
        """Never: the generative classifier replays nothing."""
        return False

    def check_model(self, model: nn.Module) -> None:
        """Refuse any model but a ``GenerativeClassifier``."""
        if not isinstance(model, GenerativeClassifier):
            raise UserInputError(f"GenerativeClassifierPlugin needs a replay.models.GenerativeClassifier as the "
                                 f"strategy's model, got {type(model).__name__}")

    @torch.no_grad()
    def start(self, context: Context) -> None:
        """Before an experience: its new classes' data gathered per class (in the model's input space, on the
        device; frozen conv features computed once), their VAEs marked active and trained."""
        model: GenerativeClassifier = context.model
        classes = context.classes
        if max(classes) >= model.n_classes:
            raise UserInputError(f"GenerativeClassifier has n_classes={model.n_classes}, but experience "
                                 f"{context.experience.current_experience} has class {max(classes)}: build it with "
                                 f"n_classes of at least {max(classes) + 1}")
        self.data_guard.start(model, [], context.experience)
        xs, ys = [], []
        for x, y, *_ in torch.utils.data.DataLoader(context.experience.dataset, batch_size=1024):
            x = x.to(context.device)
            self.data_guard.check(model, x)
            xs.append(model.to_replay_space(x))
            ys.append(y.to(context.device))
        x, y = torch.cat(xs), torch.cat(ys)
        self.class_batches = {c: ClassBatches(x[y == c]) for c in classes}
        self.per_class = self.batch_size or context.batch_size
        model.active = list(classes)
        model.trained[classes] = True
        super().start(context)

    def finish(self, context: Context) -> None:
        """After an experience: no class is active, the data gathered is let go."""
        context.model.active = []
        self.class_batches = {}
        super().finish(context)

    def loss(self, model: GenerativeClassifier, current_loss: Tensor, y: Tensor, replay: Optional[dict[str, Tensor]],
             replay_scores: Optional[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(sum over the new classes of each VAE's ``recon + reg`` on its own batch, the named terms); the strategy's
        loss on its batch is not trained on.

        Args:
            model: the generative classifier.
            current_loss: the strategy's criterion on its batch (unused: the VAEs do not learn from scores).
            y: the strategy's batch's labels (unused).
            replay: None.
            replay_scores: None.
        """
        per_class = [model.vae_loss(c, batches.take(self.per_class)) for c, batches in self.class_batches.items()]
        terms = {name: torch.stack([t[name] for t in per_class]).mean() for name in ("recon", "reg")}
        return sum(t["recon"] + t["reg"] for t in per_class), terms

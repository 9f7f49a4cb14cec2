"""Generative replay (Shin, Lee, Kim & Kim 2017, "Continual Learning with Deep Generative Replay") as an object of its
own: a separate VAE generator, frozen copies of generator and solver, the replay's labels and the named loss terms.
``replay.plugins.GenerativeReplayPlugin`` wires it into an Avalanche strategy."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from replay.errors import UserInputError
from replay.generators.vae import VAE
from replay.generators.data_guard import DataGuard
from replay.methods.distillation import distillation_loss
from replay.methods.lifecycle import ReplayLifecycle, ReplayMethod, frozen_copy, refit_prior

if TYPE_CHECKING:
    from avalanche.benchmarks import CLExperience

    from replay.plugins.features import FeatureCache

TARGETS = ("hard", "soft")
OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


class GenerativeReplayMethod(ReplayMethod):
    """GR's replay, losses and state across experiences.

    From the second experience on, each iteration's replay is drawn from the frozen previous generator in one batched
    call (``next_replay``) and labelled by the frozen previous solver over the classes seen before: its argmax with
    ``targets='hard'`` (the default), its softmax at temperature T with ``targets='soft'`` (distillation, times T^2).
    The solver's loss is ``(1/t) * current + (1 - 1/t) * replay`` (``solver_loss``, t = experiences so far), and the
    generator steps on the same weighting of ``recon + reg / n_inputs`` over current and replayed data
    (``generator_step``; reconstruction averaged per unit, the prior's regulariser divided by the number of input
    units, as in the BI-R reference code). After each experience the prior's hook runs and frozen copies are taken
    (``finish``).

    Args:
        generator: the VAE (any prior).
        optimizer_factory: builds the generator's optimiser from its parameters (on the training device).
        replay_size: replayed samples per iteration (None: as many as the current batch).
        targets: ``"hard"`` or ``"soft"``.
        temperature: distillation temperature T (> 0), for ``"soft"``.
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
    """

    def __init__(self, generator: VAE, optimizer_factory: OptimizerFactory, replay_size: Optional[int] = None,
                 targets: str = "hard", temperature: float = 2.0, replay_chunk: int = 1):
        if targets not in TARGETS:
            raise UserInputError(f"unknown replay targets {targets!r}; choose one of {', '.join(TARGETS)}")
        self.generator = generator
        self.optimizer_factory = optimizer_factory
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.replay_size, self.targets, self.temperature = replay_size, targets, temperature
        self.lifecycle = ReplayLifecycle(replay_chunk)
        self.frozen_generator: Optional[VAE] = None
        self.frozen_solver: Optional[nn.Module] = None
        self.features: Optional[FeatureCache] = None
        self.data_guard = DataGuard("GenerativeReplayPlugin")
        self._pending: dict = {}  # loaded state waiting for the device or the solver's architecture

    @property
    def replaying(self) -> bool:
        """Whether there is a previous generator to replay from."""
        return self.frozen_generator is not None

    # -- experiences -----------------------------------------------------------------------------------------
    def start(self, solver: nn.Module, experience: CLExperience, device: torch.device,
              features: Optional[FeatureCache] = None) -> None:
        """Before ``experience`` trains ``solver`` on ``device``; ``features``: the strategy's ``FeatureCache``,
        if any (the solver then reads conv features and the generator still models the images).

        Args:
            solver: the strategy's model.
            experience: the experience about to train.
            device: the training device.
            features: the strategy's ``FeatureCache``, or None.
        """
        self.features = features
        self.generator.to(device)
        if self.optimizer is None:
            self.optimizer = self.optimizer_factory(list(self.generator.parameters()))
            if "optimizer" in self._pending:
                self.optimizer.load_state_dict(self._pending.pop("optimizer"))
        self.bind(solver)
        for frozen in (self.frozen_generator, self.frozen_solver):
            if frozen is not None:
                frozen.to(device)
        self.generator.prior.observe_classes(experience.classes_in_this_experience)
        self.data_guard.start(self.generator, [self.frozen_generator], experience)
        self.lifecycle.start(experience.classes_in_this_experience, device)

    def bind(self, solver: nn.Module) -> None:
        """Build the frozen solver of a loaded state, now that a model of the solver's architecture is at hand."""
        if "frozen_solver" in self._pending:
            self.frozen_solver = frozen_copy(solver)
            self.frozen_solver.load_state_dict(self._pending.pop("frozen_solver"))

    def finish(self, solver: nn.Module, experience: CLExperience, device: torch.device) -> None:
        """After ``experience`` trained ``solver``: the prior's hook (refit on the current data's latents plus as
        many replayed samples, labelled by the frozen solver), then fresh frozen copies.

        Args:
            solver: the strategy's model.
            experience: the experience just trained on.
            device: the training device.
        """
        refit_prior(self.generator.prior, self.generator, experience.dataset, device,
                    self.labelled_replay if self.replaying else None)
        self.lifecycle.pool.clear()
        self.frozen_generator = frozen_copy(self.generator)
        self.frozen_solver = frozen_copy(solver)
        self.lifecycle.finish(experience.classes_in_this_experience)

    # -- replay ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def draw(self, n: int) -> dict[str, Tensor]:
        """``n`` replayed samples in one batched call each: ``x`` (the frozen generator's samples), ``inputs`` (what
        the solver reads of them: ``x``, or their features once with a ``FeatureCache``) and ``teacher_scores``
        (the frozen solver's scores over the previous classes)."""
        x = self.frozen_generator.generate(n)
        inputs = self.features.features(x) if self.features is not None else x
        scores = self.frozen_solver(inputs)[:, self.classes.previous]
        return {"x": x, "inputs": inputs, "teacher_scores": scores}

    def labelled_replay(self, n: int) -> tuple[Tensor, Tensor]:
        """``n`` replayed samples with their hard labels (for the prior's refit)."""
        replay = self.draw(n)
        return replay["x"], self.replay_labels(replay["teacher_scores"])

    def replay_labels(self, teacher_scores: Tensor) -> Tensor:
        """Hard labels (class ids) of replayed samples: the frozen solver's argmax over previous classes.

        Args:
            teacher_scores: the frozen solver's scores over the previous classes.
        """
        return self.classes.top_previous(teacher_scores)

    def check_data(self, images: Tensor) -> None:
        """Raise on the experience's first batch if the generator's likelihood cannot score ``images``."""
        self.data_guard.check(self.generator, images)

    # -- losses ----------------------------------------------------------------------------------------------
    def replay_loss(self, scores: Tensor, teacher_scores: Tensor) -> Tensor:
        """The solver's loss on replay, over all active units (old and new classes).

        Args:
            scores: the solver's scores of the replayed inputs (all units).
            teacher_scores: the frozen solver's scores over the previous classes.
        """
        scores = scores[:, self.classes.active]
        if self.targets == "soft":
            return distillation_loss(scores, self.classes.active_probs(teacher_scores, self.temperature), self.temperature)
        return F.cross_entropy(scores, self.classes.positions(self.replay_labels(teacher_scores)))

    def solver_loss(self, current: Tensor, replay_scores: Tensor, replay: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(weighted total, named terms ``current`` and ``replay``) of the solver.

        Args:
            current: the strategy's loss on the current batch.
            replay_scores: the solver's scores of the replayed inputs.
            replay: this iteration's replay (``next_replay``).
        """
        terms = {"current": current, "replay": self.replay_loss(replay_scores, replay["teacher_scores"])}
        w_current, w_replay = self.lifecycle.weights
        return w_current * terms["current"] + w_replay * terms["replay"], terms

    def generator_loss(self, x: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
        """Weighted sum over samples of ``recon + reg / n_inputs`` (the labels go to class-aware priors).

        Args:
            x: images (current, then replayed).
            labels: their labels.
            weights: per-sample weights.
        """
        terms = self.generator.loss_terms(x, labels=labels if self.generator.prior.conditional else None)
        return (weights * (terms["recon"] + terms["reg"] / self.generator.n_inputs)).sum()

    def generator_step(self, x: Tensor, y: Tensor, replay: Optional[dict[str, Tensor]]) -> Tensor:
        """One generator update on current (+ replayed) data in a single batched pass; returns its weighted loss.

        Per-sample weights ``w_current / n_current`` and ``w_replay / n_replay`` make the weighted sum equal
        to ``w_current * mean_current + w_replay * mean_replay`` (priors whose regulariser couples the batch,
        like CGM's MMD, see current and replayed samples together).

        Args:
            x: the current batch's images.
            y: their labels.
            replay: this iteration's replay, or None.
        """
        self.generator.train()
        weights = torch.full((len(y),), 1.0 / len(y), device=y.device)
        if replay is not None:
            w_current, w_replay = self.lifecycle.weights
            n_replay = len(replay["x"])
            x = torch.cat([x, replay["x"]])
            y = torch.cat([y, self.replay_labels(replay["teacher_scores"])])
            weights = torch.cat([weights * w_current, torch.full((n_replay,), w_replay / n_replay, device=y.device)])
        loss = self.generator_loss(x, y, weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.generator.prior.training_step()
        return loss.detach()

    def train_generator(self, dataset: Dataset, batch_size: int, device: torch.device, iterations: int) -> None:
        """``iterations`` generator steps on ``dataset`` (reshuffled at each pass) plus replay: the ``'after'``
        schedule.

        Args:
            dataset: the experience's data.
            batch_size: current samples per step.
            device: the training device.
            iterations: generator steps.
        """
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
        done = 0
        while done < iterations:
            for x, y, *_ in loader:
                x, y = x.to(device), y.to(device)
                self.check_data(x)
                self.generator_step(x, y, self.next_replay(len(y)) if self.replaying else None)
                done += 1
                if done == iterations:
                    break

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Generator, its optimiser, frozen copies and the lifecycle's counters (torch's convention)."""
        return {
            "generator": self.generator.state_dict(),
            "generator_optimizer": self.optimizer.state_dict() if self.optimizer else self._pending.get("optimizer"),
            "frozen_generator": self.frozen_generator.state_dict() if self.frozen_generator else None,
            "frozen_solver": self.frozen_solver.state_dict() if self.frozen_solver else self._pending.get("frozen_solver"),
            **self.lifecycle.state_dict(),
        }

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        """Restore ``state_dict``. The optimiser's state waits for the next ``start`` (which builds the optimiser on
        the training device), the frozen solver's for the solver's architecture (``start`` or ``bind``)."""
        self.generator.load_state_dict(state_dict["generator"], strict=strict)
        self.optimizer = None
        self._pending = {}
        if state_dict["generator_optimizer"] is not None:
            self._pending["optimizer"] = state_dict["generator_optimizer"]
        self.frozen_generator = self.frozen_solver = None
        if state_dict["frozen_generator"] is not None:
            self.frozen_generator = frozen_copy(self.generator)
            self.frozen_generator.load_state_dict(state_dict["frozen_generator"], strict=strict)
            self._pending["frozen_solver"] = state_dict["frozen_solver"]
        self.lifecycle.load_state_dict(state_dict)

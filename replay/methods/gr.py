"""Generative replay (Shin, Lee, Kim & Kim 2017, "Continual Learning with Deep Generative Replay") as an object of its
own: a separate VAE generator, frozen copies of generator and solver, the replay's labels and the named loss terms.
``replay.plugins.GenerativeReplayPlugin`` wires it into an Avalanche strategy."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from replay.checks import COUNT, POSITIVE
from replay.errors import UserInputError
from replay.generators.data_guard import DataGuard
from replay.generators.refit import refit_prior
from replay.generators.vae import VAE
from replay.methods.base import Context, JudgeSamples, ReplayMethod
from replay.methods.distillation import distillation_loss
from replay.methods.lifecycle import frozen_copy
from replay.optim import adam

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


class GenerativeReplayMethod(ReplayMethod):
    """GR's replay, losses and state across experiences.

    From the second experience on, each iteration's replay is drawn from the frozen previous generator in one batched
    call (``next_replay``) and labelled by the frozen previous solver over the classes seen before: its argmax with
    ``targets='hard'`` (the default), its softmax at temperature T with ``targets='soft'`` (distillation, times T^2).
    The solver's loss is ``(1/t) * current + (1 - 1/t) * replay`` (``loss``, t = experiences so far), and the
    generator steps on the same weighting of ``recon + reg / n_inputs`` over current and replayed data
    (``generator_step``; reconstruction averaged per unit, the prior's regulariser divided by the number of input
    units, as in the BI-R reference code): once per solver step (``generator_schedule='alongside'``, in
    ``after_update``) or for ``generator_iterations`` steps after the experience (``'after'``). After each
    experience the prior's hook runs and frozen copies are taken (``finish``).

    Named loss terms: ``current`` and ``replay`` (the solver's, unweighted; ``replay`` from the second experience)
    and ``generator`` (the generator's weighted total; alongside schedule only).

    Args:
        generator: the VAE (any prior).
        optimizer_factory: builds the generator's optimiser from its parameters (on the training device; None: Adam
            with learning rate 1e-3).
        replay_size: replayed samples per iteration (None: as many as the current batch).
        targets: ``"hard"`` or ``"soft"``.
        temperature: distillation temperature T (> 0), for ``"soft"``.
        generator_schedule: ``"alongside"`` (one generator step per solver step) or ``"after"``.
        generator_iterations: generator steps after each experience, for ``"after"`` (None: as many as the solver
            made in that experience).
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
    """

    ranges = {**ReplayMethod.ranges, "temperature": POSITIVE, "generator_iterations": COUNT}
    choices = {"targets": ("hard", "soft"), "generator_schedule": ("alongside", "after")}
    structural = ("generator", "optimizer_factory")
    trains_after_iteration = True

    def __init__(self, generator: VAE, optimizer_factory: Optional[OptimizerFactory] = None,
                 replay_size: Optional[int] = None, targets: str = "hard", temperature: float = 2.0,
                 generator_schedule: str = "alongside", generator_iterations: Optional[int] = None,
                 replay_chunk: int = 1):
        super().__init__(replay_size, replay_chunk)
        self.generator = generator
        self.optimizer_factory = optimizer_factory or adam
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.targets, self.temperature = targets, temperature
        self.generator_schedule, self.generator_iterations = generator_schedule, generator_iterations
        self.iterations = 0  # the solver's iterations in the current experience
        self.frozen_generator: Optional[VAE] = None
        self.frozen_solver: Optional[nn.Module] = None
        self.features: Optional[Any] = None  # the strategy's FeatureCache during an experience, if any
        self.data_guard = DataGuard("GenerativeReplayPlugin")
        self._pending: dict = {}  # loaded state waiting for the device or the solver's architecture

    @property
    def replaying(self) -> bool:
        """Whether there is a previous generator to replay from."""
        return self.frozen_generator is not None

    # -- experiences -----------------------------------------------------------------------------------------
    def check_model(self, model: nn.Module) -> None:
        """Refuse multi-head solvers (replay here is class-incremental, over one head)."""
        from avalanche.models import MultiTaskModule  # only here: the method layer loads Avalanche when it trains

        if isinstance(model, MultiTaskModule):
            raise UserInputError(f"GenerativeReplayPlugin replays class-incrementally into one head; "
                                 f"{type(model).__name__} is a multi-head MultiTaskModule: use a single-head model "
                                 "(e.g. SimpleMLP or IncrementalClassifier)")

    def start(self, context: Context) -> None:
        """Before an experience trains the solver: the generator and the frozen copies on the device, the prior told
        the classes, the data's normalisation adopted. With a ``FeatureCache`` among the strategy's plugins the
        solver reads conv features and the generator still models the images."""
        solver, experience, device = context.model, context.experience, context.device
        self.features = context.features
        self.iterations = 0
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
        super().start(context)

    def bind(self, solver: nn.Module) -> None:
        """Build the frozen solver of a loaded state, now that a model of the solver's architecture is at hand."""
        if "frozen_solver" in self._pending:
            self.frozen_solver = frozen_copy(solver)
            self.frozen_solver.load_state_dict(self._pending.pop("frozen_solver"))

    def finish(self, context: Context) -> None:
        """After an experience trained the solver: the generator's own training with the ``'after'`` schedule, the
        prior's hook (refit on the current data's latents plus as many replayed samples, labelled by the frozen
        solver), then fresh frozen copies."""
        if self.generator_schedule == "after":
            self.train_generator(context.experience.dataset, context.batch_size, context.device,
                                 self.generator_iterations or self.iterations)
        refit_prior(self.generator.prior, self.generator, context.experience.dataset, context.device,
                    self.labelled_replay if self.replaying else None)
        self.lifecycle.pool.clear()
        self.frozen_generator = frozen_copy(self.generator)
        self.frozen_solver = frozen_copy(context.model)
        super().finish(context)

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

    def replay_classes(self, replay: dict[str, Tensor]) -> Tensor:
        """The frozen solver's label of each replayed sample."""
        return self.replay_labels(replay["teacher_scores"])

    def current_images(self, x: Tensor) -> Tensor:
        """What the generator models of the current batch: ``x``, or its images with a ``FeatureCache``."""
        return self.features.batch_images() if self.features is not None else x

    def forward_inputs(self, model: nn.Module, x: Tensor, replay: Optional[dict[str, Tensor]]) -> Tensor:
        """The current inputs then the replay's (checking the experience's first batch against the likelihood)."""
        self.data_guard.check(self.generator, self.current_images(x))
        return super().forward_inputs(model, x, replay)

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

    def loss(self, model: nn.Module, current_loss: Tensor, y: Tensor, replay: Optional[dict[str, Tensor]],
             replay_scores: Optional[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(weighted total, named terms ``current`` and ``replay``) of the solver; the strategy's loss unchanged
        (and no terms) without replay.

        Args:
            model: the solver.
            current_loss: the strategy's loss on the current batch.
            y: the current labels.
            replay: this iteration's replay (``next_replay``), or None.
            replay_scores: the solver's scores of the replayed inputs.
        """
        if replay is None:
            return current_loss, {}
        terms = {"current": current_loss, "replay": self.replay_loss(replay_scores, replay["teacher_scores"])}
        w_current, w_replay = self.lifecycle.weights
        return w_current * terms["current"] + w_replay * terms["replay"], terms

    def after_update(self, model: nn.Module, x: Tensor, y: Tensor,
                     replay: Optional[dict[str, Tensor]]) -> dict[str, Tensor]:
        """One generator step with the alongside schedule (its weighted loss as ``generator``)."""
        self.iterations += 1
        if self.generator_schedule != "alongside":
            return {}
        return {"generator": self.generator_step(self.current_images(x), y, replay)}

    def guarded(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"solver": model, "generator": self.generator}

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
                self.data_guard.check(self.generator, x)
                self.generator_step(x, y, self.next_replay(x) if self.replaying else None)
                done += 1
                if done == iterations:
                    break

    # -- replay quality --------------------------------------------------------------------------------------
    def replays_images(self, model: nn.Module) -> bool:
        return True

    @torch.no_grad()
    def judge_samples(self, classes: Sequence[int], per_class: int) -> JudgeSamples:
        """From the frozen generator: per class with a class-conditional prior, else as many unconditional samples."""
        generator = self.frozen_generator
        if generator.prior.conditional:
            wanted = torch.as_tensor(classes, device=next(generator.parameters()).device).repeat_interleave(per_class)
            return JudgeSamples(generator.generate(len(wanted), wanted), wanted, generator.data_to_unit)
        return JudgeSamples(generator.generate(per_class * len(classes)), None, generator.data_to_unit)

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Generator, its optimiser, frozen copies and the lifecycle's counters (torch's convention)."""
        return {
            "generator": self.generator.state_dict(),
            "generator_optimizer": self.optimizer.state_dict() if self.optimizer else self._pending.get("optimizer"),
            "frozen_generator": self.frozen_generator.state_dict() if self.frozen_generator else None,
            "frozen_solver": self.frozen_solver.state_dict() if self.frozen_solver else self._pending.get("frozen_solver"),
            **super().state_dict(),
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
        super().load_state_dict(state_dict)

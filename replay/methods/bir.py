"""Brain-inspired replay (van de Ven, Siegelmann & Tolias 2020, "Brain-inspired replay for continual learning with
artificial neural networks") as an object of its own: conditional replay from the frozen model, its targets and the
named loss terms of current and replayed samples. ``replay.plugins.BrainInspiredReplayPlugin`` wires it into an
Avalanche strategy whose model is a ``BIRModel``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor
from torch.nn import functional as F

from replay.generators.data_guard import DataGuard
from replay.methods.distillation import distillation_loss
from replay.methods.lifecycle import ReplayLifecycle, ReplayMethod, frozen_copy, refit_prior
from replay.models.bir import BIRModel

if TYPE_CHECKING:
    from avalanche.benchmarks import CLExperience


class BrainInspiredReplayMethod(ReplayMethod):
    """BI-R's replay, losses and state across experiences.

    Named loss terms per iteration:
    * current batch: ``classification`` (the strategy's criterion on the real labels) + ``recon`` (averaged per
      unit) + ``reg`` (the prior's regulariser divided by the number of input pixels), the decoder gated by each
      sample's label and the prior told the label;
    * replay (from the second experience): a previous class drawn uniformly per sample, z from the frozen model's
      prior conditioned on it (``conditional``), decoded through that class's gate, in one batched call
      (``draw``). The frozen model's scores over the previous classes give the targets: ``classification`` is the
      distillation loss (T = ``temperature``, times T^2) when ``distill``, else the cross-entropy on its hard
      labels. When re-encoded, the replay is gated by softmax(scores / T) and the prior gets those probabilities
      (hard labels without distillation);
    * total: ``(1/t) * current + (1 - 1/t) * replay``, t = experiences so far.
    Internal replay needs no switch here: a model with a frozen feature extractor generates and replays features.

    Args:
        replay_size: replayed samples per iteration (None: as many as the current batch).
        distill: distillation targets (else the frozen model's hard labels).
        temperature: distillation temperature T (> 0).
        conditional: draw z from the replayed class's prior mode (else unconditional; the gate follows the class).
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
    """

    def __init__(self, replay_size: Optional[int] = None, distill: bool = True, temperature: float = 2.0,
                 conditional: bool = True, replay_chunk: int = 1):
        self.replay_size, self.distill, self.temperature, self.conditional = replay_size, distill, temperature, conditional
        self.lifecycle = ReplayLifecycle(replay_chunk)
        self.frozen_model: Optional[BIRModel] = None
        self.data_guard = DataGuard("BrainInspiredReplayPlugin")
        self._pending_frozen: Optional[dict] = None  # a loaded frozen model's state, until the model is at hand

    @property
    def replaying(self) -> bool:
        """Whether there is a previous model to replay from."""
        return self.frozen_model is not None

    # -- experiences -----------------------------------------------------------------------------------------
    def start(self, model: BIRModel, experience: CLExperience, device: torch.device) -> None:
        """Before ``experience`` trains ``model`` on ``device``.

        Args:
            model: the strategy's model.
            experience: the experience about to train.
            device: the training device.
        """
        model.prior.observe_classes(experience.classes_in_this_experience)
        self.bind(model)
        self.data_guard.start(model, [self.frozen_model], experience)
        if self.frozen_model is not None:
            self.frozen_model.to(device)
        self.lifecycle.start(experience.classes_in_this_experience, device)

    def bind(self, model: BIRModel) -> None:
        """Build the frozen model of a loaded state, now that a model of its architecture is at hand."""
        if self._pending_frozen is not None:
            self.frozen_model = frozen_copy(model)
            self.frozen_model.load_state_dict(self._pending_frozen)
            self._pending_frozen = None

    @torch.no_grad()
    def finish(self, model: BIRModel, experience: CLExperience, device: torch.device) -> None:
        """After ``experience`` trained ``model``: the prior's hook (refit on the current data's latents plus as many
        replayed samples, labelled by their drawn class), then a fresh frozen copy.

        Args:
            model: the strategy's model.
            experience: the experience just trained on.
            device: the training device.
        """
        refit_prior(model.prior, model, experience.dataset, device, self.labelled_replay if self.replaying else None)
        self.lifecycle.pool.clear()
        self.frozen_model = frozen_copy(model)
        self.lifecycle.finish(experience.classes_in_this_experience)

    # -- replay ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def draw(self, n: int) -> dict[str, Tensor]:
        """``n`` replayed samples from the frozen model: ``classes`` (drawn uniformly among the previous ones),
        ``x`` (in replay space) and ``teacher_scores`` (the frozen model's scores over the previous classes)."""
        classes = self.classes.draw_previous(n)
        x = self.frozen_model.generate(classes, self.conditional)
        scores = self.frozen_model.classify_replay(x)[0][:, self.classes.previous]
        return {"classes": classes, "x": x, "teacher_scores": scores}

    def labelled_replay(self, n: int) -> tuple[Tensor, Tensor]:
        """``n`` replayed samples with the classes they were drawn for (for the prior's refit)."""
        replay = self.draw(n)
        return replay["x"], replay["classes"]

    def replay_labels(self, replay: dict[str, Tensor]) -> Tensor:
        """The frozen model's top class of each replayed sample (its hard label without distillation).

        Args:
            replay: a replay batch (``draw``'s columns).
        """
        return self.classes.top_previous(replay["teacher_scores"])

    def check_data(self, model: BIRModel, x: Tensor) -> None:
        """Raise on the experience's first batch if the model's likelihood cannot score ``x``."""
        self.data_guard.check(model, x)

    # -- losses ----------------------------------------------------------------------------------------------
    def replay_targets(self, model: BIRModel, replay: dict[str, Tensor], scores: Tensor) -> dict:
        """Gate input, prior conditioning and classification loss of the replayed samples, given the model's
        ``scores`` of them.

        Args:
            model: the strategy's model.
            replay: this iteration's replay.
            scores: the model's scores of the replayed inputs.
        """
        classes = self.classes
        scores = scores[:, classes.active]
        if self.distill:
            active_probs = classes.active_probs(replay["teacher_scores"], self.temperature)
            probs = active_probs.new_zeros(len(scores), model.n_classes).index_copy_(1, classes.active, active_probs)
            return {"gate": model.context_gate(class_probs=probs), "prior": {"probs": probs},
                    "classification": distillation_loss(scores, active_probs, self.temperature)}
        labels = self.replay_labels(replay)
        return {"gate": model.context_gate(classes=labels), "prior": {"labels": labels},
                "classification": F.cross_entropy(scores, classes.positions(labels))}

    def loss(self, model: BIRModel, classification: Tensor, y: Tensor, replay: Optional[dict[str, Tensor]],
             replay_scores: Optional[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(weighted total, named terms) of one iteration, from one decoder pass over current and replayed samples.

        The encoder's activations come from the strategy's own forward pass (``BIRModel.take_capture``), which
        must have run on the current batch followed by the replay.

        Args:
            model: the strategy's model.
            classification: the strategy's loss on the current batch.
            y: the current batch's labels.
            replay: this iteration's replay (``next_replay``), or None.
            replay_scores: the model's scores of the replayed inputs (None without replay).
        """
        n = len(y)
        gate = model.context_gate(classes=y)
        targets = self.replay_targets(model, replay, replay_scores) if replay is not None else None
        if targets is not None and gate is not None:
            gate = torch.cat([gate, targets["gate"]])
        n_replay = len(replay["x"]) if replay is not None else 0
        posterior, z, recon = model.reconstruct(*model.take_capture(n + n_replay), gate)
        prior = model.prior
        current = {
            "classification": classification,
            "recon": recon[:n].mean(),
            "reg": prior.regularizer(posterior.rows(slice(None, n)), z[:n], labels=y).mean() / model.n_pixels,
        }
        total = sum(current.values())
        terms = {f"{k}_current": v for k, v in current.items()}
        if targets is not None:
            replayed = {
                "classification": targets["classification"],
                "recon": recon[n:].mean(),
                "reg": prior.regularizer(posterior.rows(slice(n, None)), z[n:], **targets["prior"]).mean()
                / model.n_pixels,
            }
            terms.update({f"{k}_replay": v for k, v in replayed.items()})
            w_current, w_replay = self.lifecycle.weights
            total = w_current * total + w_replay * sum(replayed.values())
        prior.training_step()
        return total, terms

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The frozen model and the lifecycle's counters (torch's convention)."""
        frozen = self.frozen_model.state_dict() if self.frozen_model is not None else self._pending_frozen
        return {"frozen_model": frozen, **self.lifecycle.state_dict()}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        """Restore ``state_dict``; the frozen model is built at the next ``start`` (or ``bind``), from the model."""
        self.frozen_model = None
        self._pending_frozen = state_dict["frozen_model"]
        self.lifecycle.load_state_dict(state_dict)

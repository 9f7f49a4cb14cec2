"""Brain-inspired replay (van de Ven, Siegelmann & Tolias 2020, "Brain-inspired replay for continual learning with
artificial neural networks") as an object of its own: conditional replay from the frozen model, its targets and the
named loss terms of current and replayed samples. ``replay.plugins.BrainInspiredReplayPlugin`` wires it into an
Avalanche strategy whose model is a ``BIRModel``."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from replay.checks import NON_NEGATIVE, POSITIVE
from replay.errors import UserInputError
from replay.generators.data_guard import DataGuard
from replay.generators.refit import refit_prior
from replay.methods.base import Context, JudgeSamples, ReplayMethod
from replay.methods.distillation import distillation_loss
from replay.methods.lifecycle import frozen_copy
from replay.methods.si import NamedParameters, SynapticIntelligence
from replay.models.bir import BIRModel


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
    * total: ``(1/t) * current + (1 - 1/t) * replay``, t = experiences so far;
    * with ``si_c > 0`` (BI-R + SI, the BI-R paper's best class-incremental combination), from the second
      experience: ``si``, the synaptic-intelligence penalty sum omega (theta - theta*)^2 over the encoder's fully
      connected layers and the classifier (``si_parameters``; ``replay.methods.si``), added as ``si_c * si`` to the
      total. Its path integral reads the gradient of the whole total, replay and penalty included, after every
      optimiser step (``after_update``); omega grows at each experience's end (``finish``).
    Internal replay needs no switch here: a model with a frozen feature extractor generates and replays features.

    Args:
        replay_size: replayed samples per iteration (None: as many as the current batch).
        distill: distillation targets (else the frozen model's hard labels).
        temperature: distillation temperature T (> 0).
        conditional: draw z from the replayed class's prior mode (else unconditional; the gate follows the class).
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
        si_c: the synaptic-intelligence penalty's weight c (0: BI-R alone).
        si_epsilon: the damping epsilon of the importances (> 0).
    """

    ranges = {**ReplayMethod.ranges, "temperature": POSITIVE, "si_c": NON_NEGATIVE, "si_epsilon": POSITIVE}

    def __init__(self, replay_size: Optional[int] = None, distill: bool = True, temperature: float = 2.0,
                 conditional: bool = True, replay_chunk: int = 1, si_c: float = 0.0, si_epsilon: float = 0.1):
        super().__init__(replay_size, replay_chunk)
        self.distill, self.temperature, self.conditional = distill, temperature, conditional
        self.si_c = si_c
        self.si = SynapticIntelligence(si_epsilon) if si_c > 0 else None
        self.frozen_model: Optional[BIRModel] = None
        self.data_guard = DataGuard("BrainInspiredReplayPlugin")
        self._pending: dict = {}  # a loaded frozen model's state, until the model is at hand

    @property
    def replaying(self) -> bool:
        """Whether there is a previous model to replay from."""
        return self.frozen_model is not None

    # -- experiences -----------------------------------------------------------------------------------------
    def check_model(self, model: nn.Module) -> None:
        """Refuse any model but a ``BIRModel`` (classifier and VAE in one network)."""
        if not isinstance(model, BIRModel):
            raise UserInputError(f"BrainInspiredReplayPlugin needs a replay.models.BIRModel as the strategy's model, "
                                 f"got {type(model).__name__}")

    def start(self, context: Context) -> None:
        """Before an experience trains the model: the prior told the classes, the data's normalisation adopted, the
        frozen model on the device."""
        model = context.model
        if max(context.classes) >= model.n_classes:
            raise UserInputError(f"BIRModel has n_classes={model.n_classes}, but experience "
                                 f"{context.experience.current_experience} has class {max(context.classes)}: build it "
                                 f"with n_classes of at least {max(context.classes) + 1} (and its prior with as many)")
        model.prior.observe_classes(context.classes)
        self.bind(model)
        self.data_guard.start(model, [self.frozen_model], context.experience)
        if self.frozen_model is not None:
            self.frozen_model.to(context.device)
        if self.si is not None:
            self.si.start(self.si_parameters(model))
        super().start(context)

    def bind(self, model: BIRModel) -> None:
        """Build the frozen model of a loaded state, now that a model of its architecture is at hand."""
        if "frozen_model" in self._pending:
            self.frozen_model = frozen_copy(model)
            self.frozen_model.load_state_dict(self._pending.pop("frozen_model"))

    @torch.no_grad()
    def finish(self, context: Context) -> None:
        """After an experience trained the model: the prior's hook (refit on the current data's latents plus as many
        replayed samples, labelled by their drawn class), then a fresh frozen copy."""
        model = context.model
        refit_prior(model.prior, model, context.experience.dataset, context.device,
                    self.labelled_replay if self.replaying else None)
        self.lifecycle.pool.clear()
        if self.si is not None:
            self.si.consolidate(self.si_parameters(model))
        self.frozen_model = frozen_copy(model)
        super().finish(context)

    @staticmethod
    def si_parameters(model: BIRModel) -> NamedParameters:
        """The parameters synaptic intelligence covers, as in the BI-R reference code: the encoder's fully
        connected layers and the classifier (the frozen conv layers have no gradient; the layer to z, the decoder
        and the prior's modes are left free)."""
        named = {**dict(model.encoder.named_parameters(prefix="encoder")),
                 **dict(model.classifier.named_parameters(prefix="classifier"))}
        return {name: p for name, p in named.items() if p.requires_grad}

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

    def replay_classes(self, replay: dict[str, Tensor]) -> Tensor:
        """The frozen model's top class of each replayed sample (its hard label without distillation).

        Args:
            replay: a replay batch (``draw``'s columns).
        """
        return self.classes.top_previous(replay["teacher_scores"])

    def forward_inputs(self, model: BIRModel, x: Tensor, replay: Optional[dict[str, Tensor]]) -> Tensor:
        """The current inputs (in replay space when there is replay), then the replay's; the model keeps the
        activations of this forward pass for the VAE terms (``BIRModel.capture_next_forward``). The experience's
        first batch is checked against the likelihood."""
        self.data_guard.check(model, x)
        model.capture_next_forward()
        return x if replay is None else torch.cat([model.to_replay_space(x), replay["x"]])

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
        labels = self.replay_classes(replay)
        return {"gate": model.context_gate(classes=labels), "prior": {"labels": labels},
                "classification": F.cross_entropy(scores, classes.positions(labels))}

    def loss(self, model: BIRModel, current_loss: Tensor, y: Tensor, replay: Optional[dict[str, Tensor]],
             replay_scores: Optional[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """(weighted total, named terms) of one iteration, from one decoder pass over current and replayed samples.

        The encoder's activations come from the strategy's own forward pass (``BIRModel.take_capture``), which
        must have run on the current batch followed by the replay.

        Args:
            model: the strategy's model.
            current_loss: the strategy's loss (classification) on the current batch.
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
            "classification": current_loss,
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
        if self.si is not None and self.si.consolidated:
            terms["si"] = self.si.penalty(self.si_parameters(model))
            total = total + self.si_c * terms["si"]
        prior.training_step()
        return total, terms

    def after_update(self, model: BIRModel, x: Tensor, y: Tensor,
                     replay: Optional[dict[str, Tensor]]) -> dict[str, Tensor]:
        """With SI: the path integral's step (eq. 3 of ``replay.methods.si``) from this iteration's gradients."""
        if self.si is not None:
            self.si.accumulate(self.si_parameters(model))
        return {}

    # -- replay quality --------------------------------------------------------------------------------------
    def replays_images(self, model: BIRModel) -> bool:
        """Whether the replay is images (not conv features: internal replay)."""
        return model.feature_extractor is None

    @torch.no_grad()
    def judge_samples(self, classes: Sequence[int], per_class: int) -> JudgeSamples:
        """``per_class`` samples of each class from the frozen model, drawn as the replay draws them."""
        model = self.frozen_model
        wanted = torch.as_tensor(classes, device=model.class_to_context.device).repeat_interleave(per_class)
        return JudgeSamples(model.generate(wanted, self.conditional), wanted, model.data_to_unit)

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The frozen model, SI's state (with ``si_c > 0``) and the lifecycle's counters (torch's convention)."""
        frozen = self.frozen_model.state_dict() if self.frozen_model is not None else self._pending.get("frozen_model")
        si = {"si": self.si.state_dict()} if self.si is not None else {}
        return {"frozen_model": frozen, **si, **super().state_dict()}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        """Restore ``state_dict``; the frozen model is built at the next ``start`` (or ``bind``), from the model."""
        self.frozen_model = None
        self._pending = {} if state_dict["frozen_model"] is None else {"frozen_model": state_dict["frozen_model"]}
        if self.si is not None:
            if "si" not in state_dict:
                raise UserInputError("this BI-R state was saved without synaptic intelligence (si_c = 0): load it "
                                     "into a method built with si_c = 0")
            self.si.load_state_dict(state_dict["si"])
        super().load_state_dict(state_dict)

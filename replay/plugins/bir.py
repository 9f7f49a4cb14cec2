"""Brain-inspired replay (van de Ven, Siegelmann & Tolias 2020) as an Avalanche plugin."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import functional as F

from avalanche.training.plugins import SupervisedPlugin

from replay.checks import COUNT, POSITIVE, check_ranges
from replay.errors import UserInputError
from replay.plugins.finite import FiniteGuard
from replay.models.bir import BIRModel
from replay.plugins.common import (
    DataGuard, ReplayAlongside, ReplayClasses, ReplayPool, ReplayTrace, distillation_loss, frozen_copy,
    posterior_means, replay_weights,
)


class BrainInspiredReplayPlugin(ReplayTrace, SupervisedPlugin):
    """BI-R on a strategy whose model is a :class:`BIRModel` (classifier and VAE in one network).

    Loss per iteration, every term named (reference: van de Ven et al. 2020, methods; REFERENCE.md section 3):
    * current batch: ``classification`` (the strategy's criterion on the real labels) + ``recon`` (averaged
      per unit) + ``reg`` (prior regulariser divided by the number of input pixels), the decoder gated by
      each sample's label and the prior told the label;
    * replay (from the second experience): a previous class drawn uniformly per sample, z from the frozen
      model's prior conditioned on it (``conditional``), decoded through that class's gate, in one batched
      call. The frozen model's scores over the previous classes give the targets: ``distillation``
      (T = ``temperature``, times T^2) when ``distill``, else hard labels. When re-encoded, the replay is gated
      by softmax(scores / T) and the prior gets those probabilities (hard labels without distillation);
    * total: ``(1/t) * current + (1 - 1/t) * replay``.
    Internal replay needs no switch here: a model with a frozen feature extractor generates and replays
    features. ``replay_chunk = k`` draws the replay of ``k`` iterations at once (``ReplayPool``: same
    distribution, another random stream; 1, the default, draws every iteration). ``last_losses`` holds each
    named term of the last iteration, ``last_replay_classes`` the frozen model's top class for each replayed
    sample (the label it is trained on without distillation; with conditional replay, the drawn class when the
    frozen model recognises its own samples).

    The VAE terms reuse the encoder's activations of the strategy's own forward pass, asked for in
    ``before_forward`` and taken in ``before_backward`` (``BIRModel.capture_next_forward``). As for GR, a model
    without a declared ``normalization`` adopts the one the experience's transforms apply, and the first batch
    of each experience is checked against the likelihood's support.

    Args:
        replay_size: replayed samples per iteration (None: the current batch's size).
        distill: distillation targets (else the frozen model's hard labels).
        temperature: distillation temperature T (> 0).
        conditional: draw z from the replayed class's prior mode (else unconditional, gate by class).
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
        check_finite_every: stop at the first non-finite loss term or parameter, read on the host every this many
            iterations (``FiniteGuard``; 0 turns it off).
    """

    def __init__(self, replay_size: Optional[int] = None, distill: bool = True, temperature: float = 2.0,
                 conditional: bool = True, replay_chunk: int = 1, check_finite_every: int = 50):
        super().__init__()
        check_ranges("BrainInspiredReplayPlugin: ", {"temperature": POSITIVE, "replay_size": COUNT},
                     dict(temperature=temperature, replay_size=replay_size))
        self.replay_size, self.distill, self.temperature, self.conditional = replay_size, distill, temperature, conditional
        self.pool = ReplayPool(replay_chunk)
        self.frozen_model: Optional[BIRModel] = None
        self.classes = ReplayClasses()
        self.alongside = ReplayAlongside()
        self._replay: Optional[dict[str, Tensor]] = None
        self.experiences_done = 0
        self._losses: dict[str, Tensor] = {}
        self.data_guard = DataGuard("BrainInspiredReplayPlugin")
        self.finite = FiniteGuard(check_finite_every, "BrainInspiredReplayPlugin")

    @property
    def t(self) -> int:
        return self.experiences_done + 1

    def before_training(self, strategy, **kwargs):
        if not isinstance(strategy.model, BIRModel):
            raise UserInputError(f"BrainInspiredReplayPlugin needs a replay.models.BIRModel as the strategy's model, "
                                 f"got {type(strategy.model).__name__}")

    def before_training_exp(self, strategy, **kwargs):
        strategy.model.prior.observe_classes(strategy.experience.classes_in_this_experience)
        self.data_guard.start(strategy.model, [self.frozen_model], strategy.experience)
        self.finite.start(strategy.experience.current_experience)
        if self.frozen_model is not None:
            self.frozen_model.to(strategy.device)
        self.pool.clear()
        self.classes.start(strategy.experience.classes_in_this_experience, strategy.device)

    @torch.no_grad()
    def draw_replay(self, n: int) -> dict[str, Tensor]:
        """Replay batch from the frozen model: classes, inputs (replay space) and teacher scores over previous classes."""
        classes = self.classes.draw_previous(n)
        x = self.frozen_model.generate(classes, self.conditional)
        scores = self.frozen_model.classify_replay(x)[0][:, self.classes.previous]
        return {"classes": classes, "x": x, "teacher_scores": scores}

    def before_forward(self, strategy, **kwargs):
        self.data_guard.check(strategy.model, strategy.mb_x)
        strategy.model.capture_next_forward()
        self._replay, self.last_replay_classes = None, None
        if self.frozen_model is not None:
            self._replay = self.pool.take(self.replay_size or len(strategy.mb_y), self.draw_replay)
            self.last_replay_classes = self.classes.top_previous(self._replay["teacher_scores"])
            self.alongside.attach_inputs(strategy, torch.cat([strategy.model.to_replay_space(strategy.mb_x), self._replay["x"]]))

    def after_forward(self, strategy, **kwargs):
        replay_scores = self.alongside.detach(strategy)
        if self._replay is not None:
            self._replay["scores"] = replay_scores

    def replay_targets(self, model: BIRModel) -> dict[str, Tensor]:
        """Gate input, prior conditioning and classification loss of the replayed samples."""
        replay, classes = self._replay, self.classes
        scores = replay["scores"][:, classes.active]
        if self.distill:
            active_probs = classes.active_probs(replay["teacher_scores"], self.temperature)
            probs = active_probs.new_zeros(len(scores), model.n_classes).index_copy_(1, classes.active, active_probs)
            return {"gate": model.context_gate(class_probs=probs), "prior": {"probs": probs},
                    "classification": distillation_loss(scores, active_probs, self.temperature)}
        labels = self.last_replay_classes
        return {"gate": model.context_gate(classes=labels), "prior": {"labels": labels},
                "classification": F.cross_entropy(scores, classes.positions(labels))}

    def before_backward(self, strategy, **kwargs):
        """Named loss terms of current and replayed samples from one decoder pass over both."""
        model: BIRModel = strategy.model
        y, n = strategy.mb_y, len(strategy.mb_y)
        gate = model.context_gate(classes=y)
        targets = self.replay_targets(model) if self._replay is not None else None
        if targets is not None and gate is not None:
            gate = torch.cat([gate, targets["gate"]])
        n_replay = len(self._replay["x"]) if self._replay is not None else 0
        vae = model.reconstruct(*model.take_capture(n + n_replay), gate)
        prior = model.prior
        current = {
            "classification": strategy.loss,
            "recon": vae["recon"][:n].mean(),
            "reg": prior.regularizer(vae["mu"][:n], vae["logvar"][:n], vae["z"][:n], labels=y).mean() / model.n_pixels,
        }
        loss = sum(current.values())
        self._losses = {f"{k}_current": v.detach() for k, v in current.items()}
        if targets is not None:
            replay = {
                "classification": targets["classification"],
                "recon": vae["recon"][n:].mean(),
                "reg": prior.regularizer(vae["mu"][n:], vae["logvar"][n:], vae["z"][n:], **targets["prior"]).mean()
                / model.n_pixels,
            }
            self._losses.update({f"{k}_replay": v.detach() for k, v in replay.items()})
            w_current, w_replay = replay_weights(self.t)
            loss = w_current * loss + w_replay * sum(replay.values())
        self._replay = None
        strategy.loss = loss

    def after_training_iteration(self, strategy, **kwargs):
        self.finite.observe({"loss": strategy.loss, **self._losses}, {"model": strategy.model})

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs):
        model: BIRModel = strategy.model
        self.finite.check({"model": model})
        latents = labels = None
        if model.prior.wants_latents:  # current data plus as many replayed samples, through the current encoder
            latents, labels = posterior_means(model, strategy.experience.dataset, strategy.device)
            if self.frozen_model is not None:
                replay = self.draw_replay(len(labels))
                model.eval()
                latents = torch.cat([latents, model.encode(replay["x"])[0]])
                labels = torch.cat([labels, replay["classes"]])
                model.train()
        model.prior.end_experience(latents, labels)
        self.pool.clear()
        self.frozen_model = frozen_copy(model)
        self.classes.finish(strategy.experience.classes_in_this_experience)
        self.experiences_done += 1

    def state_dict(self) -> dict:
        return {"frozen_model": self.frozen_model.state_dict() if self.frozen_model else None,
                "previous_classes": self.classes.finished, "experiences_done": self.experiences_done}

    def load_state_dict(self, state: dict, model: BIRModel) -> None:
        if state["frozen_model"] is not None:
            self.frozen_model = frozen_copy(model)
            self.frozen_model.load_state_dict(state["frozen_model"])
        self.pool.clear()
        self.classes.finished = list(state["previous_classes"])
        self.experiences_done = int(state["experiences_done"])


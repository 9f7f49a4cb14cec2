"""BIRModel: classifier and VAE in one network ("replay through feedback", van de Ven et al. 2020)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from replay.errors import UserInputError
from replay.generators.likelihoods import likelihood as get_likelihood
from replay.generators.normalization import ModelsData, Normalization
from replay.nets import GatedMLPDecoder, mlp
from replay.priors.base import LatentPrior, Posterior


class BIRModel(ModelsData, nn.Module):
    """Encoder (shared) -> classifier on the last hidden layer; encoder -> prior head -> z -> gated decoder.

    ``forward(x)`` returns class scores (``x`` images, or inputs already in replay space), so Avalanche's
    evaluation and user code treat it as a classifier. A plugin that adds the VAE terms without a second
    encoder pass asks for the activations of the next forward pass with ``capture_next_forward`` and takes them
    with ``take_capture``: only that one pass, with gradients on, is kept, so forward passes of other plugins
    (LwF's, EWC's) neither overwrite nor leak into it. With a ``feature_extractor`` (frozen conv layers), images
    are first turned into its features and everything else, generation and replay included, happens on those
    features (internal replay); the "replay space" is then the feature space.

    Gates: ``n_contexts`` fixed random masks (a unit silenced with probability ``gate_prop``) on the
    decoder's first and hidden layers; ``class_to_context`` maps a class to its gating context.

    Args:
        input_shape: shape of one image, without the batch dimension.
        n_classes: number of output units (class slots of the prior too).
        prior: the latent prior.
        hidden: widths of the shared encoder's layers (the decoder mirrors them).
        gate_prop: probability that a gate silences a decoder unit, in [0, 1) (0: no gates).
        class_to_context: gating context of each class (default: one per class).
        feature_extractor: frozen conv layers for internal replay (``out_features`` attribute), or None.
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (default: Bernoulli on images, Gaussian on features).
        normalization: how the images were normalised (``Normalization(mean, std)``), or None if the pixels are
            in [0, 1]; not with a feature extractor (features are modelled as they are).
        seed: seed of the gate masks.
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, prior: LatentPrior,
                 hidden: Sequence[int] = (400, 400), gate_prop: float = 0.8,
                 class_to_context: Optional[Sequence[int]] = None,
                 feature_extractor: Optional[nn.Module] = None, likelihood: Optional[str] = None, seed: int = 0,
                 normalization: Optional[Normalization] = None):
        super().__init__()
        if not 0.0 <= gate_prop < 1.0:
            raise UserInputError(f"gate_prop must be in [0, 1), got {gate_prop}")
        if prior.n_classes is not None and prior.n_classes < n_classes:
            raise UserInputError(f"BIRModel has n_classes={n_classes}, but its prior has {prior.n_classes} class slots: "
                                 f"build the prior with n_classes={n_classes}")
        self.feature_extractor = feature_extractor
        self.replay_shape = (feature_extractor.out_features,) if feature_extractor is not None else tuple(input_shape)
        n_replay = math.prod(self.replay_shape)
        self.input_shape = tuple(input_shape)
        self.n_pixels = math.prod(input_shape)
        self.n_classes = n_classes
        self.prior = prior
        self.encoder = nn.Sequential(nn.Flatten(), mlp([n_replay, *hidden]))
        self.head = prior.posterior_head(hidden[-1])
        self.classifier = nn.Linear(hidden[-1], n_classes)
        contexts = torch.as_tensor(class_to_context if class_to_context is not None else range(n_classes))
        self.register_buffer("class_to_context", contexts.long())
        n_contexts = int(contexts.max()) + 1
        self.decoder = GatedMLPDecoder(prior.latent_dim, hidden, n_replay, n_contexts, gate_prop, seed)
        default = "gaussian" if feature_extractor is not None else "bernoulli"
        self.likelihood = get_likelihood(likelihood or default)
        if feature_extractor is not None and normalization is not None:
            raise UserInputError("BIRModel with a feature_extractor models features, not pixels: drop normalization")
        self.normalization: Optional[Normalization] = None
        self.use_normalization(normalization)
        self._capture_armed = False
        self._captured: Optional[tuple[Tensor, Tensor]] = None

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.replay_shape

    def check_data(self, x: Tensor, where: str) -> None:
        """The shape (the model's input shape, or its replay space), then the likelihood's support
        (``ModelsData.check_data``)."""
        if tuple(x.shape[1:]) not in (self.input_shape, self.replay_shape):
            raise UserInputError(f"{where}: the data's samples have shape {tuple(x.shape[1:])}, but BIRModel was built "
                                 f"for input_shape={self.input_shape}: build it with the data's shape")
        super().check_data(x, where)

    @property
    def gated(self) -> bool:
        return self.decoder.gated

    # -- classifier ----------------------------------------------------------------------------------------
    def to_replay_space(self, x: Tensor) -> Tensor:
        """Images -> what the VAE models (conv features with internal replay, else the images).

        Inputs already of the replay shape pass through, so ``forward`` takes images or replay-space inputs.

        Args:
            x: images or replay-space inputs.
        """
        if self.feature_extractor is None or tuple(x.shape[1:]) == self.replay_shape:
            return x
        with torch.no_grad():
            return self.feature_extractor(x)

    def hidden(self, x_replay: Tensor) -> Tensor:
        """The shared encoder's last hidden layer. Normalised pixels are un-normalised first, so the network (its
        classifier too) learns on pixels in [0, 1] whatever normalisation the benchmark applies.

        Args:
            x_replay: inputs in replay space.
        """
        return self.encoder(self.data_to_unit(x_replay))

    def forward(self, x: Tensor) -> Tensor:
        x = self.to_replay_space(x)
        h = self.hidden(x)
        if self._capture_armed and torch.is_grad_enabled():
            self._captured, self._capture_armed = (x, h), False
        return self.classifier(h)

    def capture_next_forward(self) -> None:
        """Keep the replay-space input and last hidden activations of the next forward pass with gradients."""
        self._capture_armed, self._captured = True, None

    def take_capture(self, n_rows: int) -> tuple[Tensor, Tensor]:
        """(input, hidden) of the captured pass, which must have had ``n_rows`` rows; the capture is cleared."""
        captured, self._captured, self._capture_armed = self._captured, None, False
        if captured is None or len(captured[0]) != n_rows:
            got = "no forward pass with gradients" if captured is None else f"a pass of {len(captured[0])} rows"
            raise RuntimeError(f"BIRModel: expected the strategy's forward pass of {n_rows} rows since "
                               f"capture_next_forward, got {got} (does a plugin replace the strategy's forward?)")
        return captured

    def classify_replay(self, x_replay: Tensor) -> tuple[Tensor, Tensor]:
        """(scores, hidden) for inputs already in replay space.

        Args:
            x_replay: inputs in replay space.
        """
        h = self.hidden(x_replay)
        return self.classifier(h), h

    # -- VAE -----------------------------------------------------------------------------------------------
    def context_gate(self, classes: Optional[Tensor] = None, class_probs: Optional[Tensor] = None) -> Optional[Tensor]:
        """Gate input [batch, n_contexts] from hard classes (one-hot) or probabilities over all classes (soft).

        Args:
            classes: hard class ids [batch].
            class_probs: probabilities over all classes [batch, n_classes], instead of ``classes``.
        """
        if not self.gated:
            return None
        n_contexts = self.decoder.gate_masks()[0].shape[0]
        if classes is not None:
            return F.one_hot(self.class_to_context[classes], n_contexts).float()
        gate = torch.zeros(class_probs.shape[0], n_contexts, device=class_probs.device)
        return gate.index_add_(1, self.class_to_context, class_probs)

    def decode(self, z: Tensor, gate: Optional[Tensor]) -> Tensor:
        """The decoder's output (likelihood parameters, replay shape) for latents ``z``.

        Args:
            z: latents [batch, latent_dim].
            gate: gate input [batch, n_contexts], or None without gates.
        """
        return self.decoder(z, gate).view(-1, *self.replay_shape)

    def encode(self, x: Tensor) -> Posterior:
        """The posterior (the prior's named ``Posterior``) of images or replay-space inputs.

        Args:
            x: images or replay-space inputs.
        """
        return self.head(self.hidden(self.to_replay_space(x)))

    def reconstruct(self, x_replay: Tensor, h: Tensor, gate: Optional[Tensor]) -> tuple[Posterior, Tensor, Tensor]:
        """(posterior, sampled z, per-sample reconstruction loss averaged per unit) from the hidden layer ``h`` of
        the inputs ``x_replay``, the decoder gated by ``gate``."""
        posterior = self.head(h)
        z = self.prior.reparameterize(posterior)
        recon = self.likelihood.nll(self.decode(z, gate), self.data_to_unit(x_replay), "mean")
        return posterior, z, recon

    @torch.no_grad()
    def generate(self, classes: Tensor, conditional: bool = True) -> Tensor:
        """One replay sample per class in ``classes`` (replay space), in one batched call.

        ``conditional``: z from the class's prior mode; otherwise z unconditional and only the gate follows
        the class.

        Args:
            classes: the class of each sample.
            conditional: draw z from the class's prior mode.
        """
        z = self.prior.sample(len(classes), classes if conditional else None)
        return self.unit_to_data(self.likelihood.mean(self.decode(z, self.context_gate(classes))))

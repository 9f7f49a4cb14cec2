"""VAE generators whose latent prior is a constructor argument (the VAE never branches on its kind)."""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import torch
from torch import Tensor, nn

from replay.errors import UserInputError
from replay.generators.likelihoods import likelihood as get_likelihood
from replay.generators.normalization import ModelsData, Normalization
from replay.nets import GatedMLPDecoder, conv_stack, deconv_stack, mlp
from replay.priors.base import LatentPrior, Posterior


class VAEOutput(NamedTuple):
    """One pass of a VAE: the decoder's output (likelihood parameters), the posterior and the sampled latents."""

    output: Tensor
    posterior: Posterior
    z: Tensor


class VAE(ModelsData, nn.Module):
    """x -> encoder -> prior.posterior_head -> posterior -> z -> decoder -> likelihood parameters.

    ``loss_terms`` returns the two per-sample terms of the negative ELBO (Kingma & Welling 2014, eq. 3):
    ``recon = -log p(x|z)`` with the named reduction over units, and ``reg`` = the prior's regulariser
    (KL or its replacement). The caller weighs and reduces them.

    Args:
        encoder: inputs -> ``hidden_features`` features.
        decoder: latents -> likelihood parameters of ``prod(input_shape)`` units.
        prior: the latent prior (gives the posterior head, the regulariser and the samples).
        hidden_features: width of the encoder's output.
        input_shape: shape of one input, without the batch dimension.
        likelihood: ``"bernoulli"`` (pixels in [0, 1]) or ``"gaussian"`` (unit variance).
        normalization: how the inputs were normalised (``Normalization(mean, std)``), or None if they are
            already in the likelihood's space. The encoder reads the inputs as given; the likelihood scores
            the un-normalised pixels and ``generate`` returns normalised samples, like the data.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: LatentPrior, hidden_features: int,
                 input_shape: Sequence[int], likelihood: str = "bernoulli",
                 normalization: Optional[Normalization] = None):
        super().__init__()
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.head = prior.posterior_head(hidden_features)
        self.input_shape = tuple(input_shape)
        self.likelihood = get_likelihood(likelihood)
        self.normalization: Optional[Normalization] = None
        self.use_normalization(normalization)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return self.input_shape

    @property
    def latent_dim(self) -> int:
        return self.prior.latent_dim

    @property
    def n_inputs(self) -> int:
        return math.prod(self.input_shape)

    def check_input(self, x: Tensor, where: str = "VAE") -> None:
        """Raise ``UserInputError`` (one line) when the samples of ``x`` do not have the shape the VAE was built for."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise UserInputError(f"{where}: the data's samples have shape {tuple(x.shape[1:])}, but the generator was "
                                 f"built for {self.input_shape}: build it with the data's shape")

    def check_data(self, x: Tensor, where: str) -> None:
        """The shape (``check_input``), then the likelihood's support (``ModelsData.check_data``)."""
        self.check_input(x, where)
        super().check_data(x, where)

    def encode(self, x: Tensor) -> Posterior:
        """The posterior of inputs (the prior's named ``Posterior``); normalised inputs are un-normalised first: the VAE reads, scores and
        writes pixels in [0, 1], and only its samples are normalised again (``generate``).

        Args:
            x: inputs [batch, *input_shape], normalised like the data.
        """
        return self.head(self.encoder(self.data_to_unit(x)))

    def decode_output(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, *self.input_shape)

    def decode(self, z: Tensor) -> Tensor:
        """Data-space mean for latents z (the likelihood's mean, normalised like the data)."""
        return self.unit_to_data(self.likelihood.mean(self.decode_output(z)))

    def forward(self, x: Tensor) -> VAEOutput:
        posterior = self.encode(x)
        z = self.prior.reparameterize(posterior)
        return VAEOutput(self.decode_output(z), posterior, z)

    def terms_of(self, x: Tensor, out: VAEOutput, labels: Optional[Tensor] = None,
                 probs: Optional[Tensor] = None, reduction: str = "mean") -> dict[str, Tensor]:
        """Per-sample ``recon`` (of the un-normalised ``x``) and ``reg`` of a pass ``out = self(x)``.

        Args:
            x: the inputs of the pass.
            out: the pass ``self(x)``.
            labels: hard labels for class-aware priors.
            probs: class probabilities instead of labels.
            reduction: the likelihood's reduction over units, ``mean`` or ``sum``.
        """
        return {
            "recon": self.likelihood.nll(out.output, self.data_to_unit(x), reduction),
            "reg": self.prior.regularizer(out.posterior, out.z, labels=labels, probs=probs),
        }

    def loss_terms(self, x: Tensor, labels: Optional[Tensor] = None, probs: Optional[Tensor] = None,
                   reduction: str = "mean") -> dict[str, Tensor]:
        """Per-sample ``recon`` and ``reg`` for a batch (labels / probs select the prior's modes if it has any).

        Args:
            x: inputs [batch, *input_shape].
            labels: hard labels for class-aware priors.
            probs: class probabilities instead of labels.
            reduction: ``mean`` (per unit) or ``sum`` (per image).
        """
        self.check_input(x)
        return self.terms_of(x, self(x), labels, probs, reduction)

    @torch.no_grad()
    def generate(self, n: int, classes: Optional[Tensor] = None) -> Tensor:
        """``n`` samples in one batched call: prior.sample -> decode.

        Args:
            n: number of samples.
            classes: one class per sample for conditional priors (None: unconditional).
        """
        return self.decode(self.prior.sample(n, classes))


def _check_arguments(builder: str, input_shape: Sequence[int], prior: LatentPrior) -> tuple[int, ...]:
    """The input shape as a tuple of positive integers; a prior in the wrong place, or a bad shape, refused."""
    if not isinstance(prior, LatentPrior):
        raise UserInputError(f"{builder}(input_shape, prior, ...): the second argument must be a latent prior "
                             f"(replay.priors.build(...)), got {type(prior).__name__}")
    if isinstance(input_shape, (int, str)) or not all(isinstance(n, int) and n >= 1 for n in input_shape):
        raise UserInputError(f"{builder}: input_shape must be a sequence of positive integers such as (1, 28, 28), "
                             f"got {input_shape!r}")
    return tuple(input_shape)


def mlp_vae(input_shape: Sequence[int], prior: LatentPrior, hidden: Sequence[int] = (400, 400), *,
            likelihood: str = "bernoulli", normalization: Optional[Normalization] = None) -> VAE:
    """Fully connected VAE (MNIST: 784-400-400, latent size from the prior); arguments as for ``VAE``.

    Args:
        input_shape: shape of one input, without the batch dimension.
        prior: the latent prior.
        hidden: widths of the encoder's layers (the decoder mirrors them).
        likelihood: ``bernoulli`` or ``gaussian``.
        normalization: how the inputs were normalised, or None.
    """
    input_shape = _check_arguments("mlp_vae", input_shape, prior)
    n_inputs = math.prod(input_shape)
    encoder = nn.Sequential(nn.Flatten(), mlp([n_inputs, *hidden]))
    decoder = GatedMLPDecoder(prior.latent_dim, hidden, n_inputs)
    return VAE(encoder, decoder, prior, hidden[-1], input_shape, likelihood, normalization)


def conv_vae(input_shape: Sequence[int], prior: LatentPrior, hidden: Sequence[int] = (2000, 2000), *,
             likelihood: str = "gaussian", normalization: Optional[Normalization] = None) -> VAE:
    """Pixel-level convolutional VAE for 32x32 images: the CIFAR protocol's conv stack (five stride-2 layers to
    256 x 2 x 2), fully connected layers, mirrored decoder; arguments in ``mlp_vae``'s order, as for ``VAE``.

    Args:
        input_shape: shape of one image, (channels, 32, 32).
        prior: the latent prior.
        hidden: widths of the fully connected layers.
        likelihood: ``gaussian`` or ``bernoulli``.
        normalization: how the images were normalised, or None.
    """
    input_shape = _check_arguments("conv_vae", input_shape, prior)
    if len(input_shape) != 3 or input_shape[1:] != (32, 32):
        raise UserInputError(f"conv_vae models 32x32 images, shape (channels, 32, 32); got {input_shape}: use mlp_vae "
                             "for other shapes")
    channels = input_shape[0]
    encoder = nn.Sequential(conv_stack(channels), nn.Flatten(), mlp([1024, *hidden]))
    decoder = nn.Sequential(
        GatedMLPDecoder(prior.latent_dim, hidden, 1024), nn.ReLU(), nn.Unflatten(1, (256, 2, 2)),
        deconv_stack(channels),
    )
    return VAE(encoder, decoder, prior, hidden[-1], input_shape, likelihood, normalization)

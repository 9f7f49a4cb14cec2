"""Our VAEs, with any prior, as the generator of Avalanche's own generative replay.

Avalanche's ``GenerativeReplay`` strategy (and its ``GenerativeReplayPlugin`` with a ``VAETraining`` generator
strategy) expects a generator whose forward returns ``(x_hat, mean, logvar)``, a ``generate(n)`` method and a
criterion ``criterion(x, forward_output)``. ``AvalancheGenerator`` wraps a ``VAE`` into that shape; its
``criterion`` is the VAE's own negative ELBO (the likelihood and the prior's regulariser, not Avalanche's MSE
plus Gaussian KL), and ``PriorHooks`` gives the prior the classes of each experience and its end-of-experience
hook. ``vae_training`` builds the whole generator strategy:

    from avalanche.training import GenerativeReplay
    from replay.generators import mlp_vae
    from replay.plugins import vae_training
    generator = vae_training(mlp_vae((1, 28, 28), build("gmm", latent_dim=100, n_classes=10)), train_epochs=5)
    strategy = GenerativeReplay(model=solver, optimizer=..., generator_strategy=generator, train_epochs=5)
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from avalanche.core import SupervisedPlugin
from avalanche.training import VAETraining
from avalanche.training.plugins import GenerativeReplayPlugin as AvalancheReplayPlugin

from replay.generators.vae import VAE, VAEOutput
from replay.generators.data_guard import DataGuard
from replay.generators.refit import refit_prior
from replay.optim import adam


class GeneratorOutput(tuple):
    """``(x_hat, mean, logvar)`` as Avalanche's VAE loss unpacks it (logvar None for posteriors that are not
    Gaussian; our ``criterion`` reads neither); ``passes`` keeps the VAE's full output."""

    passes: VAEOutput

    def __new__(cls, x_hat: Tensor, passes: VAEOutput) -> "GeneratorOutput":
        output = super().__new__(cls, (x_hat, passes.posterior.mean, getattr(passes.posterior, "logvar", None)))
        output.passes = passes
        return output


class AvalancheGenerator(nn.Module):
    """A ``VAE`` in the role of Avalanche's ``avalanche.models.Generator``.

    Args:
        vae: the VAE (any prior; its ``normalization`` as for our own plugins).
    ``forward(x)`` returns a ``GeneratorOutput`` (the reconstruction's mean in the data's space, mu, logvar);
    ``generate(n)`` draws ``n`` samples in one batched call; ``criterion(x, output)`` is the batch mean of
    ``recon + reg / n_inputs`` (the loss our ``GenerativeReplayPlugin`` trains its generator with).
    """

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, x: Tensor) -> GeneratorOutput:
        self.vae.check_input(x)
        passes = self.vae(x)
        return GeneratorOutput(self.vae.unit_to_data(self.vae.likelihood.mean(passes.output)), passes)

    @torch.no_grad()
    def generate(self, batch_size: Optional[int] = None, condition: Any = None) -> Tensor:
        return self.vae.generate(batch_size or 1)

    def criterion(self, x: Tensor, output: GeneratorOutput) -> Tensor:
        terms = self.vae.terms_of(x, output.passes)
        return (terms["recon"] + terms["reg"] / self.vae.n_inputs).mean()


class PriorHooks(SupervisedPlugin):
    """Runs the prior's hooks (classes, training steps, end of experience) inside a generator strategy
    (``VAETraining``), and fits the VAE to the experience's data (``DataGuard``: normalisation, range check of the
    first batch)."""

    def __init__(self):
        super().__init__()
        self.data_guard = DataGuard("AvalancheGenerator")

    def before_training_exp(self, strategy, **kwargs):
        vae: VAE = strategy.model.vae
        vae.prior.observe_classes(strategy.experience.classes_in_this_experience)
        self.data_guard.start(vae, [], strategy.experience)

    def before_forward(self, strategy, **kwargs):
        self.data_guard.check(strategy.model.vae, strategy.mb_x)

    def after_training_iteration(self, strategy, **kwargs):
        strategy.model.vae.prior.training_step()

    def after_training_exp(self, strategy, **kwargs):
        vae: VAE = strategy.model.vae
        refit_prior(vae.prior, vae, strategy.experience.dataset, strategy.device)


def vae_training(vae: VAE, lr: float = 1e-3, train_mb_size: int = 128, train_epochs: int = 1,
                 device: str | torch.device = "cpu", replay_size: Optional[int] = None,
                 plugins: Optional[Sequence[SupervisedPlugin]] = None, **template_kwargs: Any) -> VAETraining:
    """Avalanche's ``VAETraining`` generator strategy around ``vae``, ready for ``GenerativeReplay``.

    Args:
        vae: our VAE, with any prior.
        lr: Adam's learning rate for the VAE.
        train_mb_size, train_epochs, device: as for any Avalanche strategy (match the solver's).
        replay_size: replayed samples added to each generator batch (None: as many as the batch).
        plugins: more plugins for the generator strategy.
        template_kwargs: any other ``VAETraining`` argument (e.g. ``evaluator``).
    The strategy's plugins are Avalanche's ``GenerativeReplayPlugin`` (so the generator also trains on its own
    replay, as in Avalanche's default) and ``PriorHooks``.
    """
    generator = AvalancheGenerator(vae)
    return VAETraining(model=generator, optimizer=adam(generator.parameters(), lr=lr), criterion=generator.criterion,
                       train_mb_size=train_mb_size, train_epochs=train_epochs, device=device,
                       plugins=[AvalancheReplayPlugin(replay_size=replay_size), PriorHooks(), *(plugins or [])],
                       **template_kwargs)

"""The priors' end-of-experience refit, for any model that encodes (a VAE, a BI-R model): priors that keep or refit
state (``LatentPrior.wants_latents``) get the encoder's posterior means of the experience's data, plus of replay."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from replay.priors.base import LatentPrior


@torch.no_grad()
def posterior_means(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Posterior means (``model.encode(x).mean``, in eval mode) and labels of a whole dataset, for priors that refit.

    Args:
        model: a VAE or BI-R model (anything with ``encode``).
        dataset: yields ``(x, y, ...)``.
        device: where the model is.
        batch_size: inputs encoded per call.
    """
    was_training = model.training
    model.eval()
    means, labels = [], []
    for x, y, *_ in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
        means.append(model.encode(x.to(device)).mean)
        labels.append(y.to(device))
    model.train(was_training)
    return torch.cat(means), torch.cat(labels)


@torch.no_grad()
def refit_prior(prior: LatentPrior, encoder: nn.Module, dataset: Dataset, device: torch.device,
                draw_replay: Optional[Callable[[int], tuple[Tensor, Tensor]]] = None) -> None:
    """The prior's end-of-experience hook. Priors that refit (``wants_latents``) get the encoder's posterior means
    of the experience's data plus, when there is replay, of as many replayed samples with their labels.

    Args:
        prior: the prior whose ``end_experience`` runs.
        encoder: the model whose ``encode`` gives the latents (the current, not the frozen, one).
        dataset: the experience's data.
        device: where the encoder is.
        draw_replay: ``n -> (replayed inputs, their labels)``, or None before there is replay.
    """
    latents = labels = None
    if prior.wants_latents:
        latents, labels = posterior_means(encoder, dataset, device)
        if draw_replay is not None:
            x, replay_labels = draw_replay(len(labels))
            was_training = encoder.training
            encoder.eval()
            latents = torch.cat([latents, encoder.encode(x).mean])
            labels = torch.cat([labels, replay_labels])
            encoder.train(was_training)
    prior.end_experience(latents, labels)

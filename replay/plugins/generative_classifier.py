"""The generative classifier (van de Ven, Li & Tolias 2021) as an Avalanche plugin: ``ReplayMethodPlugin`` around
``GenerativeClassifierMethod``."""
from __future__ import annotations

from typing import Optional

from replay.methods.generative_classifier import GenerativeClassifierMethod
from replay.plugins.replay import ReplayMethodPlugin


class GenerativeClassifierPlugin(ReplayMethodPlugin):
    """The generative classifier (``GenerativeClassifierMethod``, in ``self.method``) on a strategy whose model is a
    :class:`replay.models.GenerativeClassifier`: each experience trains one VAE per new class on that class's data,
    one step per strategy iteration (``last_losses``: ``recon`` and ``reg``); the model's scores are the classes'
    importance-sampled log-likelihoods, so Avalanche's accuracy metrics read them unchanged. A model without a
    declared ``normalization`` adopts the one the experience's transforms apply.

    Args:
        batch_size: samples per class per iteration (None: the strategy's ``train_mb_size``).
        check_finite_every: stop at the first non-finite loss term or parameter, read on the host every this many
            iterations (``FiniteGuard``; 0 turns it off).
    """

    def __init__(self, batch_size: Optional[int] = None, check_finite_every: int = 50):
        super().__init__(GenerativeClassifierMethod(batch_size), check_finite_every)

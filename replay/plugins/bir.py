"""Brain-inspired replay (van de Ven et al. 2020) as an Avalanche plugin: ``ReplayMethodPlugin`` around
``BrainInspiredReplayMethod``."""
from __future__ import annotations

from typing import Optional

from replay.methods.bir import BrainInspiredReplayMethod
from replay.plugins.replay import ReplayMethodPlugin


class BrainInspiredReplayPlugin(ReplayMethodPlugin):
    """BI-R (``BrainInspiredReplayMethod``, in ``self.method``) on a strategy whose model is a :class:`BIRModel`.

    The model keeps the activations of the strategy's forward pass over current and replayed inputs, and the loss
    becomes the method's weighted total of named terms (the VAE terms reuse those activations). ``last_losses``
    holds each named term of the last iteration (``classification_current``, ``recon_current``, ``reg_current``
    and, with replay, the ``_replay`` ones); ``last_replay_classes`` the frozen model's top class for each replayed
    sample. As for GR, a model without a declared ``normalization`` adopts the one the experience's transforms
    apply, and the first batch of each experience is checked against the likelihood's support.

    Args:
        replay_size: replayed samples per iteration (None: the current batch's size).
        distill: distillation targets (else the frozen model's hard labels).
        temperature: distillation temperature T (> 0).
        conditional: draw z from the replayed class's prior mode (else unconditional, gate by class).
        replay_chunk: iterations of replay drawn per call (``ReplayPool``).
        si_c: the synaptic-intelligence penalty's weight c (0: BI-R alone; ``si`` then joins ``last_losses`` from the
            second experience).
        si_epsilon: the damping epsilon of SI's importances (> 0).
        check_finite_every: stop at the first non-finite loss term or parameter, read on the host every this many
            iterations (``FiniteGuard``; 0 turns it off).
    """

    def __init__(self, replay_size: Optional[int] = None, distill: bool = True, temperature: float = 2.0,
                 conditional: bool = True, replay_chunk: int = 1, si_c: float = 0.0, si_epsilon: float = 0.1,
                 check_finite_every: int = 50):
        super().__init__(BrainInspiredReplayMethod(replay_size, distill, temperature, conditional, replay_chunk,
                                                   si_c, si_epsilon), check_finite_every)

"""Mixed-precision training iterations (bfloat16 autocast) as an Avalanche plugin."""
from __future__ import annotations

from typing import Optional

import torch

from avalanche.training.plugins import SupervisedPlugin

from replay.errors import UserInputError


class MixedPrecision(SupervisedPlugin):
    """Every training iteration under ``torch.autocast(device type, dtype)``, bfloat16 by default.

    The context opens in ``before_training_iteration`` and closes in ``after_training_iteration``, so it
    covers the replay plugins' work too: replay generation, the solver's and the VAE's forward passes and
    losses, and GR's generator update. Matrix products run in bfloat16, while parameters, gradients and
    optimiser states stay float32. The losses are float32 too: autocast computes cross-entropy and BCE in
    float32, the distillation terms upcast their scores (CPU autocast leaves softmax in bfloat16), and the
    priors' terms never leave float32 (``replay.priors.base``). Evaluation runs in float32.

    Closing the context every iteration also drops autocast's cache of casted weights, which would go stale
    after the optimiser step. The plugin must therefore come after every plugin that trains in
    ``after_training_iteration``: GR trains its generator there. Such plugins say so with a true
    ``trains_after_iteration`` attribute, and the order is checked when training starts.
    """

    def __init__(self, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        self.dtype = dtype
        self._context: Optional[torch.autocast] = None

    def before_training_exp(self, strategy, **kwargs):
        later = strategy.plugins[strategy.plugins.index(self) + 1:]
        offending = [type(p).__name__ for p in later if getattr(p, "trains_after_iteration", False)]
        if offending:
            raise UserInputError(f"MixedPrecision must come after {', '.join(offending)} in the plugin list "
                             "(it closes autocast once their after_training_iteration work is done)")

    def before_training_iteration(self, strategy, **kwargs):
        self._context = torch.autocast(strategy.device.type, dtype=self.dtype)
        self._context.__enter__()

    def after_training_iteration(self, strategy, **kwargs):
        self._close()

    def after_training_exp(self, strategy, **kwargs):
        self._close()  # in case an iteration was cut short

    def _close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None

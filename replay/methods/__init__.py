"""The replay methods as objects of their own, apart from the Avalanche wiring (``replay.plugins``): generative
replay and brain-inspired replay, with the lifecycle they share."""
from replay.methods.bir import BrainInspiredReplayMethod
from replay.methods.distillation import distillation_loss
from replay.methods.gr import GenerativeReplayMethod
from replay.methods.lifecycle import (
    ReplayClasses, ReplayLifecycle, ReplayMethod, ReplayPool, frozen_copy, refit_prior, replay_weights,
)

__all__ = ["GenerativeReplayMethod", "BrainInspiredReplayMethod", "ReplayMethod", "ReplayLifecycle", "ReplayClasses", "ReplayPool",
           "distillation_loss", "frozen_copy", "refit_prior", "replay_weights"]

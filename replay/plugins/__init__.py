"""Avalanche plugins: one plugin for every replay method (``ReplayMethodPlugin``; GR's, BI-R's and the generative
classifier's named forms), and the protocol around them (iteration budget, in-memory batches, class-IL output mask,
bf16 mixed precision, the frozen conv features' cache, the finite guard); our VAEs as the generator of Avalanche's own
generative replay."""
from replay.plugins.avalanche_generator import AvalancheGenerator, PriorHooks, vae_training
from replay.plugins.bir import BrainInspiredReplayPlugin
from replay.plugins.features import FeatureCache
from replay.plugins.finite import FiniteGuardPlugin
from replay.plugins.generative_classifier import GenerativeClassifierPlugin
from replay.plugins.gr import GenerativeReplayPlugin
from replay.plugins.precision import MixedPrecision
from replay.plugins.protocol import InMemoryBatches, IterationBudget, SeenUnitsMask
from replay.plugins.replay import ReplayMethodPlugin

__all__ = ["ReplayMethodPlugin", "GenerativeReplayPlugin", "BrainInspiredReplayPlugin", "GenerativeClassifierPlugin",
           "IterationBudget", "SeenUnitsMask",
           "InMemoryBatches", "MixedPrecision", "FeatureCache", "FiniteGuardPlugin", "AvalancheGenerator", "PriorHooks",
           "vae_training"]

"""Avalanche plugins: generative replay, brain-inspired replay, and the protocol around them (iteration budget,
in-memory batches, class-IL output mask, bf16 mixed precision)."""
from replay.plugins.bir import BrainInspiredReplayPlugin
from replay.plugins.features import FeatureCache
from replay.plugins.finite import FiniteGuardPlugin
from replay.plugins.protocol import InMemoryBatches, IterationBudget, SeenUnitsMask
from replay.plugins.gr import GenerativeReplayPlugin
from replay.plugins.precision import MixedPrecision

__all__ = ["GenerativeReplayPlugin", "BrainInspiredReplayPlugin", "IterationBudget", "SeenUnitsMask", "InMemoryBatches",
           "MixedPrecision", "FeatureCache", "FiniteGuardPlugin"]

"""Avalanche plugins: generative replay, brain-inspired replay, iteration budget, class-IL output mask."""
from replay.plugins.bir import BrainInspiredReplayPlugin
from replay.plugins.protocol import InMemoryBatches, IterationBudget, SeenUnitsMask
from replay.plugins.gr import GenerativeReplayPlugin
from replay.plugins.precision import MixedPrecision

__all__ = ["GenerativeReplayPlugin", "BrainInspiredReplayPlugin", "IterationBudget", "SeenUnitsMask", "InMemoryBatches",
           "MixedPrecision"]

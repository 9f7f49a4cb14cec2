"""replay: generative replay (GR, BI-R) with swappable latent priors, as Avalanche plugins."""
from replay.plugins import (
    BrainInspiredReplayPlugin, GenerativeReplayPlugin, InMemoryBatches, IterationBudget, MixedPrecision, SeenUnitsMask,
)
from replay.metrics import ReplayLossMetric, ReplayShareMetric

__version__ = "0.1.0"
__all__ = ["GenerativeReplayPlugin", "BrainInspiredReplayPlugin", "IterationBudget", "SeenUnitsMask", "InMemoryBatches",
           "MixedPrecision", "ReplayLossMetric", "ReplayShareMetric"]

"""replay: generative replay (GR, BI-R) with swappable latent priors, as Avalanche plugins."""
__version__ = "0.1.0"

from replay.plugins import BrainInspiredReplayPlugin, GenerativeReplayPlugin, IterationBudget, SeenUnitsMask

__all__ = ["GenerativeReplayPlugin", "BrainInspiredReplayPlugin", "IterationBudget", "SeenUnitsMask"]

"""replay: generative replay (GR, BI-R) with swappable latent priors, as Avalanche plugins."""
import warnings

# Avalanche imports qpsolvers for its GEM plugin at import time and warns when no QP solver is installed; nothing
# here uses GEM, and the warning would be the first line of every replay-bench command.
warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)

from replay.plugins import (  # noqa: E402
    BrainInspiredReplayPlugin, FeatureCache, FiniteGuardPlugin, GenerativeReplayPlugin, InMemoryBatches, IterationBudget,
    MixedPrecision, SeenUnitsMask,
)
from replay.metrics import ReplayLossMetric, ReplayShareMetric  # noqa: E402

__version__ = "0.1.0"
__all__ = ["GenerativeReplayPlugin", "BrainInspiredReplayPlugin", "IterationBudget", "SeenUnitsMask", "InMemoryBatches",
           "MixedPrecision", "ReplayLossMetric", "ReplayShareMetric", "FeatureCache", "FiniteGuardPlugin"]

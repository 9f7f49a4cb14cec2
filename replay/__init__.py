"""replay: generative replay (GR, BI-R) and the generative classifier with swappable latent priors, as Avalanche plugins.

The plugins and metrics named here load on first use, so that ``import replay.priors`` or ``replay.generators``
(plain torch) does not import Avalanche.
"""
import importlib
import warnings
from typing import Any

# Avalanche imports qpsolvers for its GEM plugin at import time and warns when no QP solver is installed; nothing
# here uses GEM, and the warning would be the first line of every replay-bench command.
warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)

__version__ = "0.1.0"
_EXPORTS = {
    "ReplayMethodPlugin": "replay.plugins", "GenerativeReplayPlugin": "replay.plugins",
    "BrainInspiredReplayPlugin": "replay.plugins", "GenerativeClassifierPlugin": "replay.plugins",
    "GenerativeClassifier": "replay.models", "IterationBudget": "replay.plugins", "SeenUnitsMask": "replay.plugins",
    "InMemoryBatches": "replay.plugins", "MixedPrecision": "replay.plugins", "FeatureCache": "replay.plugins",
    "FiniteGuardPlugin": "replay.plugins", "ReplayLossMetric": "replay.metrics", "ReplayShareMetric": "replay.metrics",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'replay' has no attribute {name!r}")

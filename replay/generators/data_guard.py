"""Fitting a replay method's generative model to the data of each experience, before it trains on it."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable, Optional

from torch import Tensor

from replay.generators.normalization import ModelsData, find_normalization

if TYPE_CHECKING:
    from avalanche.benchmarks import CLExperience

logger = logging.getLogger("replay")


class DataGuard:
    """Fits a replay method's generative model to the data of each experience, before it trains on it.

    ``start`` (in ``before_training_exp``): when the model's likelihood is bounded (Bernoulli) and it was given
    no normalisation, it adopts the one the experience's transforms apply (``find_normalization``), for the
    model and its frozen copies. ``check`` (on the experience's first batch): one host synchronisation that
    raises a one-line ``UserInputError`` if the un-normalised data leaves the likelihood's support.

    Args:
        where: the name its messages give (e.g. the plugin's).
    """

    def __init__(self, where: str):
        self.where = where
        self.pending = False
        self.experience_id = 0

    def start(self, model: ModelsData, copies: Iterable[Optional[ModelsData]], experience: CLExperience) -> None:
        """Before ``experience``: adopt its normalisation for ``model`` and its frozen ``copies`` (None ones skipped)."""
        if model.bounded and model.normalization is None:
            found = find_normalization(experience.dataset)
            if found is not None:
                for target in (model, *copies):
                    if target is not None:
                        target.use_normalization(found)
                logger.info("%s: the data is normalised (%s); the generator models the un-normalised pixels",
                            self.where, found.extra_repr())
        self.pending, self.experience_id = True, experience.current_experience

    def check(self, model: ModelsData, x: Tensor) -> None:
        """On the experience's first batch ``x`` only: raise if ``model``'s likelihood cannot score it."""
        if self.pending:
            self.pending = False
            model.check_data(x, f"{self.where}, experience {self.experience_id}")

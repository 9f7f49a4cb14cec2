"""Ranges of numeric arguments, declared once and checked before any work.

One ``Range`` serves both the config validation of ``replay-bench`` and the constructors of priors and
plugins, so a value is refused with the same one-line ``UserInputError`` wherever it comes from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from replay.errors import UserInputError


@dataclass(frozen=True)
class Range:
    """An interval of allowed numbers, optionally integers only.

    Args:
        low, high: the bounds (None: unbounded on that side).
        low_open, high_open: exclude the bound itself.
        integer: only whole numbers (``int``, never ``bool``).
    """

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            return f"{kind} in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {self.high}"
        return kind

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def check(self, name: str, value: Any) -> None:
        """Raise a one-line ``UserInputError`` unless ``value`` lies in the range."""
        if not self.contains(value):
            raise UserInputError(f"{name} must be {self}, got {value!r}")


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
PROBABILITY = Range(0, 1)
COUNT = Range(1, integer=True)

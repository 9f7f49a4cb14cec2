"""The error a user must fix: raised as early as possible, shown as one line (the rest keep their traceback)."""
from __future__ import annotations


class UserInputError(ValueError):
    """Something the user passed or configured cannot work; the message says what to change."""

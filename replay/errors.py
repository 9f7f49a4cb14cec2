"""The error a user must fix: raised as early as possible, shown as one line (the rest keep their traceback)."""
from __future__ import annotations


class UserInputError(ValueError):
    """Something the user passed or configured cannot work; the message says what to change.

    ``replay-bench`` prints it as one line and exits with code 2; every other exception is a bug and keeps its
    traceback.
    """


class NonFiniteError(UserInputError):
    """Training produced a non-finite loss term or parameter (e.g. a learning rate far too high); the message
    names the term, the experience and the iteration."""

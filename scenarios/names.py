"""The streams a config can name, and the check of a stream's settings before any data is loaded (no Avalanche
import, so that reading a config or ``replay-bench --help`` stays light)."""
from __future__ import annotations

from replay.errors import UserInputError

STREAMS = ("split_mnist", "permuted_mnist", "split_cifar100")


def check_stream(name: str, n_experiences: int, scenario: str = "class") -> None:
    """Refuse, in one line, a stream its builder cannot make (before any data is loaded).

    Args:
        name: one of ``STREAMS``.
        n_experiences: split MNIST: 5 or 10; split CIFAR-100: a divisor of 100; permuted MNIST: 1 to 100.
        scenario: ``class`` (new output units per experience) or, for permuted MNIST only, ``domain``.
    """
    if name not in STREAMS:
        raise UserInputError(f"unknown stream {name!r}; choose one of {', '.join(STREAMS)}")
    allowed = {"split_mnist": (5, 10), "split_cifar100": tuple(n for n in range(1, 101) if 100 % n == 0),
               "permuted_mnist": tuple(range(1, 101))}[name]
    if n_experiences not in allowed:
        shown = "1 to 100" if name == "permuted_mnist" else f"{', '.join(map(str, allowed[:-1]))} or {allowed[-1]}"
        raise UserInputError(f"stream.n_experiences: {name} supports {shown} experiences, not {n_experiences}")
    if scenario not in ("class", "domain") or (scenario == "domain" and name != "permuted_mnist"):
        allowed_scenarios = "'class' or 'domain'" if name == "permuted_mnist" else "'class'"
        raise UserInputError(f"stream.scenario: {name} supports {allowed_scenarios}, not {scenario!r}")

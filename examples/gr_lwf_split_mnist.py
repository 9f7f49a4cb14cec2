"""Generative replay together with Avalanche's own ``LwFPlugin`` (distillation on the current data) on the
stock ``SplitMNIST``: our plugin is one plugin among the user's.

    python examples/gr_lwf_split_mnist.py --data data --iterations 2000
"""
from __future__ import annotations

from typing import Optional, Sequence

from avalanche.training.plugins import LwFPlugin

try:
    from examples import gr_split_mnist
except ImportError:  # run as a script
    import gr_split_mnist


def main(argv: Optional[Sequence[str]] = None) -> gr_split_mnist.FinalAccuracy:
    """Train GR with LwF on the stream (the command line of ``gr_split_mnist``); return its final accuracy."""
    return gr_split_mnist.main(argv, other_plugins=[LwFPlugin(alpha=1.0, temperature=2.0)], name="GR + LwF")


if __name__ == "__main__":
    main()

"""The global random state of a run (torch, CUDA, numpy, Python), saved and restored.

Checkpoints save it so that a resumed run continues the same random stream; measurements that draw random numbers
without being part of training (the untrained model's evaluation, the replay-quality samples, the judge's
initialisation) run inside ``preserved_rng`` so that training's random stream is the same with them or without.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


def rng_state() -> dict:
    """The current random states of torch (CPU and every CUDA device), numpy and Python."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore states saved by ``rng_state``."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without moving the global random streams on."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (every CUDA device's too)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

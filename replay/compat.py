"""Compatibility of Avalanche 0.6's loggers with the current releases of the libraries they drive.

Avalanche 0.6's ``WandBLogger`` calls ``wandb.util.generate_id`` (removed in wandb 0.28) and checks values
against ``wandb.viz.CustomChart`` (removed in wandb 0.18; the class lives in ``wandb.plot``). No wandb release
that has both installs beside the tensorboard that Avalanche pulls in (it needs protobuf < 6, tensorboard 2.21
needs >= 6.31). ``patch_wandb_for_avalanche`` restores the two names, pointing at their current homes, before a
``WandBLogger`` is made; it changes nothing where they exist.
"""
from __future__ import annotations

from types import SimpleNamespace


def patch_wandb_for_avalanche() -> None:
    """Give ``wandb`` the two names Avalanche 0.6's ``WandBLogger`` uses, where a newer wandb lacks them."""
    import wandb
    import wandb.util
    from wandb.plot import CustomChart
    from wandb.sdk.lib.runid import generate_id

    if not hasattr(wandb.util, "generate_id"):
        wandb.util.generate_id = generate_id
    if not hasattr(wandb, "viz"):
        wandb.viz = SimpleNamespace(CustomChart=CustomChart)

"""Each stream's training protocol, in one table: the config defaults it sets and the method constants it fixes.

The protocols follow the BI-R paper's (van de Ven, Siegelmann & Tolias 2020) per-stream settings; docs/protocols.md
describes them. A config key left at ``null`` (``method.gate_prop``, ``method.gate_contexts``,
``method.internal_replay``) means "the stream's protocol": ``Protocol.method_option`` resolves it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Protocol:
    """One stream's protocol.

    Args:
        defaults: config values that differ from the base defaults (nested like a config).
        gate_prop: BI-R's probability that a context gate silences a decoder unit.
        gate_contexts: what a gate belongs to, ``"class"`` or ``"task"`` (permuted MNIST: all classes of a task).
        conv: frozen conv layers come before the fully connected ones (BI-R then replays their features by
            default, and GR's generator is the convolutional VAE).
    """

    defaults: dict[str, Any] = field(default_factory=dict)
    gate_prop: float = 0.8
    gate_contexts: str = "class"
    conv: bool = False

    def method_option(self, config: dict, key: str) -> Any:
        """``config["method"][key]``, or this protocol's value when the config leaves it at ``None``."""
        value = config["method"].get(key)
        return value if value is not None else getattr(self, key)


PROTOCOLS: dict[str, Protocol] = {
    "split_mnist": Protocol(),
    "permuted_mnist": Protocol(
        defaults={"stream": {"n_experiences": 10}, "model": {"hidden": [2000, 2000]}, "optimizer": {"lr": 0.0001},
                  "batch_size": 256},
        gate_contexts="task"),
    "split_cifar100": Protocol(
        defaults={"stream": {"n_experiences": 10},
                  "model": {"hidden": [2000, 2000], "conv_weights": "data/conv_cifar10.pt"},
                  "optimizer": {"lr": 0.0001}, "batch_size": 256, "iterations_per_experience": 5000},
        gate_prop=0.7, conv=True),
}

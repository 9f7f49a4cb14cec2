"""Replay methods as objects of their own, apart from the Avalanche wiring (``replay.plugins.ReplayMethodPlugin``): the
contract (``ReplayMethod``), generative replay, brain-inspired replay (with synaptic intelligence as an option), the
generative classifier (which keeps the contract without replaying), and their registry.

A method's config keys (``method.<key>`` of ``replay-bench``) are its constructor's parameters with defaults, less
its ``structural`` ones: ``method_schema(name)`` reads them, as ``replay.priors.prior_schema`` does for priors.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from replay.errors import UserInputError
from replay.methods.base import Context, JudgeSamples, ReplayMethod
from replay.methods.bir import BrainInspiredReplayMethod
from replay.methods.distillation import distillation_loss
from replay.methods.generative_classifier import GenerativeClassifierMethod
from replay.methods.gr import GenerativeReplayMethod
from replay.methods.lifecycle import ReplayClasses, ReplayLifecycle, ReplayPool, frozen_copy, replay_weights
from replay.schema import Key, constructor_keys, constructor_parameters

METHODS: dict[str, type[ReplayMethod]] = {
    "gr": GenerativeReplayMethod,
    "bir": BrainInspiredReplayMethod,
    "generative_classifier": GenerativeClassifierMethod,
}


def register_method(name: str) -> Callable[[type[ReplayMethod]], type[ReplayMethod]]:
    """Class decorator: register a ``ReplayMethod`` subclass under ``name`` (``method.name`` in a config).

    Args:
        name: the method's name; a registered name is refused.
    """
    def register(cls: type[ReplayMethod]) -> type[ReplayMethod]:
        if name in METHODS and METHODS[name] is not cls:
            raise UserInputError(f"a method named {name!r} is registered already ({METHODS[name].__name__})")
        if not (isinstance(cls, type) and issubclass(cls, ReplayMethod)):
            raise UserInputError(f"method {name!r}: {cls!r} is not a ReplayMethod subclass")
        METHODS[name] = cls
        return cls

    return register


def method_class(name: str) -> type[ReplayMethod]:
    """The class registered as ``name``, or named by its import path ``package.module:ClassName`` (a user's method,
    found wherever the module is importable: in every worker of a sweep too); a one-line error otherwise."""
    if name in METHODS:
        return METHODS[name]
    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise UserInputError(f"method {name!r} cannot be imported ({error})") from None
        if isinstance(cls, type) and issubclass(cls, ReplayMethod):
            return cls
        raise UserInputError(f"method {name!r} is not a replay.methods.ReplayMethod subclass")
    raise UserInputError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}, or name a ReplayMethod "
                         "subclass by its import path (package.module:ClassName)")


def method_parameters(name: str) -> dict[str, Any]:
    """The config keys of the registered method ``name`` with their defaults."""
    cls = method_class(name)
    return constructor_parameters(cls, skip=cls.structural)


def method_schema(name: str) -> dict[str, Key]:
    """The config keys (``replay.schema.Key``) of ``method.<key>`` for the registered method ``name``."""
    cls = method_class(name)
    return constructor_keys(cls, skip=cls.structural)


__all__ = ["ReplayMethod", "Context", "JudgeSamples", "GenerativeReplayMethod", "BrainInspiredReplayMethod",
           "GenerativeClassifierMethod", "METHODS",
           "register_method", "method_class", "method_parameters", "method_schema", "ReplayLifecycle",
           "ReplayClasses", "ReplayPool", "distillation_loss", "frozen_copy", "replay_weights"]

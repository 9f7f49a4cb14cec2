"""Run configurations: defaults, YAML loading, ``--set`` overrides and strict validation.

A config is a nested dict. Every key has a default here (per-stream protocol defaults in ``STREAM_DEFAULTS``),
so a config file holds only what differs. Validation runs before any work and raises ``ConfigError`` with one
line naming the key and what is allowed.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional

import yaml

from replay.priors import PRIORS, prior_parameters

STREAMS = ("split_mnist", "permuted_mnist", "split_cifar100")
METHODS = ("naive", "joint", "gr", "bir")
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "bf16")


class ConfigError(ValueError):
    """A configuration problem, stated in one line."""


# Method options: key -> default. ``None`` defaults accept an int (or stay None).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "naive": {},
    "joint": {},
    "gr": {
        "replay_size": None,            # replayed samples per iteration (None: the training batch size)
        "replay_chunk": 1,              # draw the replay of this many iterations at once (same distribution)
        "targets": "hard",              # hard | soft (distillation)
        "temperature": 2.0,
        "generator_schedule": "alongside",  # alongside | after
        "generator_iterations": None,   # for 'after' (None: iterations_per_experience)
        "generator_hidden": None,       # None: the solver's hidden sizes
    },
    "bir": {
        "replay_size": None,
        "replay_chunk": 1,
        "distill": True,                # soft targets (T^2-scaled) for replayed samples; False: hard labels
        "temperature": 2.0,
        "conditional": True,            # replay a chosen class from its prior mode; False: unconditional z
        "gating": True,                 # context gates in the decoder
        "gate_prop": None,              # None: 0.8 (MNIST) / 0.7 (CIFAR)
        "gate_contexts": None,          # class | task (None: task for permuted MNIST, class otherwise)
        "internal_replay": None,        # replay conv features (None: on for split CIFAR-100)
    },
}

CHOICES = {
    ("method", "targets"): ("hard", "soft"),
    ("method", "generator_schedule"): ("alongside", "after"),
    ("method", "gate_contexts"): ("class", "task"),
    ("stream", "name"): STREAMS,
    ("stream", "scenario"): ("class", "domain"),
    ("method", "name"): METHODS,
    ("prior", "name"): tuple(PRIORS),
    ("device",): DEVICES,
    ("precision",): PRECISIONS,
}

BASE_DEFAULTS: dict[str, Any] = {
    "stream": {"name": "split_mnist", "n_experiences": 5, "scenario": "class", "root": None},
    "method": {"name": "bir"},
    "prior": {"name": "gmm"},
    "model": {"hidden": [400, 400], "latent_dim": 100, "conv_weights": None},
    "optimizer": {"lr": 0.001, "betas": [0.9, 0.999]},
    "iterations_per_experience": 2000,
    "batch_size": 128,
    "eval_batch_size": 1000,
    "seed": 0,
    "device": "cpu",
    "precision": "fp32",            # fp32 | bf16 (training iterations under bfloat16 autocast)
    "progress": True,
}

# The card's protocol per stream (REFERENCE.md section 1); applied before the user's keys.
STREAM_DEFAULTS: dict[str, dict[str, Any]] = {
    "split_mnist": {},
    "permuted_mnist": {
        "stream": {"n_experiences": 10}, "model": {"hidden": [2000, 2000]},
        "optimizer": {"lr": 0.0001}, "batch_size": 256,
    },
    "split_cifar100": {
        "stream": {"n_experiences": 10}, "model": {"hidden": [2000, 2000], "conv_weights": "data/conv_cifar10.pt"},
        "optimizer": {"lr": 0.0001}, "batch_size": 256, "iterations_per_experience": 5000,
    },
}


def deep_update(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], YAML value of c)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    config = copy.deepcopy(config)
    for text in overrides:
        path, value = parse_override(text)
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: {part!r} is not a section")
        node[path[-1]] = value
    return config


def load_yaml(path: Path | str) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def resolve(user: dict, overrides: Optional[list[str]] = None) -> dict:
    """Defaults <- stream protocol <- method / prior defaults <- user config <- overrides; then validate."""
    user = apply_overrides(user, overrides or [])
    stream_name = (user.get("stream") or {}).get("name", BASE_DEFAULTS["stream"]["name"])
    if stream_name not in STREAMS:
        raise ConfigError(f"stream.name: unknown stream {stream_name!r}; allowed: {', '.join(STREAMS)}")
    method_name = (user.get("method") or {}).get("name", BASE_DEFAULTS["method"]["name"])
    if method_name not in METHODS:
        raise ConfigError(f"method.name: unknown method {method_name!r}; allowed: {', '.join(METHODS)}")
    prior_name = (user.get("prior") or {}).get("name", BASE_DEFAULTS["prior"]["name"])
    if prior_name not in PRIORS:
        raise ConfigError(f"prior.name: unknown prior {prior_name!r}; allowed: {', '.join(PRIORS)}")
    if method_name in ("naive", "joint") and user.get("prior", {}) is None:
        user = {k: v for k, v in user.items() if k != "prior"}  # a resolved config, resolved again
    defaults = deep_update(BASE_DEFAULTS, STREAM_DEFAULTS[stream_name])
    defaults["method"] = {"name": method_name, **METHOD_OPTIONS[method_name]}
    defaults["prior"] = {"name": prior_name, **prior_parameters(prior_name)}
    _check_keys(user, defaults, [])
    config = deep_update(defaults, user)
    _check_types(config, defaults, [])
    if method_name in ("naive", "joint"):
        config["prior"] = None
    return config


def _check_keys(user: Any, defaults: Any, path: list[str]) -> None:
    if not isinstance(user, dict):
        return
    if not isinstance(defaults, dict):
        raise ConfigError(f"{'.'.join(path)}: expected a value, got a section")
    for key, value in user.items():
        if key not in defaults:
            where = ".".join(path) or "top level"
            raise ConfigError(f"unknown key {'.'.join(path + [key])!r} ({where}); allowed: {', '.join(defaults)}")
        _check_keys(value, defaults[key], path + [key])


# Declared types of keys whose default is None (None stays allowed).
NULLABLE_TYPES = {
    ("method", "replay_size"): 0, ("method", "generator_iterations"): 0, ("method", "generator_hidden"): [],
    ("method", "gate_prop"): 0.0, ("method", "gate_contexts"): "", ("method", "internal_replay"): False,
    ("model", "conv_weights"): "", ("stream", "root"): "", ("prior", "info_rate"): 0.0,
}


def _type_ok(value: Any, default: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list)
    return isinstance(value, type(default))


def _check_types(config: Any, defaults: Any, path: list[str]) -> None:
    if isinstance(defaults, dict):
        if not isinstance(config, dict):
            raise ConfigError(f"{'.'.join(path)}: expected a section, got {config!r}")
        for key, default in defaults.items():
            _check_types(config[key], default, path + [key])
        return
    key = tuple(path[-2:]) if len(path) > 1 else tuple(path)
    if key in CHOICES and config is not None and config not in CHOICES[key]:
        raise ConfigError(f"{'.'.join(path)}: {config!r} is not allowed; allowed: {', '.join(map(str, CHOICES[key]))}")
    if defaults is None:
        defaults = NULLABLE_TYPES.get(key)
    if config is not None and not _type_ok(config, defaults):
        raise ConfigError(
            f"{'.'.join(path)}: expected {type(defaults).__name__}, got {type(config).__name__} ({config!r})"
        )

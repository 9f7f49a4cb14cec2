"""Run configurations: defaults, YAML loading, ``--set`` overrides and strict validation.

A config is a nested dict. Every key has a default here (per-stream protocol defaults in ``STREAM_DEFAULTS``),
so a config file holds only what differs. Validation runs before any work and raises ``ConfigError`` with one
line naming the key and what is allowed.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Optional

import yaml

from replay.checks import COUNT, POSITIVE, Range
from replay.errors import UserInputError
from replay.priors import PRIORS, check_parameters, prior_parameters
from scenarios.streams import STREAMS, check_stream

METHODS = ("naive", "joint", "gr", "bir")
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "bf16")


class ConfigError(UserInputError):
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
    "model": {"hidden": [400, 400], "latent_dim": 100, "conv_weights": None,
              "feature_cache": True},  # frozen conv features computed once per experience (FeatureCache)
    "optimizer": {"lr": 0.001, "betas": [0.9, 0.999]},
    "iterations_per_experience": 2000,
    "batch_size": 128,
    "eval_batch_size": 1000,
    "seed": 0,
    "device": "cpu",
    "precision": "fp32",            # fp32 | bf16 (training iterations under bfloat16 autocast)
    "progress": True,
    "check_finite_every": 50,       # stop at a non-finite loss or parameter, read every this many iterations (0: off)
    "replay_quality": True,         # GR and BI-R: judge the replay after each experience (ReplayQualityMetric)
    "replay_quality_samples": 100,  # replay samples per class seen so far, for the replay quality
    "loggers": ["text"],            # Avalanche loggers: text (log.txt), csv, tensorboard, wandb (offline), interactive
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


# Allowed values of the numeric keys (prior parameters: the prior's own ``ranges``). Lists: (range of each
# element, required length or None for any non-empty length).
RANGES: dict[tuple[str, ...], Range] = {
    ("stream", "n_experiences"): COUNT,
    ("model", "latent_dim"): COUNT,
    ("optimizer", "lr"): POSITIVE,
    ("iterations_per_experience",): COUNT,
    ("batch_size",): Range(2, integer=True),  # batch statistics (the Bernoulli head's batch-norm, CGM's MMD) need 2
    ("eval_batch_size",): COUNT,
    ("seed",): Range(0, 2**32 - 1, integer=True),
    ("method", "replay_size"): COUNT,
    ("method", "replay_chunk"): COUNT,
    ("method", "temperature"): POSITIVE,
    ("method", "generator_iterations"): COUNT,
    ("method", "gate_prop"): Range(0, 1, high_open=True),
    ("check_finite_every",): Range(0, integer=True),
    ("replay_quality_samples",): Range(6, 10_000, integer=True),
}
LOGGERS = ("text", "csv", "tensorboard", "wandb", "interactive")
LIST_RANGES: dict[tuple[str, ...], tuple[Range, Optional[int]]] = {
    ("model", "hidden"): (COUNT, None),
    ("method", "generator_hidden"): (COUNT, None),
    ("optimizer", "betas"): (Range(0, 1, high_open=True), 2),
}


class _Loader(yaml.SafeLoader):
    """YAML with the numbers of YAML 1.2: ``1e-4`` is a float (PyYAML's YAML 1.1 reads it as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


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
    try:
        return key.strip().split("."), read_yaml(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {text}: the value is not valid YAML ({' '.join(str(error).split())})") from None


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    config = copy.deepcopy(config)
    for text in overrides:
        path, value = parse_override(text)
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: {part!r} is not a section")
        if not path[-1]:
            raise ConfigError(f"--set {text}: empty key")
        node[path[-1]] = value
    return config


def load_yaml(path: Path | str) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file")
    try:
        data = read_yaml(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} is not valid YAML ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def resolve(user: dict, overrides: Optional[list[str]] = None) -> dict:
    """Defaults <- stream protocol <- method / prior defaults <- user config <- overrides; then validate."""
    user = apply_overrides(user, overrides or [])
    stream_name = _chosen_name(user, "stream", STREAMS)
    method_name = _chosen_name(user, "method", METHODS)
    prior_name = _chosen_name(user, "prior", tuple(PRIORS))
    if method_name in ("naive", "joint") and user.get("prior", {}) is None:
        user = {k: v for k, v in user.items() if k != "prior"}  # a resolved config, resolved again
    defaults = deep_update(BASE_DEFAULTS, STREAM_DEFAULTS[stream_name])
    defaults["method"] = {"name": method_name, **METHOD_OPTIONS[method_name]}
    defaults["prior"] = {"name": prior_name, **prior_parameters(prior_name)}
    _check_keys(user, defaults, [])
    config = deep_update(defaults, user)
    _check_types(config, defaults, [])
    _check_ranges(config)
    check_stream(stream_name, config["stream"]["n_experiences"], config["stream"]["scenario"])
    unknown = [name for name in config["loggers"] if name not in LOGGERS]
    if unknown or len(set(config["loggers"])) != len(config["loggers"]):
        raise ConfigError(f"loggers: {unknown[0] if unknown else 'a repeated logger'!r} is not allowed; allowed: "
                          f"{', '.join(LOGGERS)}, each at most once")
    if method_name in ("naive", "joint"):
        config["prior"] = None
    return config


def _chosen_name(user: dict, section: str, allowed: tuple[str, ...]) -> str:
    """The ``name`` of a section (stream, method, prior), its default when absent; refused if unknown."""
    values = user.get(section)
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{section}: expected a section, got {values!r}")
    name = (values or {}).get("name", BASE_DEFAULTS[section]["name"])
    if not isinstance(name, str) or name not in allowed:
        raise ConfigError(f"{section}.name: unknown {section} {name!r}; allowed: {', '.join(allowed)}")
    return name


def _check_ranges(config: dict) -> None:
    """Every numeric key within its range (``RANGES``, ``LIST_RANGES``, the prior's ``ranges``), one line each."""
    for path, allowed in RANGES.items():
        section, key = (config, path[0]) if len(path) == 1 else (config[path[0]], path[1])
        if section.get(key) is not None:
            allowed.check(".".join(path), section[key])
    for (section, key), (allowed, length) in LIST_RANGES.items():
        values = config[section].get(key)
        if values is None:
            continue
        if (length is None and not values) or (length is not None and len(values) != length):
            count = f"{length} values" if length else "at least one value"
            raise ConfigError(f"{section}.{key}: expected {count}, got {values!r}")
        for index, value in enumerate(values):
            allowed.check(f"{section}.{key}[{index}]", value)
    if config["prior"] is not None:
        check_parameters(config["prior"]["name"], {k: v for k, v in config["prior"].items() if k != "name"})


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
    if config is None and defaults is not None:
        raise ConfigError(f"{'.'.join(path)}: a value is needed (default {defaults!r}); null is not allowed")
    if defaults is None:
        defaults = NULLABLE_TYPES.get(key)
    if config is not None and not _type_ok(config, defaults):
        raise ConfigError(
            f"{'.'.join(path)}: expected {type(defaults).__name__}, got {type(config).__name__} ({config!r})"
        )


def default_run_name(config: dict) -> str:
    """``<stream>/<method>[_<prior>]/seed<N>``: where a run goes without ``--out``."""
    prior = f"_{config['prior']['name']}" if config["prior"] else ""
    return f"{config['stream']['name']}/{config['method']['name']}{prior}/seed{config['seed']}"

"""Run configurations: defaults, YAML loading, ``--set`` overrides and strict validation.

A config is a nested dict. Every key is declared once, with its default, type and allowed values: ``SCHEMA`` for the
run's own keys, the method's constructor and its model builder's for ``method.<key>`` (``replay.methods``,
``replay.bench.builders``), the prior's constructor for ``prior.<key>``; a stream's protocol overrides some defaults
(``replay.bench.protocols``), so a config file holds only what differs. Validation runs before any work and raises
``ConfigError`` with one line naming the key and what is allowed.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Optional

import yaml

from replay.bench.builders import builder_class
from replay.bench.protocols import PROTOCOLS
from replay.checks import COUNT, POSITIVE, Range
from replay.errors import UserInputError
from replay.methods import METHODS as REPLAY_METHODS, method_class, method_schema
from replay.priors import PRIORS, prior_schema
from replay.schema import Key, constructor_keys
from scenarios.names import STREAMS, check_stream

#: methods without replay: fine-tuning (the lower bound) and training on all data so far (the upper bound)
BASELINES = ("naive", "joint")
LOGGERS = ("text", "csv", "tensorboard", "wandb", "interactive")


class ConfigError(UserInputError):
    """A configuration problem, stated in one line."""


# The keys of every run, with their base defaults (a stream's protocol overrides some: replay.bench.protocols).
SCHEMA: dict[str, Any] = {
    "stream": {"name": Key("split_mnist", str, STREAMS), "n_experiences": Key(5, int, range=COUNT),
               "scenario": Key("class", str, ("class", "domain")), "root": Key(None, str, nullable=True)},
    "model": {"hidden": Key([400, 400], list, range=COUNT), "latent_dim": Key(100, int, range=COUNT),
              "conv_weights": Key(None, str, nullable=True),
              "feature_cache": Key(True, bool)},  # frozen conv features computed once per experience (FeatureCache)
    "optimizer": {"lr": Key(0.001, float, range=POSITIVE),
                  "betas": Key([0.9, 0.999], list, range=Range(0, 1, high_open=True), length=2)},
    "iterations_per_experience": Key(2000, int, range=COUNT),
    # batch statistics (the Bernoulli head's batch-norm, CGM's MMD) need two samples
    "batch_size": Key(128, int, range=Range(2, integer=True)),
    "eval_batch_size": Key(1000, int, range=COUNT),
    "seed": Key(0, int, range=Range(0, 2**32 - 1, integer=True)),
    "device": Key("cpu", str, ("cpu", "cuda")),
    "precision": Key("fp32", str, ("fp32", "bf16")),  # bf16: training iterations under bfloat16 autocast
    "progress": Key(True, bool),
    # stop at a non-finite loss or parameter, read every this many iterations (0: off)
    "check_finite_every": Key(50, int, range=Range(0, integer=True)),
    "replay_quality": Key(True, bool),  # GR and BI-R: judge the replay after each experience (ReplayQualityMetric)
    "replay_quality_samples": Key(100, int, range=Range(6, 10_000, integer=True)),  # samples per class seen so far
    "loggers": Key(["text"], list, LOGGERS),  # Avalanche loggers: text (log.txt), csv, tensorboard, wandb, interactive
    # what a finished run keeps: the last checkpoint, none, or every experience's (checkpoint.expNNN.pt)
    "checkpoints": Key("last", str, ("last", "none", "all")),
}

def method_names() -> tuple[str, ...]:
    """Every method a config may name: the baselines, then the registered replay methods."""
    return (*BASELINES, *REPLAY_METHODS)


def uses_prior(method: str) -> bool:
    """Whether the method's model or generator takes the config's prior."""
    return method not in BASELINES and builder_class(method).uses_prior


def method_keys(method: str) -> dict[str, Key]:
    """The keys of ``method.<key>``: the method's constructor's, then its model builder's (none for baselines)."""
    if method in BASELINES:
        return {}
    return {**method_schema(method), **constructor_keys(builder_class(method))}


def defaults_of(schema: Any) -> Any:
    """The default values of a schema (nested dicts of ``Key``)."""
    if isinstance(schema, Key):
        return copy.deepcopy(schema.default)
    return {key: defaults_of(value) for key, value in schema.items()}


BASE_DEFAULTS: dict[str, Any] = {**defaults_of(SCHEMA), "method": {"name": "bir"}, "prior": {"name": "gmm"}}


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
    """Defaults <- stream protocol <- method / prior defaults <- user config <- overrides; then validate.

    Args:
        user: the config as written (nested dict; ``{}`` for all defaults).
        overrides: ``--set`` strings, ``"dotted.key=YAML value"``.
    """
    user = apply_overrides(user, overrides or [])
    stream_name = _chosen_name(user, "stream", STREAMS)
    method_name = _chosen_method(user)
    prior_name = _chosen_name(user, "prior", tuple(PRIORS))
    if not uses_prior(method_name) and user.get("prior", {}) is None:
        user = {k: v for k, v in user.items() if k != "prior"}  # a resolved config, resolved again
    schema = {"stream": SCHEMA["stream"],
              "method": {"name": Key(method_name, str), **method_keys(method_name)},
              "prior": {"name": Key(prior_name, str, tuple(PRIORS)), **prior_schema(prior_name)}, **SCHEMA}
    defaults = deep_update(defaults_of(schema), PROTOCOLS[stream_name].defaults)
    _check_keys(user, defaults, [])
    config = deep_update(defaults, user)
    _check_values(config, schema, [])
    check_stream(stream_name, config["stream"]["n_experiences"], config["stream"]["scenario"])
    if len(set(config["loggers"])) != len(config["loggers"]):
        raise ConfigError(f"loggers: a logger is repeated; allowed: {', '.join(LOGGERS)}, each at most once")
    if not uses_prior(method_name):
        config["prior"] = None
    return config


def saved_config(record: dict) -> dict:
    """The config of a checkpoint or result (``record["config"]``), resolved again: keys added to the defaults since
    it was written get their default values, so older records compare equal to the same run today."""
    return resolve(record["config"])


def _chosen_name(user: dict, section: str, allowed: tuple[str, ...]) -> str:
    """The ``name`` of a section (stream, method, prior), its default when absent; refused if unknown."""
    values = user.get(section)
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{section}: expected a section, got {values!r}")
    name = (values or {}).get("name", BASE_DEFAULTS[section]["name"])
    if not isinstance(name, str) or name not in allowed:
        raise ConfigError(f"{section}.name: unknown {section} {name!r}; allowed: {', '.join(allowed)}")
    return name


def _chosen_method(user: dict) -> str:
    """The method's name: a baseline, a registered method or a method's import path (checked by importing it)."""
    values = user.get("method")
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"method: expected a section, got {values!r}")
    name = (values or {}).get("name", BASE_DEFAULTS["method"]["name"])
    if isinstance(name, str) and ":" in name:
        try:
            method_class(name)
        except UserInputError as error:
            raise ConfigError(f"method.name: {error}") from None
        return name
    return _chosen_name(user, "method", method_names())


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


def _type_ok(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_values(config: Any, schema: Any, path: list[str]) -> None:
    """Every value of ``config`` against its ``Key``: type, null, choices, range (of each element for lists)."""
    name = ".".join(path)
    if isinstance(schema, dict):
        if not isinstance(config, dict):
            raise ConfigError(f"{name}: expected a section, got {config!r}")
        for key, sub in schema.items():
            _check_values(config[key], sub, path + [key])
        return
    key: Key = schema
    if config is None:
        if key.nullable:
            return
        raise ConfigError(f"{name}: a value is needed (default {key.default!r}); null is not allowed")
    if key.kind is not list and key.choices and config not in key.choices:
        raise ConfigError(f"{name}: {config!r} is not allowed; allowed: {', '.join(map(str, key.choices))}")
    if not _type_ok(config, key.kind):
        raise ConfigError(f"{name}: expected {key.kind.__name__}, got {type(config).__name__} ({config!r})")
    if key.kind is list:
        if (key.length is None and not config) or (key.length is not None and len(config) != key.length):
            count = f"{key.length} values" if key.length else "at least one value"
            raise ConfigError(f"{name}: expected {count}, got {config!r}")
        for index, value in enumerate(config):
            if key.choices and value not in key.choices:
                raise ConfigError(f"{name}: {value!r} is not allowed; allowed: {', '.join(map(str, key.choices))}")
            if key.range is not None:
                key.range.check(f"{name}[{index}]", value)
    elif key.range is not None:
        key.range.check(name, config)


def default_run_name(config: dict) -> str:
    """``<stream>/<method>[_<prior>]/seed<N>``: where a run goes without ``--out``."""
    prior = f"_{config['prior']['name']}" if config["prior"] else ""
    return f"{config['stream']['name']}/{config['method']['name']}{prior}/seed{config['seed']}"

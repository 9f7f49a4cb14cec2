"""Sweep files: base configs, a grid of overrides by dotted key, an optional search, and the resources of a trial.

A sweep file is YAML::

    out: runs/sweeps/priors            # where the runs go (one folder per config, one sub-folder per seed)
    configs:                           # base configs: a path, or {config: path, set: {...}, grid: {...}}
      - configs/split_mnist/gr_gaussian.yaml
      - {config: configs/split_mnist/gr_binarized_gaussian.yaml, set: {prior.r: 0.1}}
    set: {iterations_per_experience: 500}   # overrides of every trial
    grid: {seed: [0, 1, 2]}            # every combination, for every base config (an entry's grid adds to it)
    resources: {cpus: 1, threads: 1, gpus: 0}   # per trial; gpus may be a fraction (several runs share a GPU)
    max_failures: 3                    # retries of a trial whose worker or node is lost
    search:                            # optional: Tune's search instead of (or besides) the grid
      algorithm: random                # random | optuna
      samples: 20
      seed: 0
      space: {optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}, prior.r: {uniform: [0.0, 0.05]}}
    scheduler: {name: asha, grace_period: 1, reduction_factor: 2}   # optional, on the per-experience metric
    metric: average_accuracy           # what search and scheduler optimise (mode: max)

Every trial is an ordinary ``replay-bench run`` of its resolved config, in ``<out>/<stream>/<stem>-<hash>/seed<N>``:
the stem names the method, the prior and the keys that differ from their defaults; the hash is of the resolved
config without its seed, so every seed of a config shares a folder (``replay-bench paired`` reads it) and the same
config lands in the same folder from any sweep. Everything is checked before anything starts.
"""
from __future__ import annotations

import copy
import glob
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from replay.bench.config import ConfigError, apply_overrides, load_yaml, resolve, saved_config
from replay.checks import COUNT, NON_NEGATIVE, Range
from replay.errors import UserInputError
from scenarios.data import default_root

SWEEP_KEYS = ("out", "configs", "set", "grid", "resources", "max_failures", "search", "scheduler", "metric")
ENTRY_KEYS = ("config", "set", "grid")
RESOURCE_KEYS = {"cpus": COUNT, "threads": COUNT, "gpus": NON_NEGATIVE}
SEARCH_ALGORITHMS = ("random", "optuna")
DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint")
SCHEDULERS = ("asha",)
METRICS = ("average_accuracy",)
#: config keys that change where a run reads its data or how it reports, not what it computes: left out of the
#: folder's name and hash (with the seed, which names the sub-folder)
PRESENTATION_KEYS = (("progress",), ("loggers",), ("checkpoints",), ("stream", "root"), ("seed",))


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its resolved config, its folder, and the overrides that made it (for display)."""

    config: dict
    folder: Path
    overrides: tuple[str, ...]


@dataclass
class Sweep:
    """A validated sweep file.

    Args:
        out: the root of the runs' folders.
        trials: the grid's trials (for a search: the base trials its samples start from).
        resources: ``cpus``, ``threads`` and ``gpus`` of one trial.
        max_failures: retries of a trial whose worker or node is lost.
        search: the search section (``algorithm``, ``samples``, ``seed``, ``space``), or None for a grid.
        scheduler: the scheduler section, or None.
        metric: the per-experience measure search and scheduler maximise.
        rejected: (overrides, one-line error) of grid points whose config is invalid.
    """

    out: Path
    trials: list[Trial]
    resources: dict[str, float]
    max_failures: int = 3
    search: Optional[dict] = None
    scheduler: Optional[dict] = None
    metric: str = "average_accuracy"
    rejected: list[tuple[tuple[str, ...], str]] = field(default_factory=list)


def science(config: dict) -> dict:
    """The resolved config without ``PRESENTATION_KEYS``: what decides a run's results, besides its seed."""
    kept = copy.deepcopy(config)
    for path in PRESENTATION_KEYS:
        node = kept
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return kept


def config_hash(config: dict) -> str:
    """Eight hex digits of the SHA-1 of ``science(config)``."""
    return hashlib.sha1(json.dumps(science(config), sort_keys=True).encode()).hexdigest()[:8]


def differing_keys(config: dict) -> list[str]:
    """``key=value`` for every key of ``science(config)`` that differs from its default (the stream's protocol, the
    method's and the prior's defaults), in a fixed order."""
    method, prior = config["method"]["name"], config["prior"]["name"] if config["prior"] else None
    user = {"stream": {"name": config["stream"]["name"]}, "method": {"name": method}}
    if prior:
        user["prior"] = {"name": prior}
    default = resolve(user)
    shown = []

    def walk(node: Any, base: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for key in sorted(node):
                walk(node[key], base.get(key) if isinstance(base, dict) else None, path + [key])
        elif node != base and path[-1] != "name":
            value = ",".join(map(str, node)) if isinstance(node, list) else node
            shown.append(f"{'.'.join(path)}={value}")

    walk(science(config), science(default), [])
    return shown


def run_folder(out: Path, config: dict) -> Path:
    """``<out>/<stream>/<method>[_<prior>][_<key=value>...]-<hash>/seed<N>`` for a resolved config."""
    stem = config["method"]["name"] + (f"_{config['prior']['name']}" if config["prior"] else "")
    stem = "_".join([stem, *differing_keys(config)]).replace("/", "-")
    return out / config["stream"]["name"] / f"{stem}-{config_hash(config)}" / f"seed{config['seed']}"


def existing_run_folder(out: Path, config: dict) -> Path:
    """``run_folder``, or, where that does not exist, a folder of the same name and seed under another hash whose run
    has the same config once resolved again (``saved_config``, its data root made absolute): a run made before keys
    were added to the defaults, which changes the hash but not the run. So ``sweep --resume`` after an upgrade finds
    the runs made before it."""
    from replay.bench.rundir import CHECKPOINT, RESULT, read_checkpoint  # torch: only when a folder is missing
    from replay.bench.results import read_result

    folder = run_folder(out, config)
    if folder.exists():
        return folder
    stem = folder.parent.name.rsplit("-", 1)[0]
    for sibling in sorted(folder.parent.parent.glob(f"{glob.escape(stem)}-*/{folder.name}")):
        try:
            record = read_result(sibling / RESULT) if (sibling / RESULT).exists() else read_checkpoint(sibling / CHECKPOINT)
        except (UserInputError, FileNotFoundError):
            continue
        saved = saved_config(record)
        saved["stream"]["root"] = str(Path(saved["stream"]["root"] or default_root()).resolve())  # as load_sweep does
        if saved == config:
            return sibling
    return folder


def _check_section(value: Any, name: str, allowed: tuple[str, ...]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a mapping, got {value!r}")
    unknown = [key for key in value if key not in allowed]
    if unknown:
        raise ConfigError(f"{name}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    return value


def _check_grid(grid: Any, where: str) -> dict[str, list]:
    grid = grid or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{where}: expected a mapping of dotted keys to lists of values, got {grid!r}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.{key}: expected a non-empty list of values, got {values!r}")
    return grid


def as_overrides(mapping: dict) -> list[str]:
    """``--set``-style ``key=value`` strings of dotted keys (values as JSON, which YAML reads back unchanged)."""
    return [f"{key}={json.dumps(value)}" for key, value in mapping.items()]


def _check_resources(resources: Any) -> dict[str, float]:
    resources = {"cpus": 1, "threads": 1, "gpus": 0, **_check_section(resources, "resources", tuple(RESOURCE_KEYS))}
    for key, allowed in RESOURCE_KEYS.items():
        allowed.check(f"resources.{key}", resources[key])
    return resources


def _check_search(search: Any) -> Optional[dict]:
    if search is None:
        return None
    search = _check_section(search, "search", ("algorithm", "samples", "seed", "space"))
    search = {"algorithm": "random", "samples": 10, "seed": 0, **search}
    if search["algorithm"] not in SEARCH_ALGORITHMS:
        raise ConfigError(f"search.algorithm: {search['algorithm']!r} is not allowed; allowed: {', '.join(SEARCH_ALGORITHMS)}")
    COUNT.check("search.samples", search["samples"])
    Range(0, integer=True).check("search.seed", search["seed"])
    space = search.get("space")
    if not isinstance(space, dict) or not space:
        raise ConfigError("search.space: expected a mapping of dotted keys to {distribution: arguments}")
    for key, spec in space.items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
            raise ConfigError(f"search.space.{key}: expected one of {', '.join(DISTRIBUTIONS)} with its arguments, "
                              f"e.g. {{uniform: [0.0, 1.0]}}; got {spec!r}")
        kind, arguments = next(iter(spec.items()))
        if not isinstance(arguments, list) or not arguments or (kind != "choice" and len(arguments) != 2):
            raise ConfigError(f"search.space.{key}.{kind}: expected a list of "
                              f"{'values' if kind == 'choice' else 'two bounds'}, got {arguments!r}")
    return search


def _check_scheduler(scheduler: Any) -> Optional[dict]:
    if scheduler is None:
        return None
    scheduler = _check_section(scheduler, "scheduler", ("name", "grace_period", "reduction_factor"))
    scheduler = {"name": "asha", "grace_period": 1, "reduction_factor": 2, **scheduler}
    if scheduler["name"] not in SCHEDULERS:
        raise ConfigError(f"scheduler.name: {scheduler['name']!r} is not allowed; allowed: {', '.join(SCHEDULERS)}")
    COUNT.check("scheduler.grace_period", scheduler["grace_period"])
    Range(2, integer=True).check("scheduler.reduction_factor", scheduler["reduction_factor"])
    return scheduler


def _entries(configs: Any, base_dir: Path) -> list[tuple[dict, dict, dict]]:
    """(user config, its overrides, its grid) of every base config entry."""
    if not isinstance(configs, list) or not configs:
        raise ConfigError("configs: expected a non-empty list of config files (or {config: path, set: ..., grid: ...})")
    entries = []
    for index, entry in enumerate(configs):
        if isinstance(entry, str):
            entry = {"config": entry}
        entry = _check_section(entry, f"configs[{index}]", ENTRY_KEYS)
        if "config" not in entry:
            raise ConfigError(f"configs[{index}]: needs a 'config' path")
        path = Path(entry["config"])
        if not path.is_absolute() and not path.exists() and (base_dir / path).exists():
            path = base_dir / path
        entries.append((load_yaml(path), _check_section(entry.get("set"), f"configs[{index}].set", tuple(entry.get("set") or ())),
                        _check_grid(entry.get("grid"), f"configs[{index}].grid")))
    return entries


def load_sweep(path: Path | str, out: Optional[Path | str] = None) -> Sweep:
    """Read and validate a sweep file; resolve every grid point's config (invalid ones go to ``rejected``).

    Args:
        path: the sweep file.
        out: the runs' root, instead of the file's ``out`` (default ``runs/sweeps/<file stem>``).
    """
    path = Path(path)
    data = _check_section(load_yaml(path), str(path), SWEEP_KEYS)
    shared_set = _check_section(data.get("set"), "set", tuple(data.get("set") or ()))
    shared_grid = _check_grid(data.get("grid"), "grid")
    max_failures = data.get("max_failures", 3)
    Range(0, integer=True).check("max_failures", max_failures)
    metric = data.get("metric", "average_accuracy")
    if metric not in METRICS:
        raise ConfigError(f"metric: {metric!r} is not allowed; allowed: {', '.join(METRICS)}")
    # absolute: a Ray worker does not run where the sweep started (Tune moves it into a folder of its own)
    root = Path(out or data.get("out") or Path("runs") / "sweeps" / path.stem).resolve()
    sweep = Sweep(root, [], _check_resources(data.get("resources")), max_failures, _check_search(data.get("search")),
                  _check_scheduler(data.get("scheduler")), metric)
    seen: set[Path] = set()
    for user, entry_set, entry_grid in _entries(data.get("configs"), path.parent):
        grid = {**shared_grid, **entry_grid}
        keys = list(grid)
        for values in itertools.product(*(grid[key] for key in keys)):
            overrides = tuple(as_overrides({**shared_set, **entry_set}) + as_overrides(dict(zip(keys, values))))
            try:
                config = resolve(user, list(overrides))
            except UserInputError as error:
                sweep.rejected.append((overrides, " ".join(str(error).split())))
                continue
            config["stream"]["root"] = str(Path(config["stream"]["root"] or default_root()).resolve())
            folder = existing_run_folder(root, config)
            if folder not in seen:
                seen.add(folder)
                sweep.trials.append(Trial(config, folder, overrides))
    if sweep.search is not None:
        for trial in sweep.trials:  # every sampled point must be a valid config of every base trial
            for key, spec in sweep.search["space"].items():
                kind, arguments = next(iter(spec.items()))
                for value in (arguments if kind == "choice" else arguments[:2]):
                    resolve(apply_overrides(trial.config, as_overrides({key: value})))
    if not sweep.trials:
        raise ConfigError(f"{path}: no valid trial ({len(sweep.rejected)} rejected; first: {sweep.rejected[0][1]})"
                          if sweep.rejected else f"{path}: the sweep has no trial")
    return sweep

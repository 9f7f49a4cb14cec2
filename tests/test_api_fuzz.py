"""A fuzz of the Python API a script calls directly: random (but typed) constructor arguments of the priors, the
VAEs, ``BIRModel`` and both replay plugins, random input shapes, class counts, batch sizes and devices, each case
trained inside Avalanche's ``Naive`` for two experiences. Every case must end in success or in a ``UserInputError``
raised before any optimiser step of the experience it stops; any other exception is a failure, reported with the
case's seed and arguments. Derandomized: case ``i`` is drawn from ``random.Random(i)``.
"""
from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import torch

from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import SupervisedPlugin

from replay import BrainInspiredReplayPlugin, GenerativeReplayPlugin, IterationBudget
from replay.errors import UserInputError
from replay.generators import mlp_vae
from replay.methods import method_schema
from replay.models import BIRModel
from replay.priors import PRIORS, build, prior_schema
from replay.schema import Key
from scenarios.streams import class_incremental_benchmark
from tests.helpers import blobs

CASES = 1000
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def typed_value(rng: random.Random, key: Key) -> Any:
    """A value of the key's type: mostly allowed, sometimes out of its range, outside its choices or null."""
    roll = rng.random()
    if key.kind is bool:
        return rng.random() < 0.5
    if key.kind is str:
        return rng.choice(key.choices) if key.choices and roll < 0.95 else "nonsense"
    if key.nullable and roll < 0.2:
        return None
    low = key.range.low if key.range is not None and key.range.low is not None else 0
    if key.kind is int:
        return rng.randint(int(low), int(low) + 4) if roll < 0.95 else int(low) - rng.randint(1, 3)
    if roll < 0.95:
        return float(low) + rng.choice([1e-3, 0.01, 0.1, 0.5, 1.0, 3.0])
    return rng.choice([float(low) - 1.0, float("nan"), float("inf")])


def declared_arguments(rng: random.Random, schema: dict[str, Key]) -> dict[str, Any]:
    return {name: typed_value(rng, key) for name, key in schema.items() if rng.random() < 0.3}


class Updates(SupervisedPlugin):
    """Counts the optimiser steps of the experience that trains."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def before_training_exp(self, strategy, **kwargs):
        self.count = 0

    def after_update(self, strategy, **kwargs):
        self.count += 1


STREAMS: dict[tuple, Any] = {}


def stream(dim: int, n_classes: int, image: bool):
    """Two experiences of ``n_classes`` blobs in [0, 1], as vectors [dim] or images [1, 2, dim // 2] (cached)."""
    key = (dim, n_classes, image)
    if key not in STREAMS:
        (x, y), (tx, ty) = blobs(n_classes, 6, dim, seed=dim + n_classes, n_test=2)
        if image:
            x, tx = x.view(len(x), 1, 2, dim // 2), tx.view(len(tx), 1, 2, dim // 2)
        STREAMS[key] = class_incremental_benchmark((x, y), (tx, ty), 2, list(range(n_classes)), name="fuzz")
    return STREAMS[key]


def draw_case(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    dim, image = rng.choice([4, 6, 8]), rng.random() < 0.3
    shape = (1, 2, dim // 2) if image else (dim,)
    prior = rng.choice(list(PRIORS)) if rng.random() < 0.97 else "no_such_prior"
    case = {
        "method": rng.choice(["gr", "bir"]), "dim": dim, "image": image, "n_classes": rng.choice([2, 4, 6]),
        "batch": rng.choice([1, 2, 3, 5, 16]), "device": rng.choice(DEVICES),
        "prior": prior, "latent_dim": rng.choice([0, 1, 2, 3, 5]) if rng.random() < 0.1 else rng.choice([2, 3, 5]),
        "prior_classes": rng.choice([None, 0, 2, 4]) if rng.random() < 0.2 else 6,
        "prior_args": declared_arguments(rng, prior_schema(prior)) if prior in PRIORS else {},
        "model_shape": shape if rng.random() < 0.9 else (dim + 1,),
        "model_classes": rng.choice([2, 4]) if rng.random() < 0.2 else 6, "hidden": rng.choice([(8,), (6, 4), (3,)]),
        "likelihood": rng.choice(["bernoulli", "gaussian"]) if rng.random() < 0.97 else "poisson",
        "gate_prop": rng.choice([0.0, 0.5, 0.8]) if rng.random() < 0.95 else rng.choice([1.0, -0.1]),
        "check_finite_every": rng.choice([0, 1, 50]) if rng.random() < 0.97 else -1,
        "lr": rng.choice([1e-3, 1e-2]) if rng.random() < 0.97 else 0.0,
        "betas": (0.9, 0.999) if rng.random() < 0.97 else (0.9, 1.0),
    }
    case["plugin_args"] = declared_arguments(rng, method_schema(case["method"]))
    return case


def build_case(case: dict[str, Any]):
    """(model, plugin) of a case; a UserInputError here is a refusal at construction."""
    prior = build(case["prior"], case["latent_dim"], case["prior_classes"], **case["prior_args"])
    if case["method"] == "gr":
        solver = SimpleMLP(num_classes=case["model_classes"], input_size=case["dim"], hidden_size=8, hidden_layers=1)
        generator = mlp_vae(case["model_shape"], prior, case["hidden"], likelihood=case["likelihood"])
        plugin = GenerativeReplayPlugin(generator, lr=case["lr"], betas=case["betas"],
                                        check_finite_every=case["check_finite_every"], **case["plugin_args"])
        return solver, plugin
    model = BIRModel(case["model_shape"], case["model_classes"], prior, case["hidden"], gate_prop=case["gate_prop"],
                     likelihood=case["likelihood"])
    return model, BrainInspiredReplayPlugin(check_finite_every=case["check_finite_every"], **case["plugin_args"])


def run_case(case: dict[str, Any]) -> str:
    """``trained``, or where and with what line the case was refused; raises on anything else."""
    try:
        model, plugin = build_case(case)
    except UserInputError as error:
        return f"refused when built: {str(error).split(':')[0]}"
    updates = Updates()
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                     train_mb_size=case["batch"], train_epochs=1, evaluator=None, device=case["device"],
                     plugins=[updates, plugin, IterationBudget(2)])  # counts from 0 before the plugin starts
    benchmark = stream(case["dim"], case["n_classes"], case["image"])
    for experience in benchmark.train_stream:
        try:
            strategy.train(experience)
        except UserInputError as error:
            assert updates.count == 0, f"UserInputError after {updates.count} optimiser steps: {error}"
            return f"refused in experience {experience.current_experience}"
    return "trained"


def test_the_python_api_ends_in_success_or_one_early_user_input_error():
    torch.manual_seed(0)
    outcomes: Counter = Counter()
    started = time.perf_counter()
    for seed in range(CASES):
        case = draw_case(seed)
        try:
            outcomes[run_case(case)] += 1
        except Exception as error:  # noqa: BLE001 - any other exception is what the fuzz looks for
            raise AssertionError(f"case {seed} {case}: {type(error).__name__}: {error}") from error
    seconds = time.perf_counter() - started
    kinds = Counter(what.split(":")[0] for what in outcomes.elements())
    print(f"{CASES} cases in {seconds:.0f} s: " + ", ".join(f"{n} {what}" for what, n in kinds.most_common()))
    assert sum(outcomes.values()) == CASES
    assert outcomes["trained"] >= CASES // 5  # the fuzz reaches training, not only the constructors' checks
    assert sum(n for what, n in outcomes.items() if what.startswith("refused in experience")) > 0

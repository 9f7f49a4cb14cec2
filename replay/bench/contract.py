"""The contract every replay method keeps (``replay.methods.ReplayMethod``), as checks a test suite runs on a
registered method's name; and the check that a prior trains in every registered method.

Each check builds the method as ``replay-bench`` would (its model from ``replay.bench.builders``, its config keys'
defaults), trains it through ``ReplayMethodPlugin`` on a tiny two-experience stream, and raises ``AssertionError`` naming
what broke. ``tests/test_method_contract.py`` runs ``CONTRACT`` on every registered method, and a new method's test
module runs it on the new method (docs/methods.md, "How to add a method").
"""
from __future__ import annotations

import inspect
import io
import math
import typing
from typing import Callable, Optional

import torch
from torch import Tensor

from avalanche.training.templates import SupervisedTemplate

from replay.bench.builders import Parts, builder_class
from replay.bench.config import resolve
from replay.bench.experiment import build_replay
from replay.bench.protocols import PROTOCOLS
from replay.bench.runner import RestoreOptimizerState
from replay.methods import METHODS, Context, method_class
from replay.plugins import IterationBudget, ReplayMethodPlugin, SeenUnitsMask
from replay.priors import LatentPrior, build
from replay.schema import constructor_keys
from scenarios.streams import class_incremental_benchmark

Factory = Callable[[int, Optional[int]], LatentPrior]
N_CLASSES, DIM, LATENT_DIM, ITERATIONS, BATCH = 4, 16, 6, 3, 16


def tiny_stream(seed: int = 0):
    """4 classes of 16-dim blobs in [0, 1], in 2 experiences of 2 classes."""
    generator = torch.Generator().manual_seed(seed)
    centres = 4 * torch.randn(N_CLASSES, DIM, generator=generator)

    def draw(per: int) -> tuple[Tensor, Tensor]:
        y = torch.arange(N_CLASSES).repeat_interleave(per)
        return torch.sigmoid(centres[y] + torch.randn(len(y), DIM, generator=generator)), y

    return class_incremental_benchmark(draw(40), draw(10), 2, list(range(N_CLASSES)), name="contract")


def tiny_strategy(name: str, prior: Optional[Factory] = None, seed: int = 0,
                  keys: Optional[dict] = None) -> tuple[SupervisedTemplate, ReplayMethodPlugin]:
    """The method ``name`` with its default keys (or ``keys`` set: ``method.<key>`` values) on the tiny stream, in a
    ``SupervisedTemplate`` of ``ITERATIONS`` iterations per experience (``prior``: a factory for the method's prior,
    default the config's GMM; ``seed``: the models' initialisation)."""
    stream = tiny_stream()
    torch.manual_seed(seed)
    config = resolve({"method": {"name": name, **(keys or {})}, "model": {"hidden": [16], "latent_dim": LATENT_DIM},
                      "batch_size": BATCH, "seed": seed})
    params = {k: v for k, v in (config["prior"] or {}).items() if k != "name"}

    def make(n_classes: Optional[int]) -> LatentPrior:
        return prior(LATENT_DIM, n_classes) if prior else build(config["prior"]["name"], LATENT_DIM, n_classes, **params)

    uses = config["prior"] is not None
    parts = Parts(config, PROTOCOLS["split_mnist"], stream, make(N_CLASSES) if uses else None, None,
                  {"lr": 1e-3, "betas": (0.9, 0.999)}, make if uses else None)
    _, model, plugin = build_replay(parts)
    strategy = SupervisedTemplate(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                                  train_mb_size=BATCH, evaluator=None,
                                  plugins=[plugin, SeenUnitsMask(), IterationBudget(ITERATIONS)])
    strategy.stream = stream
    return strategy, plugin


def _train(strategy: SupervisedTemplate) -> list[dict[str, float]]:
    """Train over the tiny stream; the last iteration's named terms after each experience."""
    terms = []
    for experience in strategy.stream.train_stream:
        strategy.train(experience)
        terms.append(strategy.plugins[0].last_losses)
    return terms


def check_parameters_declared(name: str, keys: Optional[dict] = None) -> None:
    """Every config key of the method has a type (int, float, bool, str or list, optionally Optional) and a default;
    numeric ones have a range in ``ranges``, string ones may name ``choices``; parameters without a default are
    ``structural``. (A declaration is the class's: ``keys`` is accepted so that every check is called alike.)"""
    cls = method_class(name)
    hints = typing.get_type_hints(cls.__init__)
    for key, parameter in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if parameter.default is inspect.Parameter.empty:
            assert key in cls.structural, f"parameter {key!r} has no default and is not in {cls.__name__}.structural"
            continue
        if key in cls.structural:
            continue
        assert key in hints, f"parameter {key!r} has no type annotation"
    for key, spec in constructor_keys(cls, skip=cls.structural).items():
        assert spec.kind in (int, float, bool, str, list), f"parameter {key!r} is not int, float, bool, str or list"
        if spec.kind in (int, float):
            assert key in cls.ranges, f"numeric parameter {key!r} has no range in {cls.__name__}.ranges"


def check_trains_with_named_terms(name: str, keys: Optional[dict] = None) -> None:
    """Two experiences train; the named terms are finite; the second experience replays and says so (a method whose
    ``replays`` is False: never replays)."""
    strategy, plugin = tiny_strategy(name, keys=keys)
    terms = _train(strategy)
    assert plugin.method.classes.finished == list(range(N_CLASSES)), "the method did not record the classes it finished"
    assert terms[-1], "the method named no loss term"
    assert all(math.isfinite(v) for v in terms[-1].values()), f"non-finite terms {terms[-1]}"
    if not plugin.method.replays:
        assert not plugin.method.replaying and plugin.last_replay_classes is None, "a method that replays nothing replayed"
        return
    assert plugin.method.replaying, "the method has nothing to replay after an experience"
    assert plugin.last_replay_classes is not None, "the plugin saw no replay in the second experience"
    assert set(plugin.last_replay_classes.tolist()) <= {0, 1}, "a replayed sample was given a class not seen before"


def check_replay_batch(name: str, keys: Optional[dict] = None) -> None:
    """``next_replay`` gives ``replay_size`` rows (or the current batch's) of tensors with one row per sample, and the
    forward inputs hold the current rows, then one per replayed sample (nothing to check for a method that does not
    replay)."""
    strategy, plugin = tiny_strategy(name, keys=keys)
    if not plugin.method.replays:
        return
    strategy.train(strategy.stream.train_stream[0])
    method = plugin.method
    method.start(Context(strategy.model, strategy.stream.train_stream[1], torch.device("cpu"), BATCH))
    x = torch.stack([strategy.stream.train_stream[1].dataset[i][0] for i in range(5)])
    replay = method.next_replay(x)
    rows = {key: len(value) for key, value in replay.items()}
    expected = method.replay_size or 5
    assert set(rows.values()) == {expected}, f"replay columns with {rows} rows, expected {expected} each"
    assert len(method.replay_classes(replay)) == expected, "replay_classes does not give one class per sample"
    inputs = method.forward_inputs(strategy.model, x, replay)
    assert len(inputs) == 5 + expected, f"forward_inputs gave {len(inputs)} rows for 5 current and {expected} replayed"


def check_state_round_trip(name: str, keys: Optional[dict] = None) -> None:
    """A fresh method given the saved ``state_dict`` (through ``torch.save``, with the model's and its optimiser's,
    as a checkpoint holds them) replays and trains exactly as the original."""
    first, plugin = tiny_strategy(name, keys=keys)
    first.train(first.stream.train_stream[0])
    buffer = io.BytesIO()
    torch.save({"plugin": plugin.state_dict(), "model": first.model.state_dict(),
                "optimizer": first.optimizer.state_dict()}, buffer)
    second, restored = tiny_strategy(name, seed=1, keys=keys)
    saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    second.model.load_state_dict(saved["model"])
    restored.load_state_dict(saved["plugin"])
    restored.method.bind(second.model)
    second.plugins[1].load_state_dict(first.plugins[1].state_dict())  # the seen-units mask
    second.plugins.append(RestoreOptimizerState(saved["optimizer"]))
    outcomes = []
    for strategy in (first, second):
        torch.manual_seed(7)
        strategy.train(strategy.stream.train_stream[1])
        outcomes.append(strategy.plugins[0].last_losses)
    assert outcomes[0] == outcomes[1], f"training differs after a state_dict round trip: {outcomes}"


def check_judge_samples(name: str, keys: Optional[dict] = None) -> None:
    """A method that replays images gives samples for the replay-quality measures: per class (intended classes among
    those asked for) or unconditional, in the data's shape, mapped to [0, 1] by ``to_unit``."""
    strategy, plugin = tiny_strategy(name, keys=keys)
    strategy.train(strategy.stream.train_stream[0])
    if not plugin.method.replays_images(strategy.model):
        return
    samples = plugin.method.judge_samples([0, 1], 3)
    assert samples.x.shape == (6, DIM), f"judge samples of shape {tuple(samples.x.shape)}, expected (6, {DIM})"
    if samples.intended is not None:
        assert sorted(samples.intended.tolist()) == [0, 0, 0, 1, 1, 1], "intended classes differ from those asked for"
    unit = samples.to_unit(samples.x)
    assert torch.isfinite(unit).all(), "to_unit gave non-finite pixels"


def check_prior_in_methods(make: Factory) -> None:
    """A prior trains in every registered method that takes one: two experiences with finite named terms and replay
    (methods that score with the prior's density: only priors that have one; methods that replay nothing: no replay
    term)."""
    for name in METHODS:
        builder = builder_class(name)
        if not builder.uses_prior or (builder.needs_density and not make(LATENT_DIM, N_CLASSES).has_density):
            continue
        strategy, plugin = tiny_strategy(name, prior=make)
        terms = _train(strategy)[-1]
        if plugin.method.replays:
            assert any(key.endswith("replay") for key in terms), f"{name}: no replay term in {sorted(terms)}"
        assert all(math.isfinite(v) for v in terms.values()), f"{name}: non-finite terms {terms}"


#: the checks, each called as ``check(name)`` or ``check(name, keys)`` (``keys``: ``method.<key>`` values to set)
CONTRACT: tuple[Callable[..., None], ...] = (
    check_parameters_declared, check_trains_with_named_terms, check_replay_batch, check_state_round_trip,
    check_judge_samples,
)

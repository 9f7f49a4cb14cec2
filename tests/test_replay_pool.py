"""ReplayPool: replay drawn several iterations at a time, handed out batch by batch, never across frozen models."""
from __future__ import annotations

import pytest
import torch

from replay import IterationBudget, SeenUnitsMask
from replay.generators import mlp_vae
from replay.models import BIRModel, MLPClassifier
from replay.methods.lifecycle import ReplayPool
from replay.priors import build
from replay.strategies import BrainInspiredReplayStrategy, GenerativeReplayStrategy


class CountingDraw:
    """A draw whose rows are numbered consecutively over all calls, so that every handed-out row is traceable."""

    def __init__(self, as_dict: bool):
        self.as_dict, self.sizes, self.next_row = as_dict, [], 0

    def __call__(self, n: int):
        self.sizes.append(n)
        rows = torch.arange(self.next_row, self.next_row + n)
        self.next_row += n
        return {"x": rows, "y": -rows} if self.as_dict else (rows, -rows)


@pytest.mark.parametrize("as_dict", [True, False])
def test_pool_hands_out_each_drawn_row_once_in_order(as_dict):
    draw, pool = CountingDraw(as_dict), ReplayPool(chunk=3)
    batches = [pool.take(4, draw) for _ in range(7)]
    assert draw.sizes == [12, 12, 12]  # a draw at takes 1, 4 and 7
    first = [b["x"] if as_dict else b[0] for b in batches]
    second = [b["y"] if as_dict else b[1] for b in batches]
    assert torch.equal(torch.cat(first), torch.arange(28))  # no row twice, none skipped while stock lasts
    assert all(torch.equal(s, -f) for f, s in zip(first, second))  # columns stay aligned


def test_pool_redraws_when_too_few_rows_are_left_or_after_clear():
    draw, pool = CountingDraw(True), ReplayPool(chunk=2)
    pool.take(5, draw)
    pool.take(6, draw)  # 5 left, 6 wanted: a new draw of 12
    assert draw.sizes == [10, 12]
    pool.take(1, draw)
    pool.clear()
    assert pool.take(1, draw)["x"].item() == 22  # the rows left were dropped
    assert ReplayPool(chunk=1).take(3, draw)["x"].tolist() == [24, 25, 26]  # after the 2 rows of that draw


@pytest.mark.parametrize("chunk", [0, -2, 1.5])
def test_pool_refuses_a_chunk_that_is_not_a_positive_integer(chunk):
    with pytest.raises(ValueError, match="replay_chunk must be an integer >= 1"):
        ReplayPool(chunk)


def gr_strategy(replay_chunk: int, iterations: int):
    model = MLPClassifier((16,), 4, (32,))
    generator = mlp_vae((16,), build("gaussian", latent_dim=4), hidden=(32,))
    return GenerativeReplayStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), generator=generator,
                            replay_options={"replay_chunk": replay_chunk}, train_mb_size=32,
                            plugins=[SeenUnitsMask(), IterationBudget(iterations)], evaluator=None)


def bir_strategy(replay_chunk: int, iterations: int):
    model = BIRModel((16,), 4, build("gmm", latent_dim=4, n_classes=4), (32, 32), gate_prop=0.5)
    return BrainInspiredReplayStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                               replay_options={"replay_chunk": replay_chunk}, train_mb_size=32,
                               plugins=[SeenUnitsMask(), IterationBudget(iterations)], evaluator=None)


@pytest.mark.parametrize("make, frozen_name", [(gr_strategy, "frozen_generator"), (bir_strategy, "frozen_model")])
def test_plugins_draw_once_per_chunk_and_never_reuse_replay_of_an_older_frozen_model(tiny_stream, make, frozen_name):
    torch.manual_seed(0)
    strategy = make(replay_chunk=4, iterations=10)
    method = strategy.replay_plugin.method
    calls = []
    original = method.draw

    def counted(n):
        calls.append((n, id(getattr(method, frozen_name))))
        return original(n)

    method.draw = counted
    first, second = tiny_stream.train_stream
    strategy.train(first)
    assert calls == []  # no replay in the first experience
    strategy.train(second)
    in_training = [c for c in calls if c[0] == 4 * 32]
    assert len(in_training) == 3  # iterations 1, 5 and 9 of 10
    calls.clear()
    strategy.train(second)  # a third experience: new frozen networks, so the 2 batches left must not be used
    in_training = [c for c in calls if c[0] == 4 * 32]
    assert len(in_training) == 3
    assert len({frozen for _, frozen in in_training}) == 1


def test_replay_chunk_reaches_the_plugins_from_a_run_config(tmp_path, mnist_root):
    from replay.bench.config import ConfigError, resolve
    from replay.bench.experiment import build_experiment

    for method in ("gr", "bir"):
        config = resolve({"method": {"name": method, "replay_chunk": 8}, "stream": {"root": str(mnist_root)},
                          "iterations_per_experience": 1})
        assert build_experiment(config, tmp_path / method).replay_plugin.method.lifecycle.pool.chunk == 8
    with pytest.raises(ConfigError, match="replay_chunk"):
        resolve({"method": {"name": "bir", "replay_chunk": "many"}})

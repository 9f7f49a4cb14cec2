"""A new replay method, written as docs/methods.md ("How to add a method") says, in this file alone: the current
inputs replayed with the frozen previous model's soft targets, as in "learning without forgetting" (Li & Hoiem 2017).

It keeps the method contract (replay.bench.contract), its loss is checked against a hand computation, and it runs
under ``replay-bench run``, a ``replay-bench sweep`` (named by its import path, so that every Ray worker finds it) and
the replay metrics, without touching any other file. Copy this file to start a method of your own.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pytest
import torch
import yaml
from torch import Tensor, nn
from torch.nn import functional as F

from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from replay import IterationBudget, ReplayLossMetric, ReplayMethodPlugin, ReplayShareMetric, SeenUnitsMask
from replay.bench.cli import main
from replay.bench.contract import CONTRACT
from replay.checks import POSITIVE
from replay.errors import UserInputError
from replay.methods import Context, ReplayMethod, distillation_loss, frozen_copy, register_method
from replay.metrics import ReplayQualityMetric
from replay.models import MLPClassifier
from tests.helpers import needs_ray

REPO = Path(__file__).resolve().parent.parent
IMPORT_PATH = "tests.test_example_method:ReplayCurrent"


@register_method("replay_current")
class ReplayCurrent(ReplayMethod):
    """The current batch replayed with the frozen previous model's soft targets over the classes seen before.

    Loss: ``(1/t) * current + (1 - 1/t) * replay``, ``replay`` the distillation loss (temperature T, times T^2) of the
    model's scores over the active classes against softmax(frozen scores / T) over the previous ones.

    Args:
        temperature: distillation temperature T (> 0).
        replay_size: at most this many current samples replayed (None: all of them).
    """

    ranges = {**ReplayMethod.ranges, "temperature": POSITIVE}

    def __init__(self, temperature: float = 2.0, replay_size: Optional[int] = None):
        super().__init__(replay_size)
        self.temperature = temperature
        self.frozen: Optional[nn.Module] = None
        self._pending: dict = {}

    @property
    def replaying(self) -> bool:
        return self.frozen is not None

    def start(self, context: Context) -> None:
        self.bind(context.model)
        if self.frozen is not None:
            self.frozen.to(context.device)
        super().start(context)

    def finish(self, context: Context) -> None:
        self.frozen = frozen_copy(context.model)
        super().finish(context)

    def bind(self, model: nn.Module) -> None:
        if "frozen" in self._pending:
            self.frozen = frozen_copy(model)
            self.frozen.load_state_dict(self._pending.pop("frozen"))

    @torch.no_grad()
    def next_replay(self, x: Tensor) -> dict[str, Tensor]:
        x = x[: self.replay_size or len(x)]
        return {"inputs": x, "teacher_scores": self.frozen(x)[:, self.classes.previous]}

    def replay_classes(self, replay: dict[str, Tensor]) -> Tensor:
        return self.classes.top_previous(replay["teacher_scores"])

    def loss(self, model, current_loss, y, replay, replay_scores):
        if replay is None:
            return current_loss, {"current": current_loss}
        targets = self.classes.active_probs(replay["teacher_scores"], self.temperature)
        terms = {"current": current_loss,
                 "replay": distillation_loss(replay_scores[:, self.classes.active], targets, self.temperature)}
        w_current, w_replay = self.lifecycle.weights
        return w_current * terms["current"] + w_replay * terms["replay"], terms

    def state_dict(self) -> dict:
        frozen = self.frozen.state_dict() if self.frozen is not None else self._pending.get("frozen")
        return {"frozen": frozen, **super().state_dict()}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> None:
        self.frozen = None
        self._pending = {} if state_dict["frozen"] is None else {"frozen": state_dict["frozen"]}
        super().load_state_dict(state_dict)


TINY = {"iterations_per_experience": 5, "model": {"hidden": [16]}, "eval_batch_size": 5000, "progress": False}


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
def test_the_example_method_keeps_the_contract(check):
    check("replay_current")


def test_its_loss_agrees_with_a_hand_computation(tiny_stream):
    torch.manual_seed(0)
    model = MLPClassifier((16,), 4, (8,))
    method = ReplayCurrent(temperature=2.0)
    method.finish(Context(model, tiny_stream.train_stream[0], torch.device("cpu"), 8))  # classes 0, 1 seen
    method.start(Context(model, tiny_stream.train_stream[1], torch.device("cpu"), 8))
    x = torch.stack([tiny_stream.train_stream[1].dataset[i][0] for i in range(6)])
    replay = method.next_replay(x)
    scores = torch.randn(6, 4)
    total, terms = method.loss(model, torch.tensor(0.7), None, replay, scores)
    teacher = F.softmax(model(x)[:, :2].detach() / 2.0, dim=1)
    by_hand = -(teacher * F.log_softmax(scores / 2.0, dim=1)[:, :2]).sum(1).mean() * 4.0
    assert float(terms["replay"]) == pytest.approx(float(by_hand), rel=1e-5)
    assert float(total) == pytest.approx(0.5 * 0.7 + 0.5 * float(by_hand), rel=1e-5)


def test_a_bad_value_is_refused_at_construction_in_one_line():
    with pytest.raises(UserInputError, match=r"^method.temperature must be a number > 0, got -1$"):
        ReplayCurrent(temperature=-1)


def write_config(tmp_path: Path, mnist_root: Path, name: str = IMPORT_PATH, **method) -> Path:
    config = {**TINY, "stream": {"name": "split_mnist", "root": str(mnist_root)}, "method": {"name": name, **method}}
    path = tmp_path / "replay_current.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_it_runs_under_replay_bench_run_with_its_named_terms_and_shares(tmp_path, mnist_root, capsys):
    assert main(["run", str(write_config(tmp_path, mnist_root, temperature=3.0)), "--out", str(tmp_path / "run")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["method"] == IMPORT_PATH and result["prior"] is None and result["config"]["method"]["temperature"] == 3
    assert len(result["accuracy_matrix"]) == 5 and result["replay_quality_per_experience"] == [None] * 5
    assert set(result["replay_losses_per_experience"][-1]) == {"current", "replay"}
    shares = result["replay_shares_per_experience"][-1]
    assert len(shares) == 4 and sum(shares) == pytest.approx(1.0)


def test_an_unknown_key_of_the_method_is_refused_in_one_line(tmp_path, mnist_root, capsys):
    assert main(["run", str(write_config(tmp_path, mnist_root, alpha=1.0)), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "unknown key 'method.alpha'" in error and "temperature" in error and error.count("\n") == 1


@needs_ray
def test_it_runs_in_a_sweep_on_a_local_ray(tmp_path, mnist_root, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # Ray's workers import the method by its path
    config = write_config(tmp_path, mnist_root)
    sweep = {"out": str(tmp_path / "runs"), "configs": [str(config)], "set": {"iterations_per_experience": 3},
             "grid": {"method.temperature": [1.0, 2.0]}, "resources": {"cpus": 1, "threads": 1}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert main(["sweep", str(path), "--max-concurrent", "2"]) == 0
    results = sorted((tmp_path / "runs").rglob("result.json"))
    assert len(results) == 2
    assert sorted(json.loads(p.read_text())["config"]["method"]["temperature"] for p in results) == [1.0, 2.0]


def test_the_replay_metrics_read_it_and_the_quality_metric_refuses_it_in_one_line(tiny_stream):
    torch.manual_seed(0)
    model = MLPClassifier((16,), 4, (16,))
    losses, shares = ReplayLossMetric(every=2), ReplayShareMetric()
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters()), train_mb_size=16,
                     evaluator=EvaluationPlugin(accuracy_metrics(stream=True), losses, shares, loggers=[]),
                     plugins=[ReplayMethodPlugin(ReplayCurrent()), SeenUnitsMask(), IterationBudget(4)])
    for experience in tiny_stream.train_stream:
        strategy.train(experience)
    assert set(losses.experience_means[-1]) == {"current", "replay"}
    assert shares.experience_shares == [None, [1.0]]
    judged = Naive(model=model, optimizer=torch.optim.Adam(model.parameters()),
                   evaluator=EvaluationPlugin(ReplayQualityMetric(judge=None, test_stream=tiny_stream.test_stream),
                                              loggers=[]),
                   plugins=[ReplayMethodPlugin(ReplayCurrent()), IterationBudget(1)])
    with pytest.raises(UserInputError, match="ReplayQualityMetric judges images; ReplayCurrent"):
        judged.train(tiny_stream.train_stream[0])

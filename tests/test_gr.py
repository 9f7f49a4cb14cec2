"""GenerativeReplayPlugin inside Avalanche strategies, on tiny synthetic streams."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from avalanche.models import IncrementalClassifier
from avalanche.training import Naive
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin

from replay import GenerativeReplayPlugin, IterationBudget, SeenUnitsMask
from replay.generators import mlp_vae
from replay.models import MLPClassifier
from replay.priors import build
from replay.strategies import GenerativeReplayStrategy


def make_naive(model, plugins, iterations=60):
    """A plain Avalanche ``Naive`` strategy written the way a user would."""
    return Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), train_mb_size=32,
                 train_epochs=1, eval_mb_size=256, plugins=[IterationBudget(iterations), *plugins],
                 evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))


def final_accuracies(strategy, stream):
    metrics = strategy.eval(stream)
    return [metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"] for j in range(len(stream))]


def gr_plugin(prior="gaussian", **options):
    generator = mlp_vae((16,), build(prior, latent_dim=4, n_classes=4), hidden=(32,))
    return GenerativeReplayPlugin(generator, lr=1e-2, **options)


def test_replay_labels_are_restricted_to_past_classes(tiny_stream):
    torch.manual_seed(0)
    plugin = gr_plugin()
    strategy = make_naive(MLPClassifier((16,), 4, (32,)), [plugin, SeenUnitsMask()], iterations=20)
    strategy.train(tiny_stream.train_stream[0])
    plugin.method.classes.start(tiny_stream.train_stream[1].classes_in_this_experience, torch.device("cpu"))
    scores = plugin.method.draw(500)["teacher_scores"]
    labels = plugin.method.replay_labels(scores)
    assert set(labels.tolist()) <= {0, 1}
    assert scores.shape == (500, 2)


def test_one_over_t_weighting_matches_a_hand_computation(tiny_stream):
    torch.manual_seed(0)
    plugin = gr_plugin()
    model = MLPClassifier((16,), 4, (32,))
    strategy = make_naive(model, [plugin, SeenUnitsMask()], iterations=5)
    strategy.train(tiny_stream.train_stream[0])
    seen = {}

    class Recorder(SupervisedPlugin):
        """Captures the first iteration of experience 1: batch, replay, weights used, total loss."""

        def before_update(self, strategy, **kwargs):
            if "loss" not in seen:
                seen.update(loss=float(strategy.loss.detach()), x=strategy.mb_x.clone(), y=strategy.mb_y.clone(),
                            replay={k: t.clone() for k, t in plugin._replay.items()}, t=plugin.method.lifecycle.t,
                            state={k: v.clone() for k, v in model.state_dict().items()})

    strategy.plugins.append(Recorder())
    strategy.train(tiny_stream.train_stream[1])
    x_replay, teacher, solver_inputs = (seen["replay"][k] for k in ("x", "teacher_scores", "inputs"))
    assert solver_inputs is x_replay or torch.equal(solver_inputs, x_replay)  # no feature cache: the images themselves
    probe = MLPClassifier((16,), 4, (32,))
    probe.load_state_dict(seen["state"])
    # t = 2: all four units are seen; replay labels are the teacher's argmax over the 2 old classes
    current = F.cross_entropy(probe(seen["x"]), seen["y"])
    replay = F.cross_entropy(probe(x_replay), teacher.argmax(1))
    assert seen["t"] == 2
    assert seen["loss"] == pytest.approx(0.5 * float(current) + 0.5 * float(replay), rel=1e-5)


def test_frozen_copies_are_frozen(tiny_stream):
    torch.manual_seed(0)
    plugin = gr_plugin()
    strategy = make_naive(MLPClassifier((16,), 4, (32,)), [plugin, SeenUnitsMask()], iterations=10)
    strategy.train(tiny_stream.train_stream[0])
    solver_copy, generator_copy = plugin.method.frozen_solver, plugin.method.frozen_generator
    saved = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in
             (("solver", solver_copy), ("generator", generator_copy))}
    assert not any(p.requires_grad for p in solver_copy.parameters())
    assert not any(p.requires_grad for p in generator_copy.parameters())
    assert not solver_copy.training and not generator_copy.training
    live_before = {k: v.clone() for k, v in strategy.model.state_dict().items()}
    strategy.train(tiny_stream.train_stream[1])  # replays from the copies taken after experience 0
    for name, module in (("solver", solver_copy), ("generator", generator_copy)):
        assert all(torch.equal(v, saved[name][k]) for k, v in module.state_dict().items()), name
    assert any(not torch.equal(v, live_before[k]) for k, v in strategy.model.state_dict().items())
    assert plugin.method.frozen_solver is not solver_copy  # a fresh copy is taken at the end of each experience


def test_soft_targets_use_distillation(tiny_stream):
    torch.manual_seed(0)
    plugin = gr_plugin(targets="soft", temperature=2.0)
    strategy = make_naive(MLPClassifier((16,), 4, (32,)), [plugin, SeenUnitsMask()], iterations=10)
    strategy.train(tiny_stream.train_stream[0])
    strategy.train(tiny_stream.train_stream[1])
    assert plugin.last_losses["replay"] > 0


def test_gr_improves_old_task_accuracy_over_naive(tiny_stream):
    accuracies = {}
    for name, plugins in (("naive", []), ("gr", [gr_plugin(prior="gmm")])):
        torch.manual_seed(0)
        strategy = make_naive(MLPClassifier((16,), 4, (32,)), [*plugins, SeenUnitsMask()], iterations=150)
        for experience in tiny_stream.train_stream:
            strategy.train(experience)
        accuracies[name] = final_accuracies(strategy, tiny_stream.test_stream)
    assert accuracies["naive"][0] < 0.1  # catastrophic forgetting of the first task
    assert accuracies["gr"][0] > 0.6
    assert accuracies["gr"][1] > 0.8


def test_works_with_an_incremental_classifier(tiny_stream):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), IncrementalClassifier(32, initial_out_features=2))
    plugin = gr_plugin()
    strategy = make_naive(model, [plugin], iterations=20)
    for experience in tiny_stream.train_stream:
        strategy.train(experience)
    assert model[-1].classifier.out_features == 4
    assert "replay" in plugin.last_losses


def test_ready_strategy_and_generator_after_schedule(tiny_stream):
    torch.manual_seed(0)
    model = MLPClassifier((16,), 4, (32,))
    generator = mlp_vae((16,), build("binarized_gaussian", latent_dim=4, r=0.5), hidden=(32,))
    strategy = GenerativeReplayStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()), generator=generator,
                                replay_options={"generator_schedule": "after", "generator_iterations": 7},
                                train_mb_size=32, plugins=[IterationBudget(5)], evaluator=None)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    strategy.train(tiny_stream.train_stream[0])
    assert any(not torch.equal(before[k], v) for k, v in generator.state_dict().items())
    with pytest.raises(ValueError, match="method.targets: .medium. is not allowed; allowed: hard, soft"):
        GenerativeReplayPlugin(generator, targets="medium")

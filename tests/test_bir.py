"""BIRModel and BrainInspiredReplayPlugin: gates, internal replay, distillation, conditional replay, switches."""
from __future__ import annotations

import pytest
import torch

from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin

from replay import IterationBudget, SeenUnitsMask
from replay.models import BIRModel, ConvFeatureExtractor
from replay.priors import build
from replay.strategies import BrainInspiredReplayStrategy
from scenarios.streams import class_incremental_benchmark


def bir_model(prior="gmm", gate_prop=0.5, extractor=None, input_shape=(16,), hidden=(32, 32)):
    return BIRModel(input_shape, 4, build(prior, latent_dim=4, n_classes=4), hidden, gate_prop=gate_prop,
                    feature_extractor=extractor)


def bir_strategy(model, iterations=40, plugins=(), **options):
    return BrainInspiredReplayStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), replay_options=options,
                               train_mb_size=32, eval_mb_size=256, plugins=[SeenUnitsMask(), IterationBudget(iterations), *plugins],
                               evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))


class Recorder(SupervisedPlugin):
    """Keeps a copy of the replay plugin's replay batch at the first replay iteration."""

    def __init__(self, plugin):
        super().__init__()
        self.plugin, self.replay = plugin, None

    def after_forward(self, strategy, **kwargs):
        if self.replay is None and self.plugin._replay is not None:
            self.replay = {k: v.detach().clone() for k, v in self.plugin._replay.items()}


def test_gates_silence_their_units_in_the_decoder_only():
    torch.manual_seed(0)
    model = bir_model(gate_prop=0.5)
    masks = model.decoder.gate_masks()
    assert len(masks) == 2 and all(m.shape[0] == 4 for m in masks)
    assert 0.35 < float(1 - masks[0].mean()) < 0.65  # about gate_prop of the units silenced
    activations = []
    hooks = [layer.register_forward_hook(lambda mod, inp, out: activations.append(torch.relu(out)))
             for layer in model.decoder.hidden_layers]
    z = torch.randn(8, 4)
    gate = model.context_gate(classes=torch.full((8,), 2))
    output = model.decode(z, gate)
    for hook in hooks:
        hook.remove()
    # hidden units outside class 2's mask are exactly zero after gating; the output layer is not gated
    h1_gated = activations[0] * masks[0][2]
    assert torch.all(h1_gated[:, masks[0][2] == 0] == 0)
    assert (output != 0).float().mean() > 0.99
    # the encoder/classifier never see a gate: scores do not depend on it
    x = torch.rand(8, 16)
    assert torch.equal(model(x), model(x))
    # soft gates are the probability-weighted masks
    probs = torch.tensor([[0.25, 0.25, 0.5, 0.0]])
    assert torch.allclose(model.context_gate(class_probs=probs) @ masks[0], 0.25 * masks[0][0] + 0.25 * masks[0][1] + 0.5 * masks[0][2])


def test_gating_off_makes_the_decoder_independent_of_the_context():
    model = bir_model(gate_prop=0.0)
    assert not model.gated and model.context_gate(classes=torch.tensor([1])) is None
    z = torch.randn(3, 4)
    assert torch.equal(model.decode(z, None), model.decode(z, None))


def test_distillation_targets_come_from_the_frozen_model(tiny_stream):
    torch.manual_seed(0)
    model = bir_model()
    strategy = bir_strategy(model, iterations=30)
    recorder = Recorder(strategy.replay_plugin)
    strategy.plugins.append(recorder)
    strategy.train(tiny_stream.train_stream[0])
    frozen = strategy.replay_plugin.method.frozen_model
    strategy.train(tiny_stream.train_stream[1])
    replay = recorder.replay
    expected = frozen.classify_replay(replay["x"])[0][:, [0, 1]]
    assert torch.allclose(replay["teacher_scores"], expected)
    assert not torch.allclose(model.classify_replay(replay["x"])[0][:, [0, 1]], expected)
    assert set(replay["classes"].tolist()) <= {0, 1}
    assert not any(p.requires_grad for p in frozen.parameters())


def test_conditional_samples_are_classified_as_their_class(tiny_stream):
    torch.manual_seed(0)
    model = bir_model(prior="gmm", gate_prop=0.3)
    strategy = bir_strategy(model, iterations=300)
    for experience in tiny_stream.train_stream:
        strategy.train(experience)
    model.eval()
    hits = []
    for c in range(4):
        samples = model.generate(torch.full((200,), c))
        hits.append(float((model.classify_replay(samples)[0].argmax(1) == c).float().mean()))
    assert min(hits) > 0.6, hits  # chance is 0.25


def test_internal_replay_generates_features_never_pixels():
    torch.manual_seed(0)
    images = torch.randn(400, 3, 32, 32)
    labels = torch.arange(4).repeat_interleave(100)
    stream = class_incremental_benchmark((images, labels), (images[:80], labels[:80]), 2, [0, 1, 2, 3])
    extractor = ConvFeatureExtractor(frozen=True)
    seen_shapes = []
    extractor.register_forward_hook(lambda mod, inp, out: seen_shapes.append(tuple(inp[0].shape[1:])))
    model = bir_model(prior="gaussian", extractor=extractor, input_shape=(3, 32, 32))
    assert model.replay_shape == (1024,) and model.decoder.output.out_features == 1024
    strategy = bir_strategy(model, iterations=4)
    recorder = Recorder(strategy.replay_plugin)
    strategy.plugins.append(recorder)
    for experience in stream.train_stream:
        strategy.train(experience)
    assert recorder.replay["x"].shape[1:] == (1024,)
    assert set(seen_shapes) == {(3, 32, 32)}  # the extractor only ever sees real images
    assert not extractor.training  # stays in eval mode while the model trains
    assert all(not p.requires_grad for p in extractor.parameters())


class PriorSpy:
    """Wraps a prior's sample/regularizer to record how they were called."""

    def __init__(self, prior):
        self.calls = []
        sample, regularizer = prior.sample, prior.regularizer

        def spy_sample(n, classes=None):
            self.calls.append(("sample", classes is not None))
            return sample(n, classes)

        def spy_regularizer(posterior, z, labels=None, probs=None):
            self.calls.append(("regularizer", "labels" if labels is not None else "probs" if probs is not None else None))
            return regularizer(posterior, z, labels=labels, probs=probs)

        prior.sample, prior.regularizer = spy_sample, spy_regularizer


@pytest.mark.parametrize("distill, conditional", [(True, True), (False, True), (True, False)])
def test_switches_change_the_computation(tiny_stream, distill, conditional):
    torch.manual_seed(0)
    model = bir_model()
    strategy = bir_strategy(model, iterations=3, distill=distill, conditional=conditional)
    strategy.train(tiny_stream.train_stream[0])
    frozen_spy = PriorSpy(strategy.replay_plugin.method.frozen_model.prior)
    live_spy = PriorSpy(model.prior)
    strategy.train(tiny_stream.train_stream[1])
    assert ("sample", conditional) in frozen_spy.calls and ("sample", not conditional) not in frozen_spy.calls
    replay_kind = "probs" if distill else "labels"
    assert ("regularizer", replay_kind) in live_spy.calls
    assert ("regularizer", "labels") in live_spy.calls  # current data always conditions on its label
    losses = strategy.replay_plugin.last_losses
    assert {"classification_replay", "recon_replay", "reg_replay", "classification_current"} <= set(losses)


def test_plugin_refuses_a_plain_classifier(tiny_stream):
    from avalanche.training import Naive
    from replay import BrainInspiredReplayPlugin

    model = torch.nn.Linear(16, 4)
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     plugins=[BrainInspiredReplayPlugin()], evaluator=None)
    with pytest.raises(ValueError, match="needs a replay.models.BIRModel"):
        strategy.train(tiny_stream.train_stream[0])


def test_loss_terms_are_weighted_one_over_t(tiny_stream):
    torch.manual_seed(0)
    model = bir_model()
    strategy = bir_strategy(model, iterations=2)
    totals = []

    class Total(SupervisedPlugin):
        def before_update(self, strategy, **kwargs):
            totals.append(float(strategy.loss.detach()))

    strategy.plugins.append(Total())
    strategy.train(tiny_stream.train_stream[0])
    strategy.train(tiny_stream.train_stream[1])
    losses = strategy.replay_plugin.last_losses
    current = sum(v for k, v in losses.items() if k.endswith("_current"))
    replay = sum(v for k, v in losses.items() if k.endswith("_replay"))
    assert totals[-1] == pytest.approx(0.5 * current + 0.5 * replay, rel=1e-5)

"""FeatureCache: frozen conv features computed once give the same training and evaluation as a conv pass per batch."""
from __future__ import annotations

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from replay import (BrainInspiredReplayPlugin, FeatureCache, GenerativeReplayPlugin, InMemoryBatches, IterationBudget,
                    SeenUnitsMask)
from replay.generators import conv_vae
from replay.models import BIRModel, ConvFeatureExtractor, MLPClassifier
from replay.priors import build
from scenarios.streams import class_incremental_benchmark


def image_stream():
    """6 classes of 3x32x32 images in [0, 1] (class-dependent mean colour), 3 experiences."""
    generator = torch.Generator().manual_seed(0)

    def draw(per_class):
        y = torch.arange(6).repeat_interleave(per_class)
        x = (0.12 * y.view(-1, 1, 1, 1) + 0.3 * torch.rand(len(y), 3, 32, 32, generator=generator)).clamp(0, 1)
        return x, y

    return class_incremental_benchmark(draw(40), draw(10), 3, list(range(6)), name="images")


def strategy(method: str, cached: bool) -> Naive:
    torch.manual_seed(1)
    extractor = ConvFeatureExtractor(frozen=True)
    if method == "bir":
        model = BIRModel((3, 32, 32), 6, build("gmm", 8, 6), hidden=(32,), feature_extractor=extractor)
        replay = BrainInspiredReplayPlugin()
    else:
        model = MLPClassifier((3, 32, 32), 6, (32,), extractor)
        replay = GenerativeReplayPlugin(conv_vae((3, 32, 32), build("gaussian", 8), (32,), likelihood="bernoulli"))
    batches = FeatureCache(extractor) if cached else InMemoryBatches()
    return Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), train_mb_size=16,
                 train_epochs=1, eval_mb_size=25, plugins=[batches, replay, SeenUnitsMask(), IterationBudget(6)],
                 evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))


@pytest.mark.parametrize("method", ["bir", "gr"])
def test_cached_features_train_and_evaluate_like_the_conv_pass(method):
    stream = image_stream()
    runs = {}
    for cached in (False, True):
        learner = strategy(method, cached)
        accuracies = []
        for experience in stream.train_stream:  # evaluations between experiences: the random stream must match
            learner.train(experience)
            metrics = learner.eval(stream.test_stream)
            accuracies.append([metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"] for j in range(3)])
        runs[cached] = (learner, accuracies)
    (plain, plain_accuracy), (cached, cached_accuracy) = runs[False], runs[True]
    assert cached_accuracy == plain_accuracy
    for (name, a), b in zip(plain.model.named_parameters(), cached.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    replay = next(p for p in cached.plugins if isinstance(p, (GenerativeReplayPlugin, BrainInspiredReplayPlugin)))
    assert set(replay.last_losses) == set(next(p for p in plain.plugins if type(p) is type(replay)).last_losses)


def test_the_cache_computes_each_experience_once_and_hands_out_features():
    stream = image_stream()
    learner = strategy("gr", True)
    cache = next(p for p in learner.plugins if isinstance(p, FeatureCache))
    calls = []
    cache.extractor.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    learner.train(stream.train_stream[0])
    assert sum(calls) == 80  # the experience's 80 images once (GR's replay starts in the second experience)
    learner.eval(stream.test_stream)
    learner.eval(stream.test_stream)
    assert sum(calls) == 80 + 60  # each test experience once, kept for the second evaluation
    features = cache._loader.tensors[0]
    assert features.shape == (80, ConvFeatureExtractor.out_features)
    assert torch.equal(cache.batch_images(), cache._images[cache._loader.last_rows])

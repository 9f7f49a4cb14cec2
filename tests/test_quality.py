"""Replay quality: the measures against independent computations, the judge, and the metric in a user's pipeline."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import TensorboardLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from replay import BrainInspiredReplayPlugin, GenerativeReplayPlugin, IterationBudget, SeenUnitsMask
from replay.generators import mlp_vae
from replay.metrics import ReplayQualityMetric
from replay.models import BIRModel, MLPClassifier
from replay.priors import build
from replay.quality import class_shares, diversity_ratio, frechet_distance, judge_for, prdc
from scenarios.streams import class_incremental_benchmark
from tests.helpers import blobs


def test_frechet_distance_of_a_set_to_itself_is_zero_and_grows_with_a_shift():
    x = torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))
    assert abs(frechet_distance(x, x)) < 1e-6
    # same covariance, mean shifted by delta in every dim: FD = |delta|^2 = 8 delta^2
    assert frechet_distance(x, x + 1.0) == pytest.approx(8.0, rel=1e-6)
    assert frechet_distance(x, x + 2.0) == pytest.approx(32.0, rel=1e-6)
    scaled = frechet_distance(x, 2 * x)  # covariances I and 4I: Tr(I + 4I - 2 * 2I) = 8, up to sampling
    assert scaled == pytest.approx(8.0, rel=0.1)


def test_frechet_distance_matches_scipys_matrix_square_root_and_stays_quiet_when_singular():
    import warnings

    from scipy import linalg

    generator = torch.Generator().manual_seed(1)
    real, generated = torch.randn(500, 6, generator=generator), torch.randn(400, 6, generator=generator) * 1.5 + 0.3
    a, b = real.double().numpy(), generated.double().numpy()
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(real, generated) == pytest.approx(expected, rel=1e-9)
    # a replay collapsed onto three images (rank-2 covariance in 6 dimensions): no warning, the exact value
    collapsed = real[:3].repeat(100, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = frechet_distance(real, collapsed)
    c = collapsed.double().numpy()
    cov_c = np.cov(c, rowvar=False)
    eigen = np.linalg.eigvals(cov_a @ cov_c).real.clip(min=0)
    exact = ((a.mean(0) - c.mean(0)) ** 2).sum() + np.trace(cov_a) + np.trace(cov_c) - 2 * np.sqrt(eigen).sum()
    assert value == pytest.approx(exact, rel=1e-6)


def test_precision_recall_density_coverage_worked_out_by_hand():
    # real points 0..5 on a line: with k = 1 every real ball has radius 1
    real = torch.tensor([[float(i), 0.0] for i in range(6)])
    fake = torch.tensor([[0.5, 0.0], [10.0, 0.0]])
    # 0.5 lies in the balls of reals 0 and 1, 10 in none: precision 1/2, density (2 + 0) / 2 / k = 1, coverage 2/6;
    # each fake's own radius is 9.5 (the other fake), and every real is within 9.5 of 0.5: recall 1
    assert prdc(real, fake, k=1) == pytest.approx({"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 2 / 6})
    on_grid = torch.tensor([[1.0, 0.0], [2.0, 0.0], [5.0, 0.0]])
    # each fake sits on a real point, inside that real's ball only (distances of 1 are not < 1): precision 1,
    # density 1, coverage 3/6; fake radii 1, 1, 3: every real but 0 is strictly inside one: recall 5/6
    assert prdc(real, on_grid, k=1) == pytest.approx({"precision": 1.0, "recall": 5 / 6, "density": 1.0,
                                                      "coverage": 0.5})


def test_class_shares_entropy_and_diversity():
    shares, entropy = class_shares(torch.tensor([0, 0, 1, 1]), [0, 1])
    assert shares == [0.5, 0.5] and entropy == pytest.approx(1.0)
    shares, entropy = class_shares(torch.tensor([3, 3, 3]), [1, 3, 5])
    assert shares == [0.0, 1.0, 0.0] and entropy == 0.0
    shares, entropy = class_shares(torch.tensor([0, 0, 0, 1]), [0, 1])
    assert entropy == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2))
    real = torch.rand(50, 16)
    assert diversity_ratio(real[:1].repeat(20, 1), real) == 0.0  # one prototype image
    assert diversity_ratio(real, real) == pytest.approx(1.0)


def image_stream():
    """Blobs shaped as 1x4x4 images: 4 classes, 2 experiences."""
    (train_x, train_y), (test_x, test_y) = blobs(4, 150, 16, seed=0)
    return class_incremental_benchmark((train_x.view(-1, 1, 4, 4), train_y), (test_x.view(-1, 1, 4, 4), test_y), 2,
                                       [0, 1, 2, 3], name="blob images")


@pytest.mark.parametrize("method", ["gr", "bir"])
def test_the_metric_in_a_plain_naive_with_a_users_logger(tmp_path, method):
    stream = image_stream()
    train_x = torch.cat([torch.stack([s[0] for s in e.dataset]) for e in stream.train_stream])
    train_y = torch.cat([torch.tensor([int(s[1]) for s in e.dataset]) for e in stream.train_stream])
    judge = judge_for(train_x, train_y, 4, tmp_path / "judges", epochs=5)
    assert len(list((tmp_path / "judges").glob("judge-*.pt"))) == 1
    again = judge_for(train_x, train_y, 4, tmp_path / "judges", epochs=5)  # the cached one
    assert all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), again.state_dict().values()))
    judge_state = {k: v.clone() for k, v in judge.state_dict().items()}
    torch.manual_seed(0)
    if method == "gr":
        model = MLPClassifier((1, 4, 4), 4, (32,))
        replay = GenerativeReplayPlugin(mlp_vae((1, 4, 4), build("gaussian", 4), hidden=(32,)), lr=1e-2)
    else:
        model = BIRModel((1, 4, 4), 4, build("gmm", 4, 4), hidden=(32,))
        replay = BrainInspiredReplayPlugin()
    metric = ReplayQualityMetric(judge, stream.test_stream, samples_per_class=30, real_per_class=40,
                                 image_dir=tmp_path / "grids")
    logger = TensorboardLogger(tb_log_dir=str(tmp_path / "tb"))
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), train_mb_size=32,
                     train_epochs=1, plugins=[replay, SeenUnitsMask(), IterationBudget(40)],
                     evaluator=EvaluationPlugin(accuracy_metrics(experience=True), metric, loggers=[logger]))
    for experience in stream.train_stream:
        strategy.train(experience)
    logger.writer.flush()
    assert judge is not strategy.model and all(torch.equal(judge_state[k], v) for k, v in judge.state_dict().items())
    first, second = metric.per_experience
    assert set(first["class_shares"]) == {0, 1} and set(second["class_shares"]) == {0, 1, 2, 3}
    assert first["samples"] == 60 and second["samples"] == 120
    for measures in (first, second):
        assert 0.0 <= measures["precision"] <= 1.0 and 0.0 <= measures["coverage"] <= 1.0
        assert measures["frechet_distance"] >= 0.0 and 0.0 <= measures["class_entropy"] <= 1.0 + 1e-9
    assert ("judge_agreement" in second) == (method == "bir")  # conditional replay knows what it drew
    for index, rows in ((0, 2), (1, 4)):  # a row of 8 samples of 4x4 per class, 2 px of padding
        with Image.open(tmp_path / "grids" / f"exp{index:03d}.png") as image:
            assert image.size == (8 * (4 + 2) + 2, rows * (4 + 2) + 2)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    assert any(tag.startswith("ReplayQuality_Exp/samples") for tag in events.Tags()["images"])
    assert any(tag.startswith("ReplayQuality_Exp/frechet_distance") for tag in events.Tags()["scalars"])


def test_the_runner_records_replay_quality_with_its_loggers_and_inspect_reads_a_finished_run(mnist_root, tmp_path,
                                                                                                monkeypatch, capsys):
    from replay.bench.cli import main
    from replay.bench.results import read_result
    from tests.test_cli import REPO

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    assert main(["run", str(REPO / "configs/split_mnist/gr_gaussian.yaml"), "--out", str(out), "--set",
                 f"stream.root={mnist_root}", "--set", "iterations_per_experience=20", "--set", "model.hidden=[32]",
                 "--set", "model.latent_dim=8", "--set", "progress=false", "--set", "replay_quality_samples=20",
                 "--set", "loggers=[text, csv, tensorboard, wandb]"]) == 0
    result = read_result(out / "result.json")
    quality = result["replay_quality_per_experience"]
    assert len(quality) == 5 and [len(q["class_shares"]) for q in quality] == [2, 4, 6, 8, 10]
    assert all(q["samples"] == 20 * len(q["class_shares"]) for q in quality)
    assert sorted(p.name for p in (out / "replay").glob("*.png")) == [f"exp{i:03d}.png" for i in range(5)]
    assert list((out / "tensorboard").glob("events.out.tfevents.*")) and (out / "csv").is_dir()
    assert list((out / "wandb").glob("offline-run-*"))
    assert "ReplayQuality_Exp/frechet_distance/train_phase/train_stream/Exp004" in (out / "log.txt").read_text()
    capsys.readouterr()
    assert main(["inspect", str(out), "--out", str(tmp_path / "inspect")]) == 0
    assert "replay after experience 4:" in capsys.readouterr().out
    inspected = json.loads((tmp_path / "inspect" / "replay_quality.json").read_text())
    assert inspected["finished_experiences"] == 5 and len(inspected["class_shares"]) == 10
    assert (tmp_path / "inspect" / "replay.png").exists()
    assert main(["run", str(REPO / "configs/split_mnist/gr_gaussian.yaml"), "--out", str(tmp_path / "bad"),
                 "--set", "loggers=[text, slack]"]) == 2
    assert "loggers: 'slack' is not allowed" in capsys.readouterr().err

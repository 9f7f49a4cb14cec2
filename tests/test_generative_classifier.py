"""The generative classifier (replay.models.GenerativeClassifier, replay.methods.GenerativeClassifierMethod) and the
priors' densities it scores with."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from avalanche.training.templates import SupervisedTemplate
from torch import distributions as D, nn

from replay.bench.cli import main
from replay.errors import UserInputError
from replay.models import GenerativeClassifier
from replay.plugins import GenerativeClassifierPlugin, IterationBudget, SeenUnitsMask
from replay.priors import PRIORS, build
from replay.priors.base import DENSITY_PRIOR_NAMES, GaussianPosterior
from replay.priors.cg_bpef import GridPosterior
from scenarios.streams import class_incremental_benchmark
from tests.helpers import blobs, synthetic_cifar

REPO = Path(__file__).resolve().parent.parent

DENSITY_PRIORS = ("gaussian", "binarized_gaussian", "gmm", "binarized_gmm")


def one_d_prior(name: str):
    """A 1-d prior of ``name`` with visible structure: a radius of 1 for the binarized ones, two seen modes for the
    mixtures."""
    params = {"r": 1.0} if name.startswith("binarized") else {}
    prior = build(name, 1, 3, **params)
    if name.endswith("gmm"):
        with torch.no_grad():
            prior.means.copy_(torch.tensor([[-2.0], [1.5], [9.0]]))
            prior.logvars.copy_(torch.tensor([[-1.0], [0.5], [0.0]]))
        prior.observe_classes([0, 1])
    return prior


@pytest.mark.parametrize("name", DENSITY_PRIORS)
def test_log_prob_is_the_density_that_sample_draws_from(name):
    """The empirical CDF of 40,000 unconditional samples against the CDF integrated numerically from exp(log_prob),
    and the density integrating to one."""
    torch.manual_seed(0)
    prior = one_d_prior(name)
    grid = torch.linspace(-12, 12, 24001).unsqueeze(1)
    density = prior.log_prob(grid).exp().detach()
    step = float(grid[1] - grid[0])
    assert float(density.detach().sum() * step) == pytest.approx(1.0, abs=1e-3)
    cdf = torch.cumsum(density, 0) * step
    samples = prior.sample(40000).squeeze(1)
    empirical = (samples.unsqueeze(0) <= grid[::200]).float().mean(1)
    assert float((empirical - cdf[::200]).abs().max()) < 0.015


def test_log_prob_against_torch_distributions():
    z = torch.randn(7, 3) * 2
    assert torch.allclose(build("gaussian", 3).log_prob(z), D.Normal(0.0, 1.0).log_prob(z).sum(1), atol=1e-5)
    binarized = build("binarized_gaussian", 3, r=0.7)
    sides = D.MixtureSameFamily(D.Categorical(torch.tensor([0.5, 0.5])), D.Normal(torch.tensor([0.7, -0.7]), 1.0))
    assert torch.allclose(binarized.log_prob(z), sides.log_prob(z.unsqueeze(-1)).squeeze(-1).sum(1), atol=1e-5)
    gmm = build("gmm", 3, 4)
    gmm.observe_classes([1, 3])
    seen = torch.tensor([1, 3])
    mixture = D.MixtureSameFamily(D.Categorical(torch.ones(2)), D.Independent(
        D.Normal(gmm.means[seen].detach(), (0.5 * gmm.logvars[seen].detach()).exp()), 1))
    assert torch.allclose(gmm.log_prob(z), mixture.log_prob(z), atol=1e-4)


def test_the_priors_named_as_having_a_density_are_those_that_have_one():
    assert set(DENSITY_PRIOR_NAMES) == {name for name, cls in PRIORS.items() if cls.density_defined()}
    assert set(DENSITY_PRIORS) < set(DENSITY_PRIOR_NAMES)


def test_intel_scores_through_its_intermediary():
    """(z, log ratio) of the InteL mappings: y ~ q(y|x), z = g(y), log N(y; 0, I) - log q(y|x), recomputed with
    torch.distributions from the same draw."""
    mean, logvar = torch.randn(6, 3), torch.randn(6, 3) * 0.3
    for prior in (build("intel_clustered", 3, 2), build("intel_sparse", 3)):
        torch.manual_seed(5)
        z, log_ratio = prior.importance_sample(GaussianPosterior(mean, logvar))
        torch.manual_seed(5)
        y = mean + (0.5 * logvar).exp() * torch.randn(6, 3)
        expected = D.Normal(0.0, 1.0).log_prob(y).sum(1) - D.Normal(mean, (0.5 * logvar).exp()).log_prob(y).sum(1)
        assert torch.allclose(z, prior.mapping(y), atol=1e-6) and torch.allclose(log_ratio, expected, atol=1e-5)


def test_cg_bpef_scores_a_grid_point_drawn_from_the_posterior():
    """The drawn grid points follow q's categoricals, and log p(z) - log q(z|x) is the tables' (p: the uniform
    mixture over the seen classes), recomputed with torch.distributions."""
    torch.manual_seed(0)
    prior = build("cg_bpef", 2, 3, resolution=5, order=2)
    with torch.no_grad():
        prior.coefficients.normal_()
    prior.observe_classes([0, 2])
    logits = torch.randn(1, 2, 5).expand(20000, -1, -1)
    z, log_ratio = prior.importance_sample(GridPosterior(torch.zeros(20000, 2), logits))
    index = torch.round((z + 1) * 2).long()  # grid points -1, -0.5, ..., 1
    frequencies = torch.stack([torch.bincount(index[:, j], minlength=5) for j in range(2)]) / 20000
    assert torch.allclose(frequencies, torch.softmax(logits[0], -1), atol=0.015)
    tables = prior.prior_log_probs().detach()
    q = D.Independent(D.Categorical(logits=logits[:50]), 1).log_prob(index[:50])
    p = torch.logsumexp(torch.stack([D.Independent(D.Categorical(logits=tables[c]), 1).log_prob(index[:50])
                                     for c in (0, 2)]), 0) - math.log(2)
    assert torch.allclose(log_ratio[:50], p - q, atol=1e-5)


@pytest.mark.parametrize("name", sorted(set(PRIORS) - set(DENSITY_PRIOR_NAMES)))
def test_a_prior_without_a_density_is_refused_in_one_line(name, tmp_path, capsys):
    assert not build(name, 4, 1).has_density
    with pytest.raises(UserInputError, match="has no density p"):
        GenerativeClassifier((8,), 2, lambda: build(name, 4, 1), hidden=(6,))
    assert main(["run", "--set", "method.name=generative_classifier", "--set", f"prior.name={name}",
                 "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "has no density p(z)" in error


def linear_gaussian_classifier(samples: int, seed: int = 0):
    """A one-class classifier whose VAE decodes linearly: p(z) = N(0, I), p(x|z) = N(Wz + b, I), so that
    p(x) = N(b, W W^T + I) exactly; the encoder (the proposal) stays the trained network's."""
    torch.manual_seed(seed)
    model = GenerativeClassifier((4,), 1, lambda: build("gaussian", 2), hidden=(8,), samples=samples,
                                 likelihood="gaussian")
    decoder = nn.Linear(2, 4)
    model.vaes[0].decoder = decoder
    exact = D.MultivariateNormal(decoder.bias.detach(), decoder.weight.detach() @ decoder.weight.detach().T + torch.eye(4))
    return model.eval(), exact


def test_importance_sampling_matches_the_exact_log_likelihood_of_a_linear_gaussian_vae():
    model, exact = linear_gaussian_classifier(samples=20000)
    x = exact.sample((5,)) + 0.3
    torch.manual_seed(1)
    estimate = model.log_likelihood(x, [0], 20000)[:, 0]
    assert torch.allclose(estimate, exact.log_prob(x), atol=0.02), (estimate, exact.log_prob(x))
    one_sample = torch.stack([model.log_likelihood(x, [0], 1)[:, 0] for _ in range(200)]).mean(0)
    assert (one_sample < exact.log_prob(x)).all(), "one sample's estimate is the ELBO: below log p(x) on average"
    chunked = GenerativeClassifier((4,), 1, lambda: build("gaussian", 2), hidden=(8,), likelihood="gaussian", max_rows=7)
    chunked.load_state_dict(model.state_dict(), strict=False)
    chunked.vaes[0].decoder = model.vaes[0].decoder
    rows, decode = [], chunked.vaes[0].decode_output
    chunked.vaes[0].decode_output = lambda z: (rows.append(len(z)), decode(z))[1]
    torch.manual_seed(2)
    assert torch.allclose(chunked.log_likelihood(x, [0], 3000)[:, 0], exact.log_prob(x), atol=0.1)
    assert max(rows) <= 7 and sum(rows) == 5 * 3000, "S above max_rows: the samples come in blocks of max_rows"


def test_gaussian_scoring_is_the_training_likelihood_when_that_is_gaussian():
    model, exact = linear_gaussian_classifier(samples=50)
    x = exact.sample((6,))
    torch.manual_seed(3)
    trained = model.log_likelihood(x, [0], 50)
    model.score_likelihood = "gaussian"
    torch.manual_seed(3)
    assert torch.allclose(model.log_likelihood(x, [0], 50), trained)


def test_one_optimiser_over_all_vaes_equals_one_optimiser_per_vae():
    """Adam is elementwise and a VAE whose class is not training gets no gradient: one Adam over every VAE trains each
    exactly as its own Adam would."""
    torch.manual_seed(0)
    model = GenerativeClassifier((6,), 3, lambda: build("gaussian", 2), hidden=(5,))
    separate = GenerativeClassifier((6,), 3, lambda: build("gaussian", 2), hidden=(5,))
    separate.load_state_dict(model.state_dict())
    joint = torch.optim.Adam(model.parameters(), lr=1e-2)
    own = [torch.optim.Adam(vae.parameters(), lr=1e-2) for vae in separate.vaes]
    batches = torch.rand(4, 2, 8, 6)
    for step, (a, b) in enumerate(batches):
        trained = (0, 1) if step < 2 else (1, 2)  # class 0 stops, class 2 starts
        joint.zero_grad()
        seed = torch.seed()
        sum(sum(model.vae_loss(c, x).values()) for c, x in zip(trained, (a, b))).backward()
        joint.step()
        torch.manual_seed(seed)
        for c, x in zip(trained, (a, b)):
            own[c].zero_grad()
            sum(separate.vae_loss(c, x).values()).backward()
            own[c].step()
    for (name, p), q in zip(model.named_parameters(), separate.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def three_class_stream():
    (train_x, train_y), (test_x, test_y) = blobs(3, 120, 12, seed=4, n_test=40)
    return class_incremental_benchmark((train_x, train_y), (test_x, test_y), 3, [0, 1, 2], name="three")


def test_learns_three_tiny_classes_without_forgetting():
    torch.manual_seed(0)
    stream = three_class_stream()
    model = GenerativeClassifier((12,), 3, lambda: build("gaussian", 2), hidden=(16,), samples=20)
    plugin = GenerativeClassifierPlugin(batch_size=32)
    strategy = SupervisedTemplate(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                                  train_mb_size=32, evaluator=None,
                                  plugins=[plugin, SeenUnitsMask(), IterationBudget(150)])
    test_x = torch.stack([x for x, *_ in stream.test_stream[0].dataset])
    first_vae = None
    for experience in stream.train_stream:
        strategy.train(experience)
        if experience.current_experience == 0:
            first_vae = {k: v.clone() for k, v in model.vaes[0].state_dict().items()}
            with torch.no_grad():
                early = model.eval()(test_x).argmax(1)
    assert set(plugin.last_losses) == {"recon", "reg"}
    assert all(torch.equal(v, model.vaes[0].state_dict()[k]) for k, v in first_vae.items()), "class 0's VAE changed"
    assert (early == 0).all()
    accuracies = []
    for experience in stream.test_stream:
        x = torch.stack([x for x, *_ in experience.dataset])
        y = torch.tensor([y for _, y, *_ in experience.dataset])
        with torch.no_grad():
            accuracies.append(float((model.eval()(x).argmax(1) == y).float().mean()))
    assert min(accuracies) > 0.95, accuracies


def test_scores_are_minus_infinity_for_untrained_classes_and_the_model_is_checked():
    model = GenerativeClassifier((5,), 3, lambda: build("gaussian", 2), hidden=(4,), samples=2).eval()
    model.trained[1] = True
    scores = model(torch.rand(4, 5))
    assert torch.isfinite(scores[:, 1]).all() and torch.isinf(scores[:, [0, 2]]).all()
    plugin = GenerativeClassifierPlugin()
    strategy = SupervisedTemplate(model=nn.Linear(12, 3), optimizer=torch.optim.SGD(nn.Linear(1, 1).parameters(), 0.1),
                                  evaluator=None, plugins=[plugin])
    with pytest.raises(UserInputError, match="needs a replay.models.GenerativeClassifier"):
        strategy.train(three_class_stream().train_stream[0])
    with pytest.raises(UserInputError, match="samples and max_rows must be at least 1"):
        GenerativeClassifier((5,), 3, lambda: build("gaussian", 2), samples=0)
    with pytest.raises(UserInputError, match="score_likelihood"):
        GenerativeClassifier((5,), 3, lambda: build("gaussian", 2), score_likelihood="bce")
    assert math.isinf(float(GenerativeClassifier((5,), 2, lambda: build("gmm", 2, 1)).eval()(torch.rand(1, 5))[0, 0]))


def test_permuted_mnist_runs_through_the_cli(mnist_root, tmp_path):
    """The permuted-MNIST config (two experiences, a few iterations) through ``replay-bench run``; its loss terms are
    logged (split MNIST's config runs whole in ``tests/test_scripts.py``, the scoring benchmark)."""
    out = tmp_path / "run"
    assert main(["run", str(REPO / "configs/permuted_mnist/generative_classifier.yaml"), "--out", str(out),
                 "--set", f"stream.root={mnist_root}", "--set", "stream.n_experiences=2",
                 "--set", "iterations_per_experience=20", "--set", "method.samples=2", "--set", "progress=false"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "generative_classifier" and len(result["accuracy_matrix"]) == 2
    assert result["accuracy_matrix"][0][0] > 0.5, result["accuracy_matrix"]
    assert set(result["replay_losses_per_experience"][-1]) == {"recon", "reg"}


def test_split_cifar100_runs_on_synthetic_files(tmp_path):
    synthetic_cifar(tmp_path, "cifar10", 10, 8)
    synthetic_cifar(tmp_path, "cifar100", 100, 4)
    weights = tmp_path / "conv.pt"
    assert main(["pretrain-conv", "--root", str(tmp_path), "--out", str(weights), "--epochs", "1", "--quiet"]) == 0
    assert main(["run", str(REPO / "configs/split_cifar100/generative_classifier.yaml"), "--out", str(tmp_path / "run"),
                 "--set", f"stream.root={tmp_path}", "--set", f"model.conv_weights={weights}",
                 "--set", "iterations_per_experience=2", "--set", "batch_size=4", "--set", "method.samples=2",
                 "--set", "progress=false"]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(result["accuracy_matrix"]) == 10 and result["stream"] == "split_cifar100"
    assert result["config"]["model"]["hidden"] == [85] and result["config"]["model"]["latent_dim"] == 20


def test_compare_and_plots_name_the_generative_classifier(tmp_path):
    from replay.bench.compare import group_results
    from replay.bench.plots import short_labels
    from replay.bench.results import read_result
    from tests.test_cli import fake_result

    results = [read_result(fake_result(tmp_path / f"{m}.json", m, 0, [0.9, 0.95], prior="gaussian", prior_params={}))
               for m in ("generative_classifier", "gr")]
    assert short_labels(group_results(results)) == ["Generative classifier / gaussian", "GR / gaussian"]

"""VAE generators: likelihoods against torch's own losses, shapes, heads chosen by the prior, errors."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from replay.generators import BernoulliLikelihood, UnitGaussianLikelihood, conv_vae, likelihood, mlp_vae
from replay.priors import PRIORS, build


def test_bernoulli_nll_is_binary_cross_entropy_with_named_reductions():
    logits, x = torch.randn(5, 1, 28, 28), torch.rand(5, 1, 28, 28)
    per_unit = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(1)
    assert torch.allclose(BernoulliLikelihood.nll(logits, x, "mean"), per_unit.mean(1), atol=1e-5)
    assert torch.allclose(BernoulliLikelihood.nll(logits, x, "sum"), per_unit.sum(1), atol=1e-3)
    assert torch.allclose(BernoulliLikelihood.mean(logits), torch.sigmoid(logits))


def test_bernoulli_nll_matches_torch_in_value_and_gradient_even_for_extreme_logits():
    logits = torch.cat([torch.randn(3, 50) * 5, torch.tensor([[-200.0, -30.0, -1e-4, 0.0, 1e-4, 30.0, 200.0] * 7 + [0.0]])])
    logits = logits.double().requires_grad_()
    x = torch.rand_like(logits)
    x[0] = x[0].round()
    reference = logits.detach().clone().requires_grad_()
    ours = BernoulliLikelihood.nll(logits, x, "sum")
    expected = F.binary_cross_entropy_with_logits(reference, x, reduction="none").sum(1)
    assert torch.allclose(ours, expected, rtol=1e-12, atol=1e-12) and ours.dtype == torch.float64
    weights = torch.rand(len(ours), dtype=torch.float64)
    (ours * weights).sum().backward()
    (expected * weights).sum().backward()
    assert torch.allclose(logits.grad, reference.grad, rtol=1e-12, atol=1e-15)
    assert BernoulliLikelihood.nll(logits.detach().bfloat16(), x.float(), "mean").dtype == torch.float32


def test_gaussian_nll_is_the_unit_variance_log_density():
    output, x = torch.randn(4, 10), torch.randn(4, 10)
    expected = -torch.distributions.Normal(output, 1.0).log_prob(x).mean(1)
    assert torch.allclose(UnitGaussianLikelihood.nll(output, x, "mean"), expected, atol=1e-6)
    with pytest.raises(ValueError, match="unknown reduction 'max'"):
        UnitGaussianLikelihood.nll(output, x, "max")
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        likelihood("poisson")


def test_scoring_log_probs_broadcast_the_target_over_samples_and_equal_torch_log_densities():
    """``log_prob_samples`` (S outputs per target, the target not copied) against torch's own densities of the
    repeated target: Bernoulli with extreme logits, and the unit-variance Gaussian."""
    torch.manual_seed(0)
    logits = torch.cat([torch.randn(3, 4, 10) * 5, torch.full((3, 4, 2), 60.0), torch.full((3, 4, 2), -60.0)], -1)
    x = torch.rand(4, 14).round()
    bernoulli = torch.distributions.Bernoulli(logits=logits).log_prob(x.expand(3, 4, 14)).sum(-1)
    assert torch.allclose(BernoulliLikelihood.log_prob_samples(logits, x), bernoulli, atol=1e-4)
    mean, y = torch.randn(3, 4, 2, 5), torch.randn(4, 2, 5)
    normal = torch.distributions.Normal(mean, 1.0).log_prob(y.expand(3, 4, 2, 5)).flatten(2).sum(-1)
    assert torch.allclose(UnitGaussianLikelihood.log_prob_samples(mean, y), normal, atol=1e-5)


@pytest.mark.parametrize("prior_name", list(PRIORS))
def test_mlp_vae_terms_generation_and_head(prior_name):
    prior = build(prior_name, latent_dim=6, n_classes=3)
    prior.observe_classes([0, 1])
    vae = mlp_vae((1, 28, 28), prior, hidden=(32, 16))
    x, y = torch.rand(8, 1, 28, 28), torch.tensor([0, 1] * 4)
    terms = vae.loss_terms(x, labels=y)
    assert terms["recon"].shape == (8,) and terms["reg"].shape == (8,)
    assert torch.isfinite(terms["recon"]).all() and torch.isfinite(terms["reg"]).all()
    (terms["recon"] + terms["reg"]).mean().backward()
    samples = vae.generate(5, torch.tensor([0, 1, 1, 0, 0]))
    assert samples.shape == (5, 1, 28, 28) and 0 <= float(samples.min()) and float(samples.max()) <= 1
    learned_variance = prior_name not in ("cgm", "bernoulli", "cg_bpef")  # heads without a learned variance
    assert isinstance(getattr(vae.head, "logvar", None), torch.nn.Linear) == learned_variance


def test_summed_reconstruction_is_the_mean_times_the_units():
    vae = mlp_vae((1, 28, 28), build("gaussian", latent_dim=4), hidden=(16,))
    x = torch.rand(3, 1, 28, 28)
    torch.manual_seed(0)
    mean = vae.loss_terms(x, reduction="mean")["recon"]
    torch.manual_seed(0)
    summed = vae.loss_terms(x, reduction="sum")["recon"]
    assert torch.allclose(summed, mean * 784, rtol=1e-5)


def test_conv_vae_and_a_gaussian_vae_on_features():
    conv = conv_vae((3, 32, 32), build("gaussian", latent_dim=8), hidden=(64,))
    x = torch.randn(4, 3, 32, 32)
    assert conv.loss_terms(x)["recon"].shape == (4,) and conv.generate(2).shape == (2, 3, 32, 32)
    features = mlp_vae((1024,), build("gmm", latent_dim=8, n_classes=2), hidden=(64,), likelihood="gaussian")
    assert features.likelihood is UnitGaussianLikelihood and features.n_inputs == 1024
    assert features.loss_terms(torch.randn(4, 1024), labels=torch.tensor([0, 1, 0, 1]))["recon"].shape == (4,)


def test_input_shape_mismatch_is_refused():
    vae = mlp_vae((1, 28, 28), build("gaussian", latent_dim=4), hidden=(16,))
    with pytest.raises(ValueError, match=r"VAE: the data's samples have shape \(1, 32, 32\), but the generator was built for \(1, 28, 28\)"):
        vae.loss_terms(torch.rand(2, 1, 32, 32))
